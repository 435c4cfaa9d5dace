import {
  BatchFailures,
  type BatchLogger,
  type DecodedPartition,
  type KafkaBatchResponse,
} from '../../shared/msk';
import { type BillingBatchResult, type BillingInput, billBatch, type RecordFailure } from './bill';
import { toBillingCommand } from './billing-events';
import type { BillingLedger } from './ports';
import type { TariffTable } from './pricing';

export interface BillingBatchOutcome extends Omit<BillingBatchResult, 'failures'> {
  response: KafkaBatchResponse;
  processed: number;
  failed: number;
}

/**
 * Decoded partitions -> commands (a bad record fails alone) -> one billBatch over every valid record -> the
 * partial batch response. Billing effects commute, so the records after a failed one are billed too; they are
 * still reported (Kafka redelivers from the earliest failed offset) and the redelivery finds them stored.
 */
export async function processBillingBatch(
  partitions: DecodedPartition[],
  tariffs: TariffTable,
  ledger: BillingLedger,
  logger?: BatchLogger,
  isFatal: (error: unknown) => boolean = () => false,
): Promise<BillingBatchOutcome> {
  const inputs: BillingInput[] = [];
  const invalid: RecordFailure[] = [];
  for (const partition of partitions) {
    for (const record of partition.records) {
      const where = { topic: record.topic, partition: record.partition, offset: record.offset };
      if (record instanceof Error) {
        invalid.push({ record: where, error: record });
        continue;
      }
      if (record.tombstone || record.cloudEvent === null) continue;
      try {
        const command = toBillingCommand(
          {
            ...where,
            eventSource: record.cloudEvent.source,
            eventId: record.cloudEvent.id,
            eventType: record.cloudEvent.type,
            data: record.data,
          },
          tariffs,
        );
        inputs.push({ record: where, command });
      } catch (error) {
        if (isFatal(error)) throw error;
        invalid.push({ record: where, error });
      }
    }
  }
  const { failures, ...result } = await billBatch(inputs, ledger);
  const fatal = failures.find(({ error }) => isFatal(error));
  if (fatal) throw fatal.error;

  const all = [...invalid, ...failures];
  const batchFailures = new BatchFailures(logger);
  for (const partition of partitions) {
    let earliest: { index: number; error: unknown } | undefined;
    for (const { record, error } of all) {
      if (record.topic !== partition.topic || record.partition !== partition.partition) continue;
      const index = partition.records.findIndex((r) => r.offset === record.offset);
      if (index >= 0 && (!earliest || index < earliest.index)) earliest = { index, error };
    }
    if (earliest) batchFailures.failFrom(partition, earliest.index, earliest.error);
  }
  return {
    ...result,
    response: batchFailures.toResponse(),
    processed: result.applied + result.alreadyApplied,
    failed: all.length,
  };
}
