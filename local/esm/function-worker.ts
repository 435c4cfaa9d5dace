// Runs one function's handler inside a worker thread, so each function gets its own process.env (two
// functions both read IDEMPOTENCY_TABLE, with different values) and its own module state, as on Lambda.
// Lambda runs nodejs22.x; locally Node 20 lacks Promise.withResolvers, which @platformatic/kafka (the
// functions' producer) needs.
import '../../shared/kafka/node20-polyfills';
import { parentPort, workerData } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import { resolveHandler } from './invoker';

export interface WorkerInvocation {
  id: number;
  event: unknown;
  context: Omit<Context, 'getRemainingTimeInMillis' | 'done' | 'fail' | 'succeed'> & { deadline: number };
}

export type WorkerReply =
  | { id: number; ok: true; response: unknown }
  | { id: number; ok: false; error: { name: string; message: string; stack?: string } };

const { handlerPath, root } = workerData as { handlerPath: string; root: string };
// A benchmark's probe (bench:e2e: the thread's CPU profile and DynamoDB requests), loaded before the handler.
if (process.env.ESM_WORKER_PROBE) await import(process.env.ESM_WORKER_PROBE);
const handler = await resolveHandler(handlerPath, root);
const port = parentPort;
if (!port) throw new Error('function-worker.ts must run in a worker thread');

port.on('message', (invocation: WorkerInvocation) => {
  const { deadline, ...fields } = invocation.context;
  const context: Context = {
    ...fields,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
  Promise.resolve()
    .then(() => handler(invocation.event as never, context))
    .then(
      (response) => port.postMessage({ id: invocation.id, ok: true, response } satisfies WorkerReply),
      (error: Error) =>
        port.postMessage({
          id: invocation.id,
          ok: false,
          error: {
            name: error?.name ?? 'Error',
            message: error?.message ?? String(error),
            stack: error?.stack,
          },
        } satisfies WorkerReply),
    );
});
