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

interface Sandbox {
  worker: Worker;
  pending: Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>;
}

/**
 * Like a Lambda execution environment, the worker is created on first use (cold start) and replaced after
 * it crashed or an invocation timed out (Lambda discards a timed-out environment; its code may still run).
 * Concurrent invocations of the function share the worker, so a timeout also fails those (they are retried).
 */
export function workerHandler(
  handlerPath: string,
  env: Record<string, string>,
  options: WorkerHandlerOptions = {},
): WorkerHandler {
  const root = options.root ?? process.cwd();
  let sandbox: Sandbox | undefined;
  let nextId = 1;

  const discard = (current: Sandbox, reason: Error) => {
    if (sandbox === current) sandbox = undefined;
    for (const waiter of current.pending.values()) waiter.reject(reason);
    current.pending.clear();
    void current.worker.terminate();
  };

  const start = (): Sandbox => {
    const worker = new Worker(new URL('./function-worker-entry.mjs', import.meta.url), {
      workerData: { handlerPath, root },
      env: { ...process.env, ...env },
      ...(options.output ? { stdout: true, stderr: true } : {}),
    });
    if (options.output) {
      worker.stdout.pipe(options.output, { end: false });
      worker.stderr.pipe(options.output, { end: false });
    }
    const current: Sandbox = { worker, pending: new Map() };
    worker.on('message', (reply: WorkerReply) => {
      const waiter = current.pending.get(reply.id);
      current.pending.delete(reply.id);
      if (!waiter) return;
      if (reply.ok) waiter.resolve(reply.response);
      else waiter.reject(Object.assign(new Error(reply.error.message), reply.error));
    });
    worker.on('error', (error) =>
      discard(current, new Error(`${handlerPath} crashed its worker: ${error.message}`)),
    );
    worker.on('exit', (code) => discard(current, new Error(`${handlerPath}: worker exited (code ${code})`)));
    return current;
  };

  const handler: EsmHandler = (event, context) => {
    sandbox ??= start();
    const current = sandbox;
    const id = nextId++;
    const { getRemainingTimeInMillis, done, fail, succeed, ...fields } = context;
    const remaining = getRemainingTimeInMillis();
    const invocation: WorkerInvocation = {
      id,
      event,
      context: { ...fields, deadline: Date.now() + remaining },
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (current.pending.has(id))
          discard(current, new Error(`${handlerPath}: timed out; worker replaced`));
      }, remaining + 100);
      current.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      current.worker.postMessage(invocation);
    });
  };
  return {
    handler,
    close: async () => {
      const current = sandbox;
      sandbox = undefined;
      if (current) await current.worker.terminate();
    },
  };
}
