import type { BatchPolicy, DecodeOutcome, KafkaBatchResponse } from '../../shared/msk';
import type { KafkaEventRecord } from '../../shared/msk/event';
import { type AppendBatchResult, type AuditDecoder, appendBatch } from './append-batch';
import type { AuditEventStore } from './audit-event-store';
import { toAuditEvent } from './contract-decoder';

/**
 * audit-append's batch policy: aggregate. The whole batch is appended in one transaction (appendBatch); a
 * store outage rejects before anything is written, so the engine may run it again. Records are decoded once,
 * by the engine; the audit keeps the bytes as delivered (`raw`) next to what they decoded to.
 */
export function auditPolicy(
  store: AuditEventStore,
  done?: (result: AppendBatchResult, response: KafkaBatchResponse) => void,
): BatchPolicy<Record<string, unknown>, AppendBatchResult> {
  return {
    kind: 'aggregate',
    handle: (partitions) => {
      const decoded = new Map<KafkaEventRecord, DecodeOutcome>();
      const records: Record<string, KafkaEventRecord[]> = {};
      for (const partition of partitions) {
        records[partition.key] = partition.raw;
        for (let i = 0; i < partition.raw.length; i++) {
          decoded.set(partition.raw[i] as KafkaEventRecord, partition.records[i] as DecodeOutcome);
        }
      }
      const decode: AuditDecoder<KafkaEventRecord> = (record) =>
        toAuditEvent(decoded.get(record) as DecodeOutcome);
      return appendBatch({ records }, { store, decode });
    },
    ...(done ? { done } : {}),
  };
}
