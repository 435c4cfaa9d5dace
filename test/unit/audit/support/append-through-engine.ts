import {
  type AppendBatchResult,
  type AuditDecoder,
  appendBatch,
} from '../../../../functions/audit-append/append-batch';
import type { AuditEventStore } from '../../../../functions/audit-append/audit-event-store';
import type { KafkaRecordBytes } from '../../../../functions/audit-append/audit-record';
import type { DecodedTombstone } from '../../../../shared/msk/decode';
import { type BatchPartition, runBatch } from '../../../../shared/msk/engine';
import type { KafkaBatchResponse, KafkaEventRecord } from '../../../../shared/msk/event';

/**
 * appendBatch as audit-append runs it: the body of an aggregate policy, whose failures the batch engine turns
 * into the partial batch response. The test's own decoder decodes; the engine only needs each record's
 * coordinates, so it gets them as bare records.
 */
export async function appendThroughEngine<Record extends KafkaRecordBytes>(
  batch: { records: { [topicPartition: string]: Record[] } },
  dependencies: { store: AuditEventStore; decode: AuditDecoder<Record> },
): Promise<AppendBatchResult & KafkaBatchResponse> {
  const partitions: BatchPartition[] = Object.entries(batch.records).map(([key, delivered]) => {
    const ordered = [...delivered].sort((a, b) => Number(a.offset) - Number(b.offset));
    const first = ordered[0] as Record;
    return {
      key,
      topic: first.topic,
      partition: first.partition,
      raw: ordered as unknown as KafkaEventRecord[],
      records: ordered.map(
        (record): DecodedTombstone => ({
          topic: record.topic,
          partition: record.partition,
          offset: Number(record.offset),
          timestamp: record.timestamp,
          timestampType: 'CREATE_TIME',
          key: null,
          headers: {},
          tombstone: true,
          cloudEvent: null,
          data: null,
          rawValue: null,
        }),
      ),
    };
  });
  let result: AppendBatchResult | undefined;
  const { response } = await runBatch(
    partitions,
    {
      kind: 'aggregate',
      handle: () => appendBatch(batch, dependencies),
      done: (appended) => {
        result = appended;
      },
    },
    { logger: { error: () => {}, warn: () => {} } },
  );
  return { ...(result as AppendBatchResult), batchItemFailures: response.batchItemFailures };
}
