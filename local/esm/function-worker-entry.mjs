// Worker entry point: worker threads on Node 20 do not inherit the tsx loader, so register it here, then
// load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./function-worker.ts');
