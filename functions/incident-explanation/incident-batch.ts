import { afterRequestsAreSent, allSettledOrThrow, mapBounded } from '../../shared/concurrency';
import {
  type AggregateResult,
  type BatchPolicy,
  type DecodedEvent,
  type DecodedRecord,
  RecordDecodeError,
  type RecordFailure,
} from '../../shared/msk';
import {
  type ExplainIncidentDependencies,
  explainIncident,
  type IncidentOutcome,
  topics,
} from './explain-incident';
import { payloadHash } from './explanation-records';
import { type Incident, toIncident } from './incident';
import { planIncidents } from './plan-incidents';
import type {
  ExplanationRecords,
  GenAiEventPublisher,
  OutgoingEvent,
  ResolveOutcome,
  ReviewResolution,
  ReviewTask,
  ReviewTasks,
} from './ports';
import { resolveAll, toResolution } from './resolve-review';
import { reviewToOpen } from './review-policy';

/** A consumed event, decoded: what this function needs of a Kafka record and its CloudEvents headers. */
export interface ConsumedEvent {
  topic: string;
  /** Where it came from (events built by hand may lack it): explanations are bounded per partition. */
  position?: { partition: number; offset: number };
  id: string;
  type?: string;
  time: string;
  correlationId?: string;
  traceparent?: string;
  data: unknown;
}

export type ProcessedEvent =
  | {
      kind: 'explained';
      incidentId: string;
      events: number;
      /**
       * A review was opened by this record: the outcome it was explained with wants one, or it replays an outcome
       * whose review this batch opened (the first record of that incident); not by an earlier delivery.
       */
      reviewOpened: boolean;
      /** Answered from an outcome stored earlier or explained for an earlier record: no explainer call. */
      replayed: boolean;
    }
  | { kind: 'review-resolved'; incidentId: string; outcome: ResolveOutcome }
  | { kind: 'ignored'; topic: string };

export type EventResult = { ok: true; value: ProcessedEvent } | { ok: false; error: unknown };

export interface IncidentBatchOptions extends ExplainIncidentDependencies {
  reviews: ReviewTasks;
  records: ExplanationRecords;
  publisher: GenAiEventPublisher;
  /** Explainer calls in flight per partition (default 10): the model's 1-2 s, not the stores, bound a batch. */
  explainConcurrency?: number;
  /** Runs the explanation of one event (the handler puts the record's log keys around it). */
  withEvent?: <T>(event: ConsumedEvent, explain: () => Promise<T>) => Promise<T>;
}

export interface IncidentBatchProcessor {
  /** Handles a batch; one result per event, in their order. Rejects only if it cannot tell (never today). */
  process(events: readonly ConsumedEvent[]): Promise<EventResult[]>;
}

export const DEFAULT_EXPLAIN_CONCURRENCY = 10;
/** Outcomes explained but not stored yet (a write failed), kept for the batch's rerun: at most this many. */
const UNSTORED_OUTCOMES = 1_000;

interface Detected {
  index: number;
  event: ConsumedEvent;
  incident: Incident;
  hash: string;
}

const ok = (value: ProcessedEvent): EventResult => ({ ok: true, value });
const failed = (error: unknown): EventResult => ({ ok: false, error });

/**
 * incident.detected, per batch: one round of batched reads of what its incidents have stored (outcomes with their
 * views, and reviews); a plan (plan-incidents.ts) of what each record gets, one incident's records in offset order;
 * the explainer for the incidents with nothing usable stored, `explainConcurrency` at once per partition; one round
 * of batched writes: their outcomes with their views, and the reviews the read did not find (a replayed outcome's
 * too, should its review's write have failed while the outcome's succeeded); then ONE produce of the genai.* events
 * of every record of the batch, replays included. A redelivery finds the outcomes and re-produces the same events
 * (deterministic ids, same bytes), which downstream consumers dedupe; the explainer is not asked again.
 * Events are produced only from an outcome that is stored and once its review is, so every copy of an event is the
 * same and a genai.hitl.requested always names a review that exists.
 *
 * genai.hitl.resolved (resolve-review.ts, resolveAll): one batched read of the tasks and kept decisions, then
 * in one round each decision kept (conditional, first decision wins, in batched requests) and the tasks closed
 * (batched puts); an incident's resolutions are decided by its first in offset order. A redelivery writes nothing.
 *
 * Running a batch again (an outage, retried by the engine) is safe: what was stored is replayed, and an
 * outcome explained but not stored before the failure is kept in memory and reused, not asked again.
 */
