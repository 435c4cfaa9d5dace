/**
 * Exact shapes of what a Kafka event source mapping sends (Amazon MSK and self-managed Kafka) and of the
 * partial batch response it accepts, as Lambda's documentation for Kafka event sources gives them.
 */

/** One header: a single-key object mapping the header name to its bytes (numbers 0-255). */
export type KafkaRecordHeader = Record<string, number[]>;

/** Present only when a schema registry is configured on the ESM. */
export interface KafkaSchemaMetadata {
  dataFormat: 'AVRO' | 'PROTOBUF' | 'JSON';
  schemaId: string;
}

export interface KafkaEventRecord {
  topic: string;
  partition: number;
  offset: number;
  /** Epoch milliseconds. */
  timestamp: number;
  timestampType: 'CREATE_TIME' | 'LOG_APPEND_TIME';
  /** Base64; absent or null when the record has no key. */
  key?: string | null;
  /** Base64; absent or null for a tombstone. */
  value?: string | null;
  headers?: KafkaRecordHeader[] | null;
  keySchemaMetadata?: KafkaSchemaMetadata;
  valueSchemaMetadata?: KafkaSchemaMetadata;
}

/** Records grouped by `"<topic>-<partition>"`; one invocation may carry several partitions. */
export type KafkaEventRecords = Record<string, KafkaEventRecord[]>;

export interface MskEvent {
  eventSource: 'aws:kafka';
  eventSourceArn: string;
  /** Brokers separated by commas. */
  bootstrapServers: string;
  records: KafkaEventRecords;
}

/** Self-managed Kafka: same shape, no eventSourceArn. */
export interface SelfManagedKafkaEvent {
  eventSource: 'SelfManagedKafka';
  bootstrapServers: string;
  records: KafkaEventRecords;
}

export type KafkaEvent = MskEvent | SelfManagedKafkaEvent;

/** `partition` is `"<topic>-<partition>"`, `offset` a number; anything not in the event fails the batch. */
export interface KafkaBatchItemFailure {
  itemIdentifier: { partition: string; offset: number };
}

export interface KafkaBatchResponse {
  batchItemFailures: KafkaBatchItemFailure[];
}

export function topicPartitionKey(topic: string, partition: number): string {
  return `${topic}-${partition}`;
}
