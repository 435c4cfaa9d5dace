import type { MSKEvent } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { invokeHandler } from '../../../local/esm/invoker';
import { type WorkerHandler, workerHandler } from '../../../local/esm/worker-handler';

const fn = {
  functionName: 'fixture',
  timeoutSeconds: 10,
  memorySize: 128,
  region: 'eu-west-1',
  accountId: '1',
};
const event = (extra: Record<string, unknown> = {}) => ({ records: {}, ...extra }) as unknown as MSKEvent;

describe('workerHandler (one worker thread per function)', () => {
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
});
