// Error handling of one batch as Lambda documents it for Kafka ESMs: whole-batch retries
// with backoff, MaximumRetryAttempts, MaximumRecordAgeInSeconds (records older than that are not sent to the
// function at all: they go to the destination first), BisectBatchOnFunctionError, partial batch responses, and
// the on-failure destination once retries are exhausted. Offsets move on only after success or after the
// destination write succeeded (without a destination, Lambda discards such records and moves on).
import { setTimeout as sleep } from 'node:timers/promises';
import type { MSKEvent } from 'aws-lambda';
import { type Batch, MAX_PAYLOAD_BYTES, type QueuedRecord } from './batcher';
import type { DestinationWriter } from './destinations';
import { type EventSource, toMskEvent } from './event';
import type { FailureCondition } from './invocation-record';
import { type EsmHandler, type FunctionSettings, invokeHandler } from './invoker';

export interface RetryPolicy {
  maximumRetryAttempts: number;
  maximumRecordAgeInSeconds: number;
  bisectBatchOnFunctionError: boolean;
  reportBatchItemFailures: boolean;
}

export interface BatchProcessorDeps {
  esmUuid: string;
  policy: RetryPolicy;
  handler: EsmHandler;
  source: EventSource;
  fn: FunctionSettings;
  writeDestination?: DestinationWriter;
  /** Commits each part up to and including `lastOffset` (one request); `done` frees the partition. */
  resolve(parts: ResolvedPart[]): Promise<void>;
  retryDelayMs(attempt: number): number;
  signal: AbortSignal;
  observer?: BatchObserver;
}

export interface BatchObserver {
  invoked?(records: number, ok: boolean, error?: Error): void;
  succeeded?(entries: QueuedRecord[]): void;
  sentToDestination?(entries: QueuedRecord[], condition: FailureCondition): void;
  destinationError?(error: Error): void;
}

export interface ResolvedPart {
  key: string;
  lastOffset: bigint;
  done: boolean;
}

interface Work {
  partitions: Map<string, QueuedRecord[]>;
  attempts: number;
  /** Older than MaximumRecordAgeInSeconds when the batch was taken: never invoked. */
  expired?: boolean;
}

interface FailureState {
  requestId: string;
  error?: Error;
}

export const defaultRetryDelayMs = (attempt: number) => Math.min(100 * 2 ** (attempt - 1), 5000);

