// `npm run dev -- --inspect`: a debugger attached to the dev process reaches every function, because each
// function's execution environments are worker threads of it and the inspector lists them as targets
// (NodeWorker); worker threads cannot open an inspector port of their own.
import inspector from 'node:inspector';
import type { EsmDefinition } from './config';

/** Lambda's longest timeout: a paused breakpoint must not time the invocation out and replace its worker. */
export const DEBUG_TIMEOUT_SECONDS = 900;

/** Opens this process's inspector on 127.0.0.1 (port 0: any free one) and returns its ws:// URL. */
export function openInspector(port: number): string {
  inspector.open(port, '127.0.0.1');
  const url = inspector.url();
  if (!url) throw new Error(`the inspector did not open on 127.0.0.1:${port}`);
  return url;
}

export function withDebugTimeouts(definitions: EsmDefinition[]): EsmDefinition[] {
  return definitions.map((definition) => ({ ...definition, timeoutSeconds: DEBUG_TIMEOUT_SECONDS }));
}
