import {
  BatchFailures,
  type BatchLogger,
  type DecodedPartition,
  type KafkaBatchResponse,
} from '../../shared/msk';
import type { DemandModelConfig } from './demand-model';
import type { DemandReadModel } from './ports';
import { type DemandBatchResult, type DemandInput, updateDemand } from './update-demand';

export interface DemandBatchOutcome extends DemandBatchResult {
  response: KafkaBatchResponse;
}

/**
 * Decoded partitions -> one aggregated demand update -> the partial batch response. A failed record is
 * reported with its successors in the partition (Kafka redelivers from the earliest failed offset); the
 * successors were applied already and the per-partition fences in the items skip them on redelivery.
 */
export async function processDemandBatch(
  partitions: DecodedPartition[],
  config: DemandModelConfig,
  knownZones: ReadonlySet<string>,
  readModel: DemandReadModel,
  logger?: BatchLogger,
): Promise<DemandBatchOutcome> {
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
  const result = await updateDemand(inputs, config, knownZones, readModel);
  const failures = new BatchFailures(logger);
  for (const { record, error } of result.failures) {
    const partition = partitions.find((p) => p.topic === record.topic && p.partition === record.partition);
    const index = partition?.records.findIndex((r) => r.offset === record.offset) ?? -1;
    if (partition && index >= 0) failures.failFrom(partition, index, error);
  }
  return { ...result, response: failures.toResponse() };
}