export async function processBatch(batch: Batch, deps: BatchProcessorDeps): Promise<void> {
  const remaining = new Map([...batch.partitions].map(([key, entries]) => [key, entries.length]));
  const partOf = (key: string, entries: QueuedRecord[]): ResolvedPart[] => {
    const last = entries[entries.length - 1];
    if (!last) return [];
    const left = (remaining.get(key) ?? 0) - entries.length;
    remaining.set(key, left);
    return [{ key, lastOffset: last.record.offset, done: left === 0 }];
  };
  const resolveWork = async (work: Work) => {
    await deps.resolve([...work.partitions].flatMap(([key, entries]) => partOf(key, entries)));
  };
  const pending: Work[] = splitExpired(batch.partitions, deps.policy, Date.now());
  while (pending.length > 0) {
    if (deps.signal.aborted) return;
    const work = pending.shift() as Work;
    const matched = [...work.partitions.values()].flat().filter((entry) => entry.matched);
    if (work.expired && matched.length > 0) {
      const event = toMskEvent(deps.source, flatRecords(work));
      await exhaust(work, event, 'RecordAgeExceeded', { requestId: 'n/a' }, deps);
      if (deps.signal.aborted) return;
      await resolveWork(work);
      continue;
    }
    if (matched.length === 0) {
      await resolveWork(work);
      continue;
    }
    const event = toMskEvent(
      deps.source,
      matched.map((entry) => entry.record),
    );
    // Record sizes are upper bounds; stringify only when they say the cap may be exceeded.
    const estimate = matched.reduce((sum, entry) => sum + entry.size, 1024);
    if (estimate > MAX_PAYLOAD_BYTES && Buffer.byteLength(JSON.stringify(event)) > MAX_PAYLOAD_BYTES) {
      await exhaust(work, event, 'MaximumPayloadSizeExceeded', { requestId: 'n/a' }, deps);
      await resolveWork(work);
      continue;
    }
    const result = await invokeHandler(deps.handler, event, deps.fn);
    const attempts = work.attempts + 1;
    let failed: Work = { partitions: work.partitions, attempts };
    let error = result.ok ? undefined : result.error;
    if (result.ok) {
      const reported = deps.policy.reportBatchItemFailures ? itemFailures(result.response, work) : undefined;
      if (reported === 'invalid') {
        error = new Error('Partial batch response names a record that was not in the batch');
      } else if (!reported || reported.size === 0) {
        deps.observer?.invoked?.(matched.length, true);
        deps.observer?.succeeded?.(matched);
        await resolveWork(work);
        continue;
      } else {
        // Records before the first reported one in each partition succeeded; it and its successors retry.
        const retry = new Map<string, QueuedRecord[]>();
        const succeededParts: ResolvedPart[] = [];
        for (const [key, entries] of work.partitions) {
          const firstFailed = reported.get(key);
          const cut =
            firstFailed === undefined
              ? entries.length
              : entries.findIndex((e) => e.record.offset === firstFailed);
          const succeeded = entries.slice(0, cut);
          deps.observer?.succeeded?.(succeeded.filter((e) => e.matched));
          succeededParts.push(...partOf(key, succeeded));
          if (cut < entries.length) retry.set(key, entries.slice(cut));
        }
        await deps.resolve(succeededParts);
        failed = { partitions: retry, attempts };
        error = new Error('Partial batch failure');
      }
    }
    deps.observer?.invoked?.(matched.length, false, error);
    const state: FailureState = { requestId: result.requestId, ...(error ? { error } : {}) };
    const outcome = nextStep(failed, deps.policy, Date.now());
    if (outcome === 'bisect') {
      // Splitting does not count as a retry attempt (as for Kinesis); halves keep the count so far.
      pending.unshift(...bisect({ partitions: failed.partitions, attempts: work.attempts }));
    } else if (outcome === 'retry') {
      await sleep(deps.retryDelayMs(attempts), undefined, { signal: deps.signal }).catch(() => undefined);
      pending.unshift(failed);
    } else {
      await exhaust(failed, toMskEvent(deps.source, flatRecords(failed)), outcome, state, deps, attempts);
      if (deps.signal.aborted) return;
      await resolveWork(failed);
    }
  }
}

/**
 * The batch as work: first the records older than MaximumRecordAgeInSeconds (each partition's leading ones, so
 * offsets still resolve in order; a younger record before an older one keeps it in the invoked part), then the rest.
 */
function splitExpired(partitions: Map<string, QueuedRecord[]>, policy: RetryPolicy, now: number): Work[] {
  if (policy.maximumRecordAgeInSeconds === -1) return [{ partitions, attempts: 0 }];
  const cutoff = now - policy.maximumRecordAgeInSeconds * 1000;
  const expired = new Map<string, QueuedRecord[]>();
  const fresh = new Map<string, QueuedRecord[]>();
  for (const [key, entries] of partitions) {
    const firstFresh = entries.findIndex((entry) => entry.record.timestamp >= cutoff);
    const cut = firstFresh === -1 ? entries.length : firstFresh;
    if (cut > 0) expired.set(key, entries.slice(0, cut));
    if (cut < entries.length) fresh.set(key, entries.slice(cut));
  }
  const work: Work[] = [];
  if (expired.size > 0) work.push({ partitions: expired, attempts: 0, expired: true });
  if (fresh.size > 0) work.push({ partitions: fresh, attempts: 0 });
  return work;
}

type Step = 'retry' | 'bisect' | FailureCondition;