export function createIncidentBatchProcessor(options: IncidentBatchOptions): IncidentBatchProcessor {
  const explainConcurrency = options.explainConcurrency ?? DEFAULT_EXPLAIN_CONCURRENCY;
  if (!Number.isInteger(explainConcurrency) || explainConcurrency < 1)
    throw new RangeError(`explainConcurrency must be a positive integer, got ${explainConcurrency}`);
  const withEvent = options.withEvent ?? (<T>(_event: ConsumedEvent, explain: () => Promise<T>) => explain());
  const unstored = new Map<string, IncidentOutcome>();
  const unstoredKey = (detected: Detected) => `${detected.hash}\u0000${detected.incident.incidentId}`;

  async function explainAll(detected: Detected[], results: EventResult[]): Promise<void> {
    if (detected.length === 0) return;
    const failAll = (error: unknown) => {
      for (const record of detected) results[record.index] = failed(error);
    };
    let stored: Awaited<ReturnType<ExplanationRecords['find']>>;
    let storedReviews: Awaited<ReturnType<ReviewTasks['findAll']>>;
    try {
      // Both reads in one round trip, one request when they fit (begun in one tick, shared/dynamodb.ts): the reviews
      // are read before anyone knows which incidents want one, so that opening them later costs a write and no
      // second read (a review wanted is opened where none is stored).
      const incidentIds = [...new Set(detected.map((d) => d.incident.incidentId))];
      [stored, storedReviews] = await Promise.all([
        options.records.find(incidentIds),
        options.reviews.findAll(incidentIds),
      ]);
    } catch (error) {
      failAll(error);
      return;
    }
    const decisions = planIncidents(detected, stored);

    // The explainer, for the incidents that need it: per partition at most explainConcurrency at once.
    const owners = new Map<string, number[]>();
    decisions.forEach((decision, position) => {
      if (decision.kind !== 'explain') return;
      const { event } = detected[position] as Detected;
      const partition = `${event.topic}-${event.position?.partition ?? ''}`;
      const positions = owners.get(partition);
      if (positions) positions.push(position);
      else owners.set(partition, [position]);
    });
    const explained = new Map<number, IncidentOutcome | { error: unknown }>();
    await Promise.all(
      [...owners.values()].map((positions) =>
        mapBounded(positions, explainConcurrency, async (position) => {
          const record = detected[position] as Detected;
          try {
            const outcome =
              unstored.get(unstoredKey(record)) ??
              (await withEvent(record.event, () =>
                explainIncident(record.incident, traceOf(record.event), options),
              ));
            explained.set(position, outcome);
          } catch (error) {
            explained.set(position, { error });
          }
        }),
      ),
    );

    // One write round: the outcomes with their views, and the reviews wanted that the read did not find, the
    // replays' included (a review whose write failed while its outcome's succeeded is opened by the redelivery);
    // then the produce. The events are encoded while the writes are in flight and sent once they all succeeded.
    const toStore = [...explained].filter(
      (entry): entry is [number, IncidentOutcome] => !('error' in entry[1]),
    );
    // Each incident's review decided once (a batch may hold several records of one incident).
    const reviewWrites = new Map<string, ReviewTask>();
    for (const [, outcome] of toStore) {
      const write = outcome.review && reviewToOpen(outcome.review, storedReviews.get(outcome.incidentId));
      if (write) reviewWrites.set(outcome.incidentId, write);
    }
    /** Incidents replayed whose review this batch opens, and the record that opens it (its first). */
    const repairs = new Map<string, number>();
    decisions.forEach((decision, position) => {
      if (decision.kind !== 'replay' || !decision.outcome.review) return;
      const { incidentId } = decision.outcome;
      if (repairs.has(incidentId)) return;
      const write = reviewToOpen(decision.outcome.review, storedReviews.get(incidentId));
      if (!write) return;
      reviewWrites.set(incidentId, write);
      repairs.set(incidentId, position);
    });
    let written: Promise<unknown> = Promise.resolve();
    if (toStore.length > 0 || reviewWrites.size > 0) {
      for (const [position, outcome] of toStore) remember(detected[position] as Detected, outcome);
      // Both begun in this tick: the reviews and the first outcomes share a BatchWriteItem when they fit in one
      // (shared/dynamodb.ts), so a batch of a few incidents writes in one request, not two.
      const reviewsOpened = options.reviews.saveAll([...reviewWrites.values()]);
      reviewsOpened.catch(() => undefined); // awaited below
      const outcomesStored = options.records.complete(
        toStore.map(([position, outcome]) => ({
          outcome,
          payloadHash: (detected[position] as Detected).hash,
        })),
      );
      // Settled, not raced: the batch never answers while a write of its own is still in flight.
      written = allSettledOrThrow([reviewsOpened, outcomesStored]);
      written.catch(() => undefined); // awaited below
    }

    const outcomeOf = (
      position: number,
      writeFailure: { error: unknown } | undefined,
    ): { outcome: IncidentOutcome; replayed: boolean; reviewOpened: boolean } | { error: unknown } => {
      const decision = decisions[position];
      switch (decision?.kind) {
        case 'replay': {
          const repair = repairs.get(decision.outcome.incidentId);
          if (repair !== undefined && writeFailure) return writeFailure;
          return { outcome: decision.outcome, replayed: true, reviewOpened: repair === position };
        }
        case 'mismatch':
        case 'unreadable':
          return { error: decision.error };
        case 'same-as': {
          const owner = outcomeOf(decision.owner, writeFailure);
          return 'error' in owner ? owner : { outcome: owner.outcome, replayed: true, reviewOpened: false };
        }
        default: {
          const outcome = explained.get(position);
          if (!outcome) return { error: new Error('not explained') };
          if ('error' in outcome) return outcome;
          return writeFailure ?? { outcome, replayed: false, reviewOpened: outcome.review !== undefined };
        }
      }
    };

    // One produce for the whole batch: each incident's events once, however many of its records came.
    const answer = (writeFailure: { error: unknown } | undefined) => {
      const answered: Array<{
        record: Detected;
        outcome: IncidentOutcome;
        replayed: boolean;
        reviewOpened: boolean;
      }> = [];
      const failures: Array<{ record: Detected; error: unknown }> = [];
      const events: OutgoingEvent[] = [];
      const produced = new Set<string>();
      detected.forEach((record, position) => {
        const result = outcomeOf(position, writeFailure);
        if ('error' in result) {
          failures.push({ record, error: result.error });
          return;
        }
        answered.push({ record, ...result });
        if (produced.has(result.outcome.incidentId)) return;
        produced.add(result.outcome.incidentId);
        events.push(...result.outcome.events);
      });
      return { answered, failures, events };
    };
    const publish = (events: OutgoingEvent[], after?: Promise<unknown>) => {
      const sent = events.length > 0 ? options.publisher.publish(events, after) : Promise.resolve();
      sent.catch(() => undefined); // awaited below
      return sent;
    };

    // The usual case, every write succeeding: its events are encoded now and sent once the writes are done.
    let plan = answer(undefined);
    if (toStore.length > 0 || reviewWrites.size > 0) await afterRequestsAreSent();
    let sent = publish(plan.events, written);
    try {
      await written;
      for (const [position] of toStore) unstored.delete(unstoredKey(detected[position] as Detected));
    } catch (error) {
      // Not sent (the writes failed): the replays are still answered, the incidents written now fail.
      plan = answer({ error });
      sent = publish(plan.events);
    }
    for (const { record, error } of plan.failures) results[record.index] = failed(error);
    try {
      await sent;
    } catch (error) {
      for (const { record } of plan.answered) results[record.index] = failed(error);
      return;
    }
    for (const { record, outcome, replayed, reviewOpened } of plan.answered) {
      results[record.index] = ok({
        kind: 'explained',
        incidentId: outcome.incidentId,
        events: outcome.events.length,
        reviewOpened,
        replayed,
      });
    }
  }

  function remember(record: Detected, outcome: IncidentOutcome): void {
    unstored.set(unstoredKey(record), outcome);
    // Oldest first out: a Map iterates in insertion order.
    for (const key of unstored.keys()) {
      if (unstored.size <= UNSTORED_OUTCOMES) break;
      unstored.delete(key);
    }
  }

  async function resolveReviews(
    resolutions: Array<{ index: number; resolution: ReviewResolution }>,
    results: EventResult[],
  ): Promise<void> {
    if (resolutions.length === 0) return;
    const settled = await resolveAll(
      resolutions.map(({ resolution }) => resolution),
      options.reviews,
    );
    settled.forEach((outcome, i) => {
      const { index, resolution } = resolutions[i] as (typeof resolutions)[number];
      results[index] =
        outcome.status === 'fulfilled'
          ? ok({ kind: 'review-resolved', incidentId: resolution.incidentId, outcome: outcome.value })
          : failed(outcome.reason);
    });
  }

  return {
    async process(events) {
      const results = new Array<EventResult>(events.length);
      const detected: Detected[] = [];
      const resolutions: Array<{ index: number; resolution: ReviewResolution }> = [];
      events.forEach((event, index) => {
        try {
          if (event.topic === topics.incidentDetected) {
            const incident = toIncident(event.data);
            detected.push({ index, event, incident, hash: payloadHash(incident) });
          } else if (event.topic === topics.hitlResolved) {
            resolutions.push({ index, resolution: toResolution(event.data, event.time) });
          } else {
            results[index] = ok({ kind: 'ignored', topic: event.topic });
          }
        } catch (error) {
          results[index] = failed(error);
        }
      });
      // Resolutions after the explanations: a resolution of this batch is then never written between the reviews'
      // read and their write (one ESM per topic never mixes them in AWS; a local run may).
      await explainAll(detected, results);
      await resolveReviews(resolutions, results);
      return results;
    },
  };
}

