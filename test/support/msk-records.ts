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

export function sampleAvroRecord(options: SampleRecordOptions): KafkaEventRecord {
  const { topic, partition, offset } = options;
  const data: Record<string, unknown> = { ...sampleData[topic](offset), ...options.data };
  const key = aggregateIdOf(topic, data);
  return kafkaEventRecord({
    topic,
    partition,
    offset,
    timestamp: 1_772_438_400_000,
    key,
    value: options.poison
      ? Buffer.from([7, 7, 7])
      : encodeConfluent(fileCatalogSchemaRegistry.latest(topic), data),
    headers: cloudEventHeaders({
      id: options.id ?? `evt-${partition}-${offset}`,
      type: topic,
      source: 'urn:test',
      specversion: '1.0',
      time: '2026-03-02T08:00:00.000Z',
      subject: key,
      datacontenttype: 'application/avro',
      ...(options.correlationId === undefined ? {} : { correlationId: options.correlationId }),
    }),
  });
}
