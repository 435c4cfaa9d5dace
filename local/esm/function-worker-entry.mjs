// Worker entry point. Node 22+ runs the parent's `--import tsx` in every worker thread; registering tsx a second
// time there deadlocked the AWS SDK's dynamic imports when several workers started at once (billing,
// notifications and demand hung until their timeout under Node 22; audit-append, without the SDK, did not).
// Node 20 does not give workers the parent's loader, nor does a parent without it (vitest): register it only when
// tsx is not resolving yet. The probe is extensionless because Node 22's own type stripping loads `.ts` files
// but, unlike tsx, never resolves a specifier without its extension.
import { register } from 'tsx/esm/api';

try {
  await import('./tsx-probe');
} catch (error) {
  if (error?.code !== 'ERR_MODULE_NOT_FOUND' && error?.code !== 'ERR_UNSUPPORTED_DIR_IMPORT') throw error;
  register();
}
await import('./function-worker.ts');