function nextStep(work: Work, policy: RetryPolicy, now: number): Step {
  if (policy.maximumRecordAgeInSeconds !== -1) {
    const oldest = Math.min(...[...work.partitions.values()].flat().map((e) => e.record.timestamp));
    if (now - oldest > policy.maximumRecordAgeInSeconds * 1000) return 'RecordAgeExceeded';
  }
  if (policy.bisectBatchOnFunctionError && recordCount(work) > 1) return 'bisect';
  if (policy.maximumRetryAttempts !== -1 && work.attempts > policy.maximumRetryAttempts) {
    return 'RetryAttemptsExhausted';
  }
  return 'retry';
}

async function exhaust(
  work: Work,
  event: MSKEvent,
  condition: FailureCondition,
  state: FailureState,
  deps: BatchProcessorDeps,
  attempts = work.attempts,
): Promise<void> {
  const entries = [...work.partitions.values()].flat();
  if (!deps.writeDestination) {
    // Without a destination Lambda discards the records and moves on.
    deps.observer?.sentToDestination?.(entries, condition);
    return;
  }
  const functionArn = `arn:aws:lambda:${deps.fn.region}:${deps.fn.accountId}:function:${deps.fn.functionName}`;
  for (let attempt = 1; !deps.signal.aborted; attempt += 1) {
    try {
      await deps.writeDestination({
        esmUuid: deps.esmUuid,
        failure: {
          condition,
          requestId: state.requestId,
          functionArn,
          approximateInvokeCount: attempts,
          ...(state.error ? { functionError: state.error.name } : {}),
        },
        event,
        partitions: work.partitions,
      });
      deps.observer?.sentToDestination?.(entries, condition);
      return;
    } catch (error) {
      // The offsets must not move before the destination holds the record: keep trying.
      deps.observer?.destinationError?.(error as Error);
      await sleep(deps.retryDelayMs(attempt), undefined, { signal: deps.signal }).catch(() => undefined);
    }
  }
}

/** Reported failures as the first failed offset per partition, or 'invalid' for an unknown record. */
function itemFailures(response: unknown, work: Work): Map<string, bigint> | 'invalid' | undefined {
  const items = (response as { batchItemFailures?: unknown } | null | undefined)?.batchItemFailures;
  if (!Array.isArray(items)) return undefined;
  const firstFailed = new Map<string, bigint>();
  for (const item of items) {
    const id = (item as { itemIdentifier?: { partition?: unknown; offset?: unknown } } | null)
      ?.itemIdentifier;
    if (
      typeof id?.partition !== 'string' ||
      (typeof id.offset !== 'number' && typeof id.offset !== 'string')
    ) {
      return 'invalid';
    }
    const offset = BigInt(id.offset);
    const entries = work.partitions.get(id.partition);
    if (!entries?.some((entry) => entry.matched && entry.record.offset === offset)) return 'invalid';
    const current = firstFailed.get(id.partition);
    if (current === undefined || offset < current) firstFailed.set(id.partition, offset);
  }
  return firstFailed;
}

function recordCount(work: Work): number {
  let count = 0;
  for (const entries of work.partitions.values()) count += entries.length;
  return count;
}

function flatRecords(work: Work) {
  return [...work.partitions.values()]
    .flat()
    .filter((entry) => entry.matched)
    .map((entry) => entry.record);
}

/** Splits in flattened (partition, offset) order, so each half keeps every partition's order. */
function bisect(work: Work): Work[] {
  const flat = [...work.partitions].flatMap(([key, entries]) =>
    entries.map((entry) => [key, entry] as const),
  );
  const half = Math.ceil(flat.length / 2);
  return [flat.slice(0, half), flat.slice(half)].map((part) => {
    const partitions = new Map<string, QueuedRecord[]>();
    for (const [key, entry] of part) {
      const list = partitions.get(key) ?? [];
      list.push(entry);
      partitions.set(key, list);
    }
    return { partitions, attempts: work.attempts };
  });
}
