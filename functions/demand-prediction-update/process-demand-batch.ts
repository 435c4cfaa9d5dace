import type { BatchPartition, BatchPolicy } from '../../shared/msk';
import type { DemandModelConfig } from './demand-model';
import type { DemandReadModel } from './ports';
import { type DemandBatchResult, type DemandInput, updateDemand } from './update-demand';

/**
 * Demand's batch policy: aggregate. The whole batch (every partition) is folded into one update per
 * zone-hour, each write fenced by the partition offsets it carries, so running the batch again (a transient
 * store error, a redelivery) applies nothing twice. A failed record is reported with its successors in the
 * partition (Kafka redelivers from the earliest failed offset); the successors were applied already and the
 * fences skip them on redelivery.
 */
export function demandPolicy(
  config: DemandModelConfig,
  knownZones: ReadonlySet<string>,
  readModel: DemandReadModel,
  done?: (result: DemandBatchResult) => void,
): BatchPolicy<Record<string, unknown>, DemandBatchResult> {
  return {
    kind: 'aggregate',
    handle: (partitions) => updateDemand(demandInputs(partitions), config, knownZones, readModel),
    ...(done ? { done } : {}),
  };
}

/** The batch as demand inputs, in partition and offset order; decode errors are failed inputs. */
function demandInputs(partitions: BatchPartition[]): DemandInput[] {
  const inputs: DemandInput[] = [];
  for (const partition of partitions) {
    for (const record of partition.records) {
      if (record instanceof Error) {
        inputs.push({
          ok: false,
          topic: record.topic,
          partition: record.partition,
          offset: record.offset,
          error: record,
        });
      } else if (!record.tombstone) {
        inputs.push({
          ok: true,
          topic: record.topic,
          partition: record.partition,
          offset: record.offset,
          eventType: record.cloudEvent.type,
          data: record.data,
        });
      }
    }
  }
  return inputs;
}
