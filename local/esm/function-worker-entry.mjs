// A function's worker thread (worker-handler.ts): loads the handler, then serves invocations (worker-loop.mjs).
// - A bundle (bundles.ts) is `require`d as Lambda's runtime loads a CommonJS handler; nothing else loads.
// - The TypeScript sources load through tsx (function-worker.ts). Node 22+ runs the parent's `--import tsx` in
//   every worker thread; registering tsx a second time there deadlocked the AWS SDK's dynamic imports when
//   several workers started at once (billing, notifications and demand hung until their timeout under Node 22;
//   audit-append, without the SDK, did not). Node 20 does not give workers the parent's loader, nor does a
//   parent without it (vitest): register it only when tsx is not resolving yet. The probe is extensionless
//   because Node 22's own type stripping loads `.ts` files but, unlike tsx, never resolves a specifier without
//   its extension.
import { createRequire } from 'node:module';
import { workerData } from 'node:worker_threads';
import { serve } from './worker-loop.mjs';

const { bundle, handlerPath } = workerData;
if (bundle) {
  const exportName = handlerPath.slice(handlerPath.lastIndexOf('.') + 1);
  const handler = createRequire(import.meta.url)(bundle)[exportName];
  if (typeof handler !== 'function') {
    throw new Error(`${bundle} does not export a function named "${exportName}" (handler ${handlerPath})`);
  }
  serve(handler);
} else {
  const { register } = await import('tsx/esm/api');
  try {
    await import('./tsx-probe');
  } catch (error) {
    if (error?.code !== 'ERR_MODULE_NOT_FOUND' && error?.code !== 'ERR_UNSUPPORTED_DIR_IMPORT') throw error;
    register();
  }
  const { sourceHandler } = await import('./function-worker.ts');
  serve(await sourceHandler(workerData));
}
