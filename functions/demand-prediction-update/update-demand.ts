import {
  aggregateByZoneHour,
  type DemandModelConfig,
  type DemandSignal,
  type RecordCoordinates,
  toDemandSignal,
} from './demand-model';
import type { ApplyOutcome, DemandReadModel } from './ports';

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
      signals.push(toDemandSignal(input, knownZones));
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
