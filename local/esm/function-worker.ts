// Loads a function's handler from its TypeScript sources in a worker thread (function-worker-entry.mjs, which
// then serves its invocations). Lambda runs nodejs22.x; locally Node 20 lacks Promise.withResolvers, which
// @platformatic/kafka (the functions' producer) needs.
import '../../shared/kafka/node20-polyfills';
import { type EsmHandler, resolveHandler } from './invoker';

export async function sourceHandler({
  handlerPath,
  root,
}: {
  handlerPath: string;
  root: string;
}): Promise<EsmHandler> {
  // A benchmark's probe (bench:e2e: the thread's CPU profile and DynamoDB requests), loaded before the handler.
  if (process.env.ESM_WORKER_PROBE) await import(process.env.ESM_WORKER_PROBE);
  return resolveHandler(handlerPath, root);
}
