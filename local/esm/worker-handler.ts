// An EsmHandler that forwards invocations to the function's worker thread (see function-worker.ts).
import { Worker } from 'node:worker_threads';
import type { WorkerInvocation, WorkerReply } from './function-worker';
import type { EsmHandler } from './invoker';

export interface WorkerHandler {
  handler: EsmHandler;
  close(): Promise<void>;
}

export interface WorkerHandlerOptions {
  root?: string;
  /** Where the function's console output goes (default: this process's stdout/stderr). */
  output?: NodeJS.WritableStream;
}

export function workerHandler(
  handlerPath: string,
  env: Record<string, string>,
  options: WorkerHandlerOptions = {},
): WorkerHandler {
  const root = options.root ?? process.cwd();
  const worker = new Worker(new URL('./function-worker-entry.mjs', import.meta.url), {
    workerData: { handlerPath, root },
    env: { ...process.env, ...env },
    ...(options.output ? { stdout: true, stderr: true } : {}),
  });
  if (options.output) {
    worker.stdout.pipe(options.output, { end: false });
    worker.stderr.pipe(options.output, { end: false });
  }
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  let nextId = 1;
  let failure: Error | undefined;
  worker.on('message', (reply: WorkerReply) => {
    const waiter = pending.get(reply.id);
    pending.delete(reply.id);
    if (!waiter) return;
    if (reply.ok) waiter.resolve(reply.response);
    else waiter.reject(Object.assign(new Error(reply.error.message), reply.error));
  });
  worker.on('error', (error) => {
    failure = new Error(`${handlerPath} crashed its worker: ${error.message}`);
    for (const waiter of pending.values()) waiter.reject(failure);
    pending.clear();
  });

  const handler: EsmHandler = (event, context) => {
    if (failure) return Promise.reject(failure);
    const id = nextId++;
    const { getRemainingTimeInMillis, done, fail, succeed, ...fields } = context;
    const invocation: WorkerInvocation = {
      id,
      event,
      context: { ...fields, deadline: Date.now() + getRemainingTimeInMillis() },
    };
    return new Promise((resolve, reject) => {
      pending.set(id, { resolve, reject });
      worker.postMessage(invocation);
    });
  };
  return { handler, close: async () => void (await worker.terminate()) };
}
