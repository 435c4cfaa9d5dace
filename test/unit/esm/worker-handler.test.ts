import { execFileSync } from 'node:child_process';
import type { MSKEvent } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { type InvocationResult, invokeHandler } from '../../../local/esm/invoker';
import {
  defaultInstances,
  memorySizeOf,
  type WorkerHandler,
  workerHandler,
} from '../../../local/esm/worker-handler';

const fn = {
  functionName: 'fixture',
  timeoutSeconds: 10,
  memorySize: 128,
  region: 'eu-west-1',
  accountId: '1',
};
const event = (extra: Record<string, unknown> = {}) => ({ records: {}, ...extra }) as unknown as MSKEvent;

describe('workerHandler (worker threads as execution environments)', () => {
  const billing = workerHandler('test/unit/esm/fixtures/env-handler.handler', {
    FIXTURE_TABLE: 'billing-table',
  });
  const notifications = workerHandler('test/unit/esm/fixtures/env-handler.handler', {
    FIXTURE_TABLE: 'notifications-table',
  });
  const all: WorkerHandler[] = [billing, notifications];
  afterAll(() => Promise.all(all.map((w) => w.close())));

  it('gives each function its own environment', async () => {
    const a = await invokeHandler(billing.handler, event(), fn);
    const b = await invokeHandler(notifications.handler, event(), fn);
    expect(a).toMatchObject({ ok: true, response: { table: 'billing-table' } });
    expect(b).toMatchObject({ ok: true, response: { table: 'notifications-table' } });
  });

  it('fails a timed-out invocation and serves the next one from a fresh worker', async () => {
    const timedOut = await invokeHandler(billing.handler, event({ hang: true }), {
      ...fn,
      timeoutSeconds: 0.5,
    });
    expect(timedOut).toMatchObject({ ok: false, timedOut: true });
    const next = await invokeHandler(billing.handler, event(), fn);
    expect(next).toMatchObject({ ok: true, response: { table: 'billing-table' } });
  }, 60_000);

  it('runs one invocation per environment and at most `instances` environments, reusing warm ones', async () => {
    const pool = workerHandler('test/unit/esm/fixtures/env-handler.handler', {}, { instances: 2 });
    all.push(pool);
    const results = await Promise.all(
      Array.from({ length: 6 }, () => invokeHandler(pool.handler, event({ sleepMs: 150 }), fn)),
    );
    const responses = results.map((r) => {
      if (!r.ok) throw r.error;
      return r.response as { threadId: number; maxInFlight: number };
    });
    expect(new Set(responses.map((r) => r.threadId)).size).toBe(2);
    expect(Math.max(...responses.map((r) => r.maxInFlight))).toBe(1);
  }, 60_000);

  it('counts a cold start per new environment, timed from its start to its first answer (dev table)', async () => {
    const pool = workerHandler('test/unit/esm/fixtures/env-handler.handler', {}, { instances: 1 });
    all.push(pool);
    expect(pool.coldStarts()).toEqual({ count: 0, lastMs: undefined });
    const first = await invokeHandler(pool.handler, event({ sleepMs: 50 }), fn);
    expect(first.ok).toBe(true);
    const afterFirst = pool.coldStarts();
    expect(afterFirst.count).toBe(1);
    expect(afterFirst.lastMs).toBeGreaterThanOrEqual(50);
    // Warm: the same environment answers, no new cold start.
    await invokeHandler(pool.handler, event(), fn);
    expect(pool.coldStarts()).toEqual(afterFirst);
  });

  it('keeps an environment whose handler threw: the next invocation runs warm in it', async () => {
    const pool = workerHandler('test/unit/esm/fixtures/env-handler.handler', {}, { instances: 1 });
    all.push(pool);
    const threadOf = (result: InvocationResult) => {
      if (!result.ok) throw result.error;
      return (result.response as { threadId: number }).threadId;
    };
    const before = threadOf(await invokeHandler(pool.handler, event(), fn));
    const failed = await invokeHandler(pool.handler, event({ fail: true }), fn);
    expect(failed.ok ? undefined : failed.error.message).toBe('fixture failure');
    expect(threadOf(await invokeHandler(pool.handler, event(), fn))).toBe(before);
  }, 60_000);
  it('fails the invocations running and waiting when closed, and refuses new ones', async () => {
    const pool = workerHandler('test/unit/esm/fixtures/env-handler.handler', {}, { instances: 1 });
    const running = invokeHandler(pool.handler, event({ hang: true }), fn);
    const waiting = invokeHandler(pool.handler, event(), fn);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await pool.close();
    for (const result of await Promise.all([running, waiting])) {
      expect(result.ok ? undefined : result.error.message).toMatch(/its workers are closed/);
    }
    const after = await invokeHandler(pool.handler, event(), fn);
    expect(after.ok ? undefined : after.error.message).toMatch(/its workers are closed/);
  }, 60_000);
});

