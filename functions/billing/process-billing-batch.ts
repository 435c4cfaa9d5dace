import type { BatchPartition, BatchPolicy } from '../../shared/msk';
import { type BillingBatchResult, type BillingInput, billBatch, type RecordFailure } from './bill';
import { toBillingCommand } from './billing-events';
import type { BillingLedger } from './ports';
import type { TariffTable } from './pricing';

/**
 * Billing's batch policy: aggregate. Every valid record of the batch (all partitions) is billed at once by
 * billBatch: batched reads of what the bookings have, batched writes of the missing facts. A bad record fails
 * alone; billing effects commute, so the records after it are billed too and the engine reports them with it
 * (Kafka redelivers from the earliest failed offset), and the redelivery finds them stored. Running the batch
 * again (a transient store error) is safe for the same reason.
 */
export function billingPolicy(
  tariffs: TariffTable,
  ledger: BillingLedger,
  done?: (result: BillingBatchResult) => void,
): BatchPolicy<Record<string, unknown>, BillingBatchResult> {
  return {
    kind: 'aggregate',
    handle: async (partitions) => {
      const { inputs, invalid } = billingInputs(partitions, tariffs);
      const result = await billBatch(inputs, ledger);
      return { ...result, failures: [...invalid, ...result.failures] };
    },
    ...(done ? { done } : {}),
  };
}

/** The batch's valid records as billing commands, and the invalid ones; decode errors are the engine's. */
function billingInputs(
  partitions: BatchPartition[],
  tariffs: TariffTable,
): { inputs: BillingInput[]; invalid: RecordFailure[] } {
  const inputs: BillingInput[] = [];
  const invalid: RecordFailure[] = [];
  for (const partition of partitions) {
    for (const record of partition.records) {
      if (record instanceof Error || record.tombstone) continue;
      const where = { topic: record.topic, partition: record.partition, offset: record.offset };
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
        invalid.push({ record: where, error });
      }
    }
  }
  return { inputs, invalid };
}
