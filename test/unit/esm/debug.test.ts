// `npm run dev -- --inspect`: a debugger attached to the dev process reaches each function's worker threads.
import inspector from 'node:inspector';
import type { MSKEvent } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { DEBUG_TIMEOUT_SECONDS, openInspector, withDebugTimeouts } from '../../../local/esm/debug';
import { invokeHandler } from '../../../local/esm/invoker';
import { workerHandler } from '../../../local/esm/worker-handler';
import { testDefinition } from '../../support/esm-definition';

describe('dev --inspect', () => {
  const functionWorkers = workerHandler('test/unit/esm/fixtures/env-handler.handler', {}, { instances: 1 });
  const session = new inspector.Session();
  afterAll(async () => {
    session.disconnect();
    inspector.close();
    await functionWorkers.close();
  });

  it('opens the inspector on 127.0.0.1 and lists the function environments (worker threads) as targets', async () => {
    const url = openInspector(0);
    expect(url).toMatch(/^ws:\/\/127\.0\.0\.1:\d+\//);
    // What a debugger client does once attached (VS Code, Chrome DevTools): enable the worker domain.
    session.connect();
    const attached = new Promise<{ workerInfo: { url: string; type: string } }>((resolve) =>
      session.on('NodeWorker.attachedToWorker', (message) => resolve(message.params as never)),
    );
    await new Promise<void>((resolve, reject) =>
      session.post('NodeWorker.enable', { waitForDebuggerOnStart: false }, (error) =>
        error ? reject(error) : resolve(),
      ),
    );
    const result = await invokeHandler(functionWorkers.handler, { records: {} } as unknown as MSKEvent, {
      functionName: 'fixture',
      timeoutSeconds: 30,
      memorySize: 128,
      region: 'eu-west-1',
      accountId: '1',
    });
    expect(result.ok).toBe(true);
    const { workerInfo } = await attached;
    expect(workerInfo.type).toBe('worker');
    expect(workerInfo.url).toMatch(/function-worker-entry\.mjs$/);
  });

  it('lifts every function timeout to 15 minutes, so a paused breakpoint does not replace the worker', () => {
    const [definition] = withDebugTimeouts([testDefinition('t', { timeoutSeconds: 30 })]);
    expect(definition?.timeoutSeconds).toBe(DEBUG_TIMEOUT_SECONDS);
    expect(DEBUG_TIMEOUT_SECONDS).toBe(900);
  });
});
