// One builder for the MSK records unit tests feed the decode and the batch engine: a catalogued event type's
// sample data, Avro with Confluent framing, CloudEvents binary-mode headers, key and subject = the aggregate id.
import { aggregateIdOf, type SampleEventType, sampleData } from '../../schemas/samples';
import { encodeConfluent } from '../../shared/contracts/avro-codec';
import { cloudEventHeaders } from '../../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry } from '../../shared/contracts/file-catalog-registry';
import { kafkaEventRecord } from '../../shared/msk/build';
import type { KafkaEventRecord } from '../../shared/msk/event';

export interface SampleRecordOptions {
  topic: SampleEventType;
  partition: number;
  offset: number;
  /** ce_id; default `evt-<partition>-<offset>`. */
  id?: string;
  /** Fields that replace the sample data's (the sample of `offset` otherwise). */
  data?: Record<string, unknown>;
  /** A value that is not Avro with Confluent framing: the record cannot be decoded. */
  poison?: boolean;
  correlationId?: string;
}

/** 2026-03-02T08:00:00Z: the broker time of the records built here unless a test says otherwise. */
const DEFAULT_TIMESTAMP = 1_772_438_400_000;

export interface AvroRecordOptions {
  topic: string;
  partition: number;
  offset: number;
  /** The event's data, encoded with the catalog's latest schema of `type`. */
  data: Record<string, unknown>;
  /** The record key, also the CloudEvent subject. */
  key: string;
  /** ce_id. */
  id: string;
  /** ce_type; default the topic. */
  type?: string;
  /** ce_source; default urn:test. */
  source?: string;
  /** The broker timestamp (ms); default 2026-03-02T08:00:00Z. */
  timestamp?: number;
  /** ce_time; default the timestamp's. */
  time?: string;
  correlationId?: string;
  /** A value other than the encoded data (a poison record, a tombstone). */
  value?: Buffer | null;
}

/** A record as producers write it: Avro with Confluent framing, CloudEvents binary-mode headers. */
export function avroRecord(options: AvroRecordOptions): KafkaEventRecord {
  const type = options.type ?? options.topic;
  const timestamp = options.timestamp ?? DEFAULT_TIMESTAMP;
  return kafkaEventRecord({
    topic: options.topic,
    partition: options.partition,
    offset: options.offset,
    timestamp,
    key: options.key,
    value:
      options.value === undefined
        ? encodeConfluent(fileCatalogSchemaRegistry.latest(type), options.data)
        : options.value,
    headers: cloudEventHeaders({
      id: options.id,
      type,
      source: options.source ?? 'urn:test',
      specversion: '1.0',
      time: options.time ?? new Date(timestamp).toISOString(),
      subject: options.key,
      datacontenttype: 'application/avro',
      ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
    }),
  });
}

/** A record of a catalogued event type with its sample data for `offset` (fields in `data` replaced). */
export function sampleAvroRecord(options: SampleRecordOptions): KafkaEventRecord {
  const { topic, partition, offset } = options;
  const data: Record<string, unknown> = { ...sampleData[topic](offset), ...options.data };
  return avroRecord({
    topic,
    partition,
    offset,
    data,
    key: aggregateIdOf(topic, data),
    id: options.id ?? `evt-${partition}-${offset}`,
    ...(options.poison ? { value: Buffer.from([7, 7, 7]) } : {}),
    ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
  });
}
