// The message loop of a function's worker thread: invocations from worker-handler.ts (one at a time), each
// answered with the handler's response or its error. Plain JavaScript, so a worker running a bundle loads no
// TypeScript at all: registering tsx in the worker was ~0.4 s of every cold start on a loaded 2-core machine.
// The messages are WorkerInvocation and WorkerReply (worker-handler.ts).
import { parentPort } from 'node:worker_threads';

export function serve(handler) {
  const port = parentPort;
  if (!port) throw new Error('a function worker must run in a worker thread');
  port.on('message', (invocation) => {
    const { deadline, ...fields } = invocation.context;
    const context = {
      ...fields,
      getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
      done: () => undefined,
      fail: () => undefined,
      succeed: () => undefined,
    };
    Promise.resolve()
      .then(() => handler(JSON.parse(invocation.payload), context))
      .then(
        (response) => port.postMessage({ id: invocation.id, ok: true, response }),
        (error) =>
          port.postMessage({
            id: invocation.id,
            ok: false,
            error: {
              name: error?.name ?? 'Error',
              message: error?.message ?? String(error),
              stack: error?.stack,
            },
          }),
      );
  });
}
