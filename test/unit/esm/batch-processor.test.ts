import type { Context, MSKEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { type BatchProcessorDeps, processBatch, type RetryPolicy } from '../../../local/esm/batch-processor';
import type { Batch, QueuedRecord } from '../../../local/esm/batcher';
import type { FailedBatch } from '../../../local/esm/destinations';
import type { EsmHandler } from '../../../local/esm/invoker';
import { queued } from './records';

const noRetryLimits: RetryPolicy = {
  maximumRetryAttempts: -1,
  maximumRecordAgeInSeconds: -1,
  bisectBatchOnFunctionError: false,
  reportBatchItemFailures: false,
};

function batchOf(entries: QueuedRecord[]): Batch {
  const partitions = new Map<string, QueuedRecord[]>();
  for (const entry of entries) {
    const key = `t-${entry.record.partition}`;
    partitions.set(key, [...(partitions.get(key) ?? []), entry]);
  }
  return { id: 1, partitions };
}

const offsetsIn = (event: MSKEvent) =>
  Object.entries(event.records).flatMap(([key, records]) => records.map((r) => `${key}@${r.offset}`));

function harness(policy: RetryPolicy, handler: EsmHandler, withDestination = true) {
  const commits: string[] = [];
  const released: string[] = [];
  const destination: FailedBatch[] = [];
  const deps: BatchProcessorDeps = {
    esmUuid: 'uuid',
    policy,
    handler,
    source: { eventSourceArn: 'arn:x', bootstrapServers: 'b:9092' },
    fn: { functionName: 'fn', timeoutSeconds: 1, memorySize: 128, region: 'eu-west-1', accountId: '1' },
    ...(withDestination ? { writeDestination: async (b: FailedBatch) => void destination.push(b) } : {}),
    resolve: async (parts) => {
      for (const { key, lastOffset, done } of parts) {
        commits.push(`${key}@${lastOffset + 1n}`);
        if (done) released.push(key);
      }
    },
    retryDelayMs: () => 1,
    signal: new AbortController().signal,
  };
  return { deps, commits, released, destination };
}

describe('processBatch', () => {
  it('commits every partition after a successful invocation, filtered records included', async () => {
    const seen: string[][] = [];
    const h = harness(noRetryLimits, async (event) => void seen.push(offsetsIn(event)));
    await processBatch(batchOf([queued(0, 0), queued(0, 1, 0, false), queued(1, 5)]), h.deps);
    expect(seen).toEqual([['t-0@0', 't-1@5']]);
    expect(h.commits).toEqual(['t-0@2', 't-1@6']);
    expect(h.released).toEqual(['t-0', 't-1']);
  });

  it('retries the whole batch without retry settings until it succeeds', async () => {
    let calls = 0;
    const h = harness(noRetryLimits, async () => {
      calls += 1;
      if (calls < 4) throw new Error('boom');
    });
    await processBatch(batchOf([queued(0, 0), queued(0, 1)]), h.deps);
    expect(calls).toBe(4);
    expect(h.commits).toEqual(['t-0@2']);
  });

  it('sends the batch to the destination after MaximumRetryAttempts, then moves on', async () => {
    let calls = 0;
    const h = harness({ ...noRetryLimits, maximumRetryAttempts: 2 }, async () => {
      calls += 1;
      throw new Error('boom');
    });
    await processBatch(batchOf([queued(0, 0), queued(0, 1)]), h.deps);
    expect(calls).toBe(3);
    expect(h.destination).toHaveLength(1);
    expect(h.destination[0]?.failure).toMatchObject({
      condition: 'RetryAttemptsExhausted',
      approximateInvokeCount: 3,
    });
    expect(h.commits).toEqual(['t-0@2']);
  });

  it('treats a timeout as a failure', async () => {
    const h = harness({ ...noRetryLimits, maximumRetryAttempts: 0 }, () => new Promise(() => undefined));
    h.deps.fn.timeoutSeconds = 0.05;
    await processBatch(batchOf([queued(0, 0)]), h.deps);
    expect(h.destination[0]?.failure.functionError).toBe('HandlerTimeoutError');
  });

  it('bisects down to the poison record; the others succeed', async () => {
    const h = harness(
      { ...noRetryLimits, maximumRetryAttempts: 1, bisectBatchOnFunctionError: true },
      async (event) => {
        if (offsetsIn(event).includes('t-0@2')) throw new Error('poison');
      },
    );
    await processBatch(batchOf([0, 1, 2, 3].map((o) => queued(0, o))), h.deps);
    expect(
      h.destination.map((b) => [...b.partitions.values()].flat().map((e) => Number(e.record.offset))),
    ).toEqual([[2]]);
    expect(h.commits).toEqual(['t-0@2', 't-0@3', 't-0@4']);
    expect(h.released).toEqual(['t-0']);
  });

  it('retries only the reported record and its successors in that partition', async () => {
    const seen: string[][] = [];
    const h = harness({ ...noRetryLimits, reportBatchItemFailures: true }, async (event) => {
      seen.push(offsetsIn(event));
      return seen.length === 1
        ? { batchItemFailures: [{ itemIdentifier: { partition: 't-0', offset: 1 } }] }
        : {};
    });
    await processBatch(batchOf([queued(0, 0), queued(0, 1), queued(0, 2), queued(1, 0)]), h.deps);
    expect(seen).toEqual([
      ['t-0@0', 't-0@1', 't-0@2', 't-1@0'],
      ['t-0@1', 't-0@2'],
    ]);
    expect(h.commits).toEqual(['t-0@1', 't-1@1', 't-0@3']);
  });

  it('retries the whole batch when a reported identifier is not in it', async () => {
    const seen: string[][] = [];
    const h = harness({ ...noRetryLimits, reportBatchItemFailures: true }, async (event) => {
      seen.push(offsetsIn(event));
      return seen.length === 1
        ? { batchItemFailures: [{ itemIdentifier: { partition: 't-0', offset: 99 } }] }
        : null;
    });
    await processBatch(batchOf([queued(0, 0), queued(0, 1)]), h.deps);
    expect(seen).toEqual([
      ['t-0@0', 't-0@1'],
      ['t-0@0', 't-0@1'],
    ]);
  });

  it('gives up on records older than MaximumRecordAgeInSeconds', async () => {
    const h = harness({ ...noRetryLimits, maximumRecordAgeInSeconds: 60 }, async () => {
      throw new Error('boom');
    });
    const old = queued(0, 0);
    old.record.timestamp = Date.now() - 120_000;
    await processBatch(batchOf([old]), h.deps);
    expect(h.destination[0]?.failure.condition).toBe('RecordAgeExceeded');
  });

  it('never sends records older than MaximumRecordAgeInSeconds to the function: they go to the destination first', async () => {
    const seen: string[][] = [];
    const h = harness({ ...noRetryLimits, maximumRecordAgeInSeconds: 60 }, async (event) => {
      seen.push(offsetsIn(event));
    });
    const records = [queued(0, 0), queued(0, 1), queued(0, 2), queued(1, 7)];
    for (const entry of records.slice(0, 2)) entry.record.timestamp = Date.now() - 120_000;
    await processBatch(batchOf(records), h.deps);
    expect(h.destination).toHaveLength(1);
    expect(h.destination[0]?.failure).toMatchObject({
      condition: 'RecordAgeExceeded',
      approximateInvokeCount: 0,
    });
    expect(offsetsIn(h.destination[0]?.event as MSKEvent)).toEqual(['t-0@0', 't-0@1']);
    expect(seen).toEqual([['t-0@2', 't-1@7']]);
    // In offset order: the expired prefix first, then the invoked part.
    expect(h.commits).toEqual(['t-0@2', 't-0@3', 't-1@8']);
    expect(h.released).toEqual(['t-0', 't-1']);
  });

  it('does not commit when stopped while retrying', async () => {
    const controller = new AbortController();
    const h = harness(noRetryLimits, async () => {
      controller.abort();
      throw new Error('boom');
    });
    h.deps.signal = controller.signal;
    await processBatch(batchOf([queued(0, 0)]), h.deps);
    expect(h.commits).toEqual([]);
  });

  it('invokes the handler with a Lambda-like context: name, ARN, request id, memory, remaining time', async () => {
    const contexts: Context[] = [];
    const remaining: number[] = [];
    const h = harness(noRetryLimits, async (_event, context) => {
      contexts.push(context);
      remaining.push(context.getRemainingTimeInMillis());
    });
    await processBatch(batchOf([queued(0, 0)]), h.deps);
    expect(contexts[0]).toMatchObject({
      functionName: 'fn',
      invokedFunctionArn: 'arn:aws:lambda:eu-west-1:1:function:fn',
      memoryLimitInMB: '128',
    });
    expect(contexts[0]?.awsRequestId).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
    );
    // Counts down from the configured timeout (1 s).
    expect(remaining[0]).toBeGreaterThan(0);
    expect(remaining[0]).toBeLessThanOrEqual(1000);
  });

  it('moves the offsets only once the destination holds the record, retrying a failed destination write', async () => {
    let writes = 0;
    const commitsAtWrite: number[] = [];
    const h = harness({ ...noRetryLimits, maximumRetryAttempts: 0 }, async () => {
      throw new Error('boom');
    });
    h.deps.writeDestination = async (batch) => {
      writes += 1;
      commitsAtWrite.push(h.commits.length);
      if (writes < 3) throw new Error('S3 unavailable');
      h.destination.push(batch);
    };
    await processBatch(batchOf([queued(0, 0), queued(0, 1)]), h.deps);
    expect(writes).toBe(3);
    // Nothing was committed while the destination refused the record.
    expect(commitsAtWrite).toEqual([0, 0, 0]);
    expect(h.destination).toHaveLength(1);
    expect(h.commits).toEqual(['t-0@2']);
  });

  it('does not commit when stopped while the destination write keeps failing', async () => {
    const controller = new AbortController();
    const h = harness({ ...noRetryLimits, maximumRetryAttempts: 0 }, async () => {
      throw new Error('boom');
    });
    h.deps.signal = controller.signal;
    h.deps.writeDestination = async () => {
      controller.abort();
      throw new Error('S3 unavailable');
    };
    await processBatch(batchOf([queued(0, 0)]), h.deps);
    expect(h.commits).toEqual([]);
  });
});
