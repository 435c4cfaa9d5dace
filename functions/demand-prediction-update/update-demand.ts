import {
  aggregateByZoneHour,
  type DemandModelConfig,
  type DemandSignal,
  type RecordCoordinates,
  toDemandSignal,
} from './demand-model';
import type { ApplyOutcome, DemandReadModel } from './ports';

/*
 * Exactly-once for an aggregated write: a per-partition applied-offset fence in the item, not Powertools
 * idempotency per record.
 *
 * - The fence is stored in the item it guards, so "was this applied?" and "apply it" are ONE conditional
 *   UpdateItem: ADD the batch's counts for the zone-hour and SET fence:<topic>-<partition> = last offset, on
 *   condition that every partition's fence is below the batch's first offset for this item. No window between
 *   check and effect, no TransactWriteItems (dynalite has none).
 * - Per-record idempotency cannot guard a write that sums many records: marking records done before the summed
 *   write loses them if the write fails, marking them after double-counts them if the process dies in between.
 *   Closing that gap needs a transaction. It would also cost 2 extra requests per record (in-progress put +
 *   completion update), against the target of <= 0.5 requests per record; the fence costs nothing extra
 *   (bench/RESULTS.md: 0.23 requests/record on a Zipf zone mix).
 * - What the fence relies on: Kafka ESMs deliver each partition in order with one batch in flight per
 *   partition, and every batch writes all its records for an item in one update, so per item the applied
 *   offsets of a partition are always a prefix: "offset <= fence" means "applied". A redelivery that overlaps
 *   (retry after a partial failure, duplicate invocation, replay without --rebuild) fails the optimistic
 *   condition; the item's fences are read and only records above them are applied, under the exact fences seen.
 * - Rebuild: the fences live in the items, so clearing the table resets them with the data; there is no
 *   second store to purge (contrast billing, whose rebuild must clear its idempotency table too).
 */
/** One record of the batch as the handler hands it over: decoded, or the reason it could not be. */
export type DemandInput =
  | (RecordCoordinates & { ok: true; eventType: string; data: unknown })
  | (RecordCoordinates & { ok: false; error: unknown });

export interface RecordFailure {
  record: RecordCoordinates;
  error: unknown;
}

export interface DemandBatchResult {
  /** Records that failed (bad input, or their zone-hour write failed); successors are not listed here. */
  failures: RecordFailure[];
  outcomes: ApplyOutcome[];
  signals: number;
}

/**
 * Applies one batch: validate every record, sum the valid ones per zone-hour, write each zone-hour once.
 * Bad records fail alone; the rest of the batch is applied. A failed write fails the records it carried.
 */
export async function updateDemand(
  batch: DemandInput[],
  config: DemandModelConfig,
  knownZones: ReadonlySet<string>,
  readModel: DemandReadModel,
): Promise<DemandBatchResult> {
  const failures: RecordFailure[] = [];
  const signals: DemandSignal[] = [];
  for (const input of batch) {
    const record = { topic: input.topic, partition: input.partition, offset: input.offset };
    if (!input.ok) {
      failures.push({ record, error: input.error });
      continue;
    }
    try {
      const signal = toDemandSignal(input, knownZones);
      if (signal) signals.push(signal);
    } catch (error) {
      failures.push({ record, error });
    }
  }
  const outcomes = await readModel.apply(aggregateByZoneHour(signals, config));
  for (const outcome of outcomes) {
    if (outcome.status !== 'FAILED') continue;
    for (const signal of outcome.update.signals) {
      failures.push({
        record: { topic: signal.topic, partition: signal.partition, offset: signal.offset },
        error: outcome.error,
      });
    }
  }
  return { failures, outcomes, signals: signals.length };
}
