// globalSetup of the `integration` project (test/integration, test/e2e): brings the local stack up unless it
// already runs (warm path: pid checks, one metadata call, idempotent provisioning; well under a second),
// hands its endpoints to every test file, and at the end stops what test runs started, once no other test
// run (another terminal, same working tree) still holds a lease on it. A stack started with
// `npm run stack -- up` is never stopped here.
import type { TestProject } from 'vitest/node';
import { acquireLease, releaseLeaseAndStopIfUnused, up } from '../../local/stack/index';

const log = (line: string) => process.stderr.write(`[stack] ${line}\n`);

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const lease = acquireLease();
  let env: Record<string, string>;
  try {
    const state = await up({ owner: 'test', log });
    env = state.env;
    const started = state.services.filter((s) => s.action === 'started').map((s) => s.name);
    if (started.length > 0) log(`started ${started.join(', ')} for this test run`);
  } catch (error) {
    await releaseLeaseAndStopIfUnused(lease);
    throw error;
  }
  // Both ways on purpose: process.env for code that runs in this process, provide() for the workers
  // (test/support/env.ts copies it into process.env before any test file is imported).
  Object.assign(process.env, env);
  project.provide('stackEnv', env);
  return async () => {
    const stopped = await releaseLeaseAndStopIfUnused(lease);
    const names = stopped.filter((s) => s.result !== 'kept').map((s) => s.name);
    if (names.length > 0) log(`stopped ${names.join(', ')}`);
  };
}