function traceOf(event: ConsumedEvent) {
  return {
    ...(event.correlationId ? { correlationId: event.correlationId } : {}),
    ...(event.traceparent ? { traceparent: event.traceparent } : {}),
  };
}

export interface IncidentBatchResult extends AggregateResult {
  explained: number;
  replayed: number;
  reviewsOpened: number;
  reviewsResolved: number;
}

/**
 * incident-explanation's batch policy: aggregate. Every record of the batch (all partitions) goes to the
 * processor at once; ordering within a partition is kept where it matters, per incident (see
 * createIncidentBatchProcessor). A failed record is reported with the later records of its partition (the
 * engine reports from the earliest failure); those that succeeded are found done on redelivery. When the
 * failure is an outage the engine runs the batch again, which is safe for the same reason.
 */
export function incidentPolicy(
  processor: IncidentBatchProcessor,
  done?: (result: IncidentBatchResult) => void,
): BatchPolicy<Record<string, unknown>, IncidentBatchResult> {
  return {
    kind: 'aggregate',
    handle: async (partitions) => {
      const records: DecodedRecord<Record<string, unknown>>[] = [];
      const events: ConsumedEvent[] = [];
      for (const partition of partitions) {
        for (const record of partition.records) {
          if (record instanceof RecordDecodeError || record.tombstone) continue;
          records.push(record);
          events.push(consumedEvent(record));
        }
      }
      const results = await processor.process(events);
      const result: IncidentBatchResult = {
        failures: [],
        explained: 0,
        replayed: 0,
        reviewsOpened: 0,
        reviewsResolved: 0,
      };
      const failures: RecordFailure[] = [];
      results.forEach((outcome, i) => {
        if (!outcome.ok) {
          failures.push({ record: records[i] as DecodedRecord<unknown>, error: outcome.error });
          return;
        }
        const processed = outcome.value;
        if (processed.kind === 'explained') {
          if (processed.replayed) result.replayed++;
          else result.explained++;
          if (processed.reviewOpened) result.reviewsOpened++;
        }
        if (processed.kind === 'review-resolved' && processed.outcome === 'RESOLVED')
          result.reviewsResolved++;
      });
      return { ...result, failures };
    },
    ...(done ? { done } : {}),
  };
}

/** What the processor needs of a decoded record. */
export function consumedEvent(record: DecodedEvent<Record<string, unknown>>): ConsumedEvent {
  return {
    topic: record.topic,
    position: { partition: record.partition, offset: record.offset },
    id: record.cloudEvent.id,
    type: record.cloudEvent.type,
    time: record.cloudEvent.time,
    ...(record.cloudEvent.correlationId ? { correlationId: record.cloudEvent.correlationId } : {}),
    ...(record.cloudEvent.traceparent ? { traceparent: record.cloudEvent.traceparent } : {}),
    data: record.data,
  };
}
