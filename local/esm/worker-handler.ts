// An EsmHandler that forwards invocations to the function's worker threads (function-worker-entry.mjs).
import { cpus } from 'node:os';
import { type ResourceLimits, Worker } from 'node:worker_threads';
import type { Context } from 'aws-lambda';
import type { EsmHandler } from './invoker';

/** What worker-loop.mjs receives and answers. */
export interface WorkerInvocation {
  id: number;
  /**
   * The event as JSON text, as Lambda's runtime receives it. Cheaper to pass than the object: a structured clone
   * of an MSK event (its headers are arrays of byte numbers) cost 2-4x JSON's stringify and parse per record.
   */
  payload: string;
  context: Omit<Context, 'getRemainingTimeInMillis' | 'done' | 'fail' | 'succeed'> & { deadline: number };
}

export type WorkerReply =
  | { id: number; ok: true; response: unknown }
  | { id: number; ok: false; error: { name: string; message: string; stack?: string } };

export interface WorkerHandler {
  handler: EsmHandler;
  close(): Promise<void>;
  /** Cold starts so far, and the latest one's duration: environment start to its first invocation's answer. */
  coldStarts(): { count: number; lastMs: number | undefined };
  /**
   * New code (a rebuilt bundle): the next invocations start fresh environments. Idle ones stop now; one
   * running an invocation finishes it on the code it has (its result counts, once) and stops after it.
   */
  reload(): void;
}

export interface WorkerHandlerOptions {
  root?: string;
  /** Where the function's console output goes (default: this process's stdout/stderr). */
  output?: NodeJS.WritableStream;
  /**
   * Execution environments (worker threads) the function may run at once; further invocations wait for one
   * to be free. Default: ESM_FUNCTION_INSTANCES, else one per CPU (at least 2).
   */
  instances?: number;
  /**
   * The function's bundle (handler.cjs, see bundles.ts) to run; without it the worker runs the TypeScript
   * sources of `handlerPath` through tsx.
   */
  bundle?: string;
}

interface Sandbox {
  worker: Worker;
  startedAt: number;
  invocations: number;
  /** The reload() count when it started: an older one runs code that has been replaced. */
  generation: number;
  /** The invocation it runs: like a Lambda execution environment, one at a time. */
  pending: Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>;
}

export function defaultInstances(env: NodeJS.ProcessEnv = process.env): number {
  const configured = env.ESM_FUNCTION_INSTANCES;
  if (configured === undefined || configured === '') return Math.max(2, cpus().length);
  const instances = Number(configured);
  if (!Number.isInteger(instances) || instances < 1) {
    throw new Error(`ESM_FUNCTION_INSTANCES must be a whole number >= 1, got "${configured}"`);
  }
  return instances;
}

/**
 * The V8 heap Lambda's Node.js runtime gives a function of `memoryMb` MB: its bootstrap starts node with
 * --max-semi-space-size=memory/10/2 and --max-old-space-size=memory - memory/10 (read from
 * AWS_LAMBDA_FUNCTION_MEMORY_SIZE). As a worker's limits: V8's young generation is three semi-spaces (two, and
 * as much for new large objects), so a 1024 MB function gets 51 MB semi-spaces and a ~1.1 GB heap limit, as in
 * Lambda, where a worker's defaults would give it 16 MB and ~4 GB here (V8 sizes them by the machine).
 */
export function lambdaHeapLimits(memoryMb: number): ResourceLimits {
  const newSpace = Math.floor(memoryMb / 10);
  return {
    maxYoungGenerationSizeMb: 3 * Math.floor(newSpace / 2),
    maxOldGenerationSizeMb: memoryMb - newSpace,
  };
}

/** The function's memory size from its environment, as Lambda sets it; undefined when not set. */
export function memorySizeOf(env: Record<string, string | undefined>): number | undefined {
  const configured = env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE;
  if (configured === undefined || configured === '') return undefined;
  const memory = Number(configured);
  // Lambda's range: 128 MB to 10,240 MB.
  if (!Number.isInteger(memory) || memory < 128 || memory > 10_240) {
    throw new Error(
      `AWS_LAMBDA_FUNCTION_MEMORY_SIZE must be a whole number of MB from 128 to 10240, got "${configured}"`,
    );
  }
  return memory;
}

/**
 * Like Lambda's execution environments: a worker is created when an invocation finds none free (cold start),
 * runs one invocation at a time, is reused while warm, and is replaced after it crashed or an invocation
 * timed out (Lambda discards a timed-out environment; its code may still run). At most `instances` exist;
 * module state (a pool of one database connection, say) is per environment, as on Lambda.
 */