describe("an environment's heap: Lambda's for the function's memory size", () => {
  /** The heap limit of a node started as Lambda's Node.js bootstrap starts it for `memory` MB. */
  const lambdaHeapLimit = (memory: number) => {
    const newSpace = Math.floor(memory / 10);
    return Number(
      execFileSync(process.execPath, [
        `--max-semi-space-size=${Math.floor(newSpace / 2)}`,
        `--max-old-space-size=${memory - newSpace}`,
        '-p',
        'require("v8").getHeapStatistics().heap_size_limit',
      ]).toString(),
    );
  };
  const heapLimitWith = async (env: Record<string, string>) => {
    const pool = workerHandler('test/unit/esm/fixtures/env-handler.handler', env, { instances: 1 });
    try {
      const result = await invokeHandler(pool.handler, event(), fn);
      if (!result.ok) throw result.error;
      return (result.response as { heapLimit: number }).heapLimit;
    } finally {
      await pool.close();
    }
  };

  it('sizes the heap from AWS_LAMBDA_FUNCTION_MEMORY_SIZE as the runtime does; V8 defaults without it', async () => {
    const at1024 = await heapLimitWith({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1024' });
    expect(at1024).toBe(lambdaHeapLimit(1024));
    expect(await heapLimitWith({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '256' })).toBe(lambdaHeapLimit(256));
    // Without it (this process has none to pass on): V8's defaults, sized by the machine.
    expect(process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE).toBeUndefined();
    expect(await heapLimitWith({})).not.toBe(at1024);
  }, 60_000);

  it('names AWS_LAMBDA_FUNCTION_MEMORY_SIZE when it is not a memory size Lambda has', () => {
    expect(memorySizeOf({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: '1769' })).toBe(1769);
    expect(memorySizeOf({})).toBeUndefined();
    for (const bad of ['64', '10241', '1.5', 'lots']) {
      expect(() => memorySizeOf({ AWS_LAMBDA_FUNCTION_MEMORY_SIZE: bad })).toThrow(
        `AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be a whole number of MB from 128 to 10240, got "${bad}"`,
      );
    }
    expect(() => workerHandler('x.handler', { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: 'lots' })).toThrow(
      /got "lots"/,
    );
  });
});

describe('defaultInstances', () => {
  it('reads ESM_FUNCTION_INSTANCES and names it when it is not a whole number >= 1', () => {
    expect(defaultInstances({ ESM_FUNCTION_INSTANCES: '3' })).toBe(3);
    expect(defaultInstances({})).toBeGreaterThanOrEqual(2);
    expect(() => defaultInstances({ ESM_FUNCTION_INSTANCES: '0' })).toThrow(
      'ESM_FUNCTION_INSTANCES must be a whole number >= 1, got "0"',
    );
    expect(() => defaultInstances({ ESM_FUNCTION_INSTANCES: 'many' })).toThrow(/got "many"/);
  });
});
