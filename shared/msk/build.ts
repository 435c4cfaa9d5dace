/**
 * Builds ESM-shaped records and events from plain values: the fixture generator, tests and the local ESM
 * emulator all use these, so every event the project fabricates has exactly the AWS shape.
 */
import type { KafkaEvent, KafkaEventRecord } from './event';
import { topicPartitionKey } from './event';
import { encodeHeaders } from './headers';

export interface RecordInput {
  topic: string;
  partition: number;
  offset: number;
  timestamp: number;
  timestampType?: KafkaEventRecord['timestampType'];
  key: string | Buffer | null;
  /** Null for a tombstone. */
  value: Buffer | null;
  headers?: Record<string, string>;
}

export function kafkaEventRecord(input: RecordInput): KafkaEventRecord {
  return {
    topic: input.topic,
    partition: input.partition,
    offset: input.offset,
    timestamp: input.timestamp,
    timestampType: input.timestampType ?? 'CREATE_TIME',
    key: input.key === null ? null : Buffer.from(input.key).toString('base64'),
    value: input.value === null ? null : input.value.toString('base64'),
    headers: encodeHeaders(input.headers ?? {}),
  };
}

export interface EventOptions {
  eventSource?: KafkaEvent['eventSource'];
  eventSourceArn?: string;
  bootstrapServers?: string;
}

export const LOCAL_CLUSTER_ARN =
  'arn:aws:kafka:eu-west-1:000000000000:cluster/mobility-events-local/00000000-0000-0000-0000-000000000000';

/** Groups records by "<topic>-<partition>" (in the order given) into an MSK or self-managed event. */
export function kafkaEvent(records: KafkaEventRecord[], options: EventOptions = {}): KafkaEvent {
  const grouped: Record<string, KafkaEventRecord[]> = {};
  for (const record of records) {
    const key = topicPartitionKey(record.topic, record.partition);
    const list = grouped[key] ?? [];
    list.push(record);
    grouped[key] = list;
  }
  const bootstrapServers =
    options.bootstrapServers ?? 'b-1.mobility-events-local:9098,b-2.mobility-events-local:9098';
  if (options.eventSource === 'SelfManagedKafka') {
    return { eventSource: 'SelfManagedKafka', bootstrapServers, records: grouped };
  }
  return {
    eventSource: 'aws:kafka',
    eventSourceArn: options.eventSourceArn ?? LOCAL_CLUSTER_ARN,
    bootstrapServers,
    records: grouped,
  };
}