export function workerHandler(
  handlerPath: string,
  env: Record<string, string>,
  options: WorkerHandlerOptions = {},
): WorkerHandler {
  const root = options.root ?? process.cwd();
  const limit = options.instances ?? defaultInstances();
  const workerEnv = { ...process.env, ...env };
  const memory = memorySizeOf(workerEnv);
  // The heap of the function's memory size, as Lambda's runtime sizes it; V8's defaults when none is given.
  const resourceLimits = memory === undefined ? undefined : lambdaHeapLimits(memory);
  const all = new Set<Sandbox>();
  const idle: Sandbox[] = [];
  const waiting: { resolve: (sandbox: Sandbox) => void; reject: (error: Error) => void }[] = [];
  let closed = false;
  let nextId = 1;
  let generation = 0;
  const cold = { count: 0, lastMs: undefined as number | undefined };

  /** Gives a free (or new) environment to the next waiting invocation, if any. */
  const dispatch = () => {
    while (waiting.length > 0 && !closed) {
      const sandbox = idle.pop() ?? (all.size < limit ? start() : undefined);
      if (!sandbox) return;
      waiting.shift()?.resolve(sandbox);
    }
  };

  const release = (sandbox: Sandbox) => {
    if (sandbox.generation !== generation) retire(sandbox);
    else if (all.has(sandbox)) idle.push(sandbox);
    dispatch();
  };

  /** Stops an environment that has nothing running (replaced code). */
  const retire = (sandbox: Sandbox) => {
    if (!all.delete(sandbox)) return;
    const at = idle.indexOf(sandbox);
    if (at >= 0) idle.splice(at, 1);
    void sandbox.worker.terminate();
  };

  const discard = (current: Sandbox, reason: Error) => {
    if (!all.delete(current)) return;
    const at = idle.indexOf(current);
    if (at >= 0) idle.splice(at, 1);
    for (const waiter of current.pending.values()) waiter.reject(reason);
    current.pending.clear();
    void current.worker.terminate();
    dispatch();
  };

  const start = (): Sandbox => {
    const worker = new Worker(new URL('./function-worker-entry.mjs', import.meta.url), {
      workerData: { handlerPath, root, bundle: options.bundle },
      // A bundle needs no loader. A worker inherits the parent's execArgv, and with it tsx's --require/--import
      // (npm run dev, tsx): 0.5-1 s more per cold start on a loaded 2-core machine (billing 560-1,230 ms -> 66-205).
      ...(options.bundle ? { execArgv: [] } : {}),
      env: workerEnv,
      ...(resourceLimits ? { resourceLimits } : {}),
      ...(options.output ? { stdout: true, stderr: true } : {}),
    });
    const output = options.output;
    if (output) {
      // Forwarded, not piped: a pipe adds listeners to the shared output for every environment.
      worker.stdout.on('data', (chunk: Buffer) => output.write(chunk));
      worker.stderr.on('data', (chunk: Buffer) => output.write(chunk));
    }
    const current: Sandbox = {
      worker,
      startedAt: Date.now(),
      invocations: 0,
      generation,
      pending: new Map(),
    };
    all.add(current);
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

  const environment = () =>
    new Promise<Sandbox>((resolve, reject) => {
      if (closed) throw new Error(`${handlerPath}: its workers are closed`);
      waiting.push({ resolve, reject });
      dispatch();
    });

  const handler: EsmHandler = async (event, context) => {
    const { getRemainingTimeInMillis, done, fail, succeed, ...fields } = context;
    const deadline = Date.now() + getRemainingTimeInMillis();
    // Before an environment is taken: an event that cannot be sent fails without holding one.
    const payload = JSON.stringify(event);
    // Waiting for a free environment counts against the invocation's time, as throttling would.
    const current = await environment();
    const remaining = deadline - Date.now();
    if (remaining <= 0) {
      // The caller has already timed the invocation out; running it now would only duplicate its retry.
      release(current);
      throw new Error(`${handlerPath}: no execution environment free before the invocation's deadline`);
    }
    const id = nextId++;
    const invocation: WorkerInvocation = {
      id,
      payload,
      context: { ...fields, deadline },
    };
    // Like Lambda's Init Duration plus the first Duration: the module's start-up is in the cold start.
    const coldStart = current.invocations === 0;
    current.invocations += 1;
    const settled = () => {
      if (!coldStart) return;
      cold.count += 1;
      cold.lastMs = Date.now() - current.startedAt;
    };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (current.pending.has(id))
          discard(current, new Error(`${handlerPath}: timed out; worker replaced`));
      }, remaining + 100);
      current.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          settled();
          release(current);
          resolve(value);
        },
        reject: (error) => {
          clearTimeout(timer);
          settled();
          // A handler error leaves the environment usable; a discarded one is no longer in the pool.
          release(current);
          reject(error);
        },
      });
      current.worker.postMessage(invocation);
    });
  };
  return {
    handler,
    coldStarts: () => ({ ...cold }),
    reload: () => {
      generation += 1;
      for (const sandbox of [...idle]) retire(sandbox);
      dispatch();
    },
    close: async () => {
      closed = true;
      // Nothing is left hanging: invocations waiting for or running in an environment fail (the ESM retries).
      const reason = new Error(`${handlerPath}: its workers are closed`);
      for (const waiter of waiting.splice(0)) waiter.reject(reason);
      const sandboxes = [...all];
      all.clear();
      idle.length = 0;
      for (const sandbox of sandboxes) {
        for (const invocation of sandbox.pending.values()) invocation.reject(reason);
        sandbox.pending.clear();
      }
      await Promise.all(sandboxes.map((sandbox) => sandbox.worker.terminate()));
    },
  };
}
