// setupFiles entry of the `integration` project: puts the stack's endpoints (provided by global-setup.ts)
// into process.env before a test file is imported, so module-scope clients (shared/aws-clients.ts) and
// `requireEnv` see KAFKA_BROKERS, DATABASE_URL, AWS_ENDPOINT_URL_*, AWS_REGION, credentials, table names.
import { inject } from 'vitest';

declare module 'vitest' {
  export interface ProvidedContext {
    stackEnv: Record<string, string>;
  }
}

/** The endpoints and resource names of the running local stack. */
export function stackEnv(): Record<string, string> {
  return inject('stackEnv');
}

/** One variable of the stack env; fails with a clear message when the test runs outside the integration project. */
export function stackVar(name: string): string {
  const value = stackEnv()?.[name] ?? process.env[name];
  if (!value)
    throw new Error(`${name} is not set: run this test in the integration project (vitest.config.ts)`);
  return value;
}

for (const [name, value] of Object.entries(stackEnv() ?? {})) {
  // An explicit value from the shell wins (e.g. KAFKA_BROKERS pointing at another cluster).
  process.env[name] ??= value;
}
