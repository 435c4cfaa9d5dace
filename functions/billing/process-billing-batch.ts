import {
  BatchFailures,
  type BatchLogger,
  type DecodedPartition,
  type KafkaBatchResponse,
} from '../../shared/msk';
import { toBillingCommand } from './billing-events';
import type { BillingProcessor } from './billing-processor';
import type { TariffTable } from './pricing';

export interface BillingBatchOutcome {
  response: KafkaBatchResponse;
  processed: number;
  failed: number;
}

/**
 * Every record of every partition is attempted, also after a failure in its partition: billing effects commute
 * (invoice and payments may arrive in any order), so one bad record must not hold back the rest of the batch.
 * The failed record and its successors are still reported, because Kafka redelivers from the earliest failed
 * offset; the successors that succeeded are then answered by the idempotency layer.
 */
export async function processBillingBatch(
  partitions: DecodedPartition[],
  tariffs: TariffTable,
  processor: BillingProcessor,
  logger?: BatchLogger,
  isFatal: (error: unknown) => boolean = () => false,
): Promise<BillingBatchOutcome> {
  const failures = new BatchFailures(logger);
  let processed = 0;
  let failed = 0;
  // allSettled: a fatal error fails the invocation, but only once every partition has stopped writing.
  const settled = await Promise.allSettled(
    partitions.map(async (partition) => {
      for (const [index, record] of partition.records.entries()) {
        try {
          if (record instanceof Error) throw record;
          if (record.tombstone) continue;
          const command = toBillingCommand(
            {
              topic: record.topic,
              partition: record.partition,
              offset: record.offset,
              eventId: record.cloudEvent.id,
              eventType: record.cloudEvent.type,
              data: record.data,
            },
            tariffs,
          );
          await processor.process(command);
          processed++;
        } catch (error) {
          if (isFatal(error)) throw error;
          failed++;
          failures.failFrom(partition, index, error);
        }
      }
    }),
  );
  const fatal = settled.find((result) => result.status === 'rejected');
  if (fatal) throw fatal.reason;
  return { response: failures.toResponse(), processed, failed };
}
