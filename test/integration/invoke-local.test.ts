// `serverless invoke local -f <fn> -p events/<fn>/<sample>.json`, as the README tells users to run it:
// the real CLI bundles the function (esbuild, .cjs output), gives it the local stage's environment and runs
// it against the local stack. Catches what unit tests cannot: a bundle Node refuses to load, an environment
// value only CloudFormation could resolve, a handle that keeps the process from exiting.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

interface Invocation {
  code: number | null;
  output: string;
  response: { batchItemFailures: { itemIdentifier: { partition: string; offset: number } }[] } | undefined;
}

function invokeLocal(fn: string, sample: string): Promise<Invocation> {
  return new Promise((resolve) => {
    execFile(
      path.join(ROOT, 'node_modules/.bin/serverless'),
      ['invoke', 'local', '-f', fn, '-p', `events/${fn}/${sample}`],
      // The CLI must exit by itself: a kept-open socket would hit this timeout instead.
      {
        cwd: ROOT,
        timeout: 180_000,
        maxBuffer: 16 * 1024 * 1024,
        env: { ...process.env, SLS_TELEMETRY_DISABLED: '1' },
      },
      (error, stdout, stderr) => {
        const output = `${stdout}\n${stderr}`;
        const json = /\{\s*"batchItemFailures":[\s\S]*?\n\}/.exec(stdout)?.[0];
        resolve({
          code: error ? (typeof error.code === 'number' ? error.code : null) : 0,
          output,
          response: json ? JSON.parse(json) : undefined,
        });
      },
    );
  });
}

// Sequential on purpose: every invocation bundles into the same .esbuild folder.
describe.sequential('serverless invoke local with the sample events', () => {
  it.each([
    ['audit-append', 'genai-request.json'],
    ['billing', 'booking-completed.json'],
    ['demand-prediction-update', 'booking-created.json'],
    ['incident-explanation', 'incident-detected.json'],
    ['notifications', 'booking-created.json'],
    ['oncall-paging', 'incident-detected.json'],
  ])(
    '%s processes its sample %s and exits',
    async (fn, sample) => {
      const result = await invokeLocal(fn, sample);
      expect(result.code, result.output).toBe(0);
      expect(result.response, result.output).toEqual({ batchItemFailures: [] });
    },
    240_000,
  );

  it('reports the poison record of a sample as a batch item failure, not a crash', async () => {
    const result = await invokeLocal('billing', 'poison.json');
    expect(result.code, result.output).toBe(0);
    expect(result.response?.batchItemFailures, result.output).toEqual([
      { itemIdentifier: { partition: 'booking.completed-2', offset: 901 } },
      { itemIdentifier: { partition: 'booking.completed-2', offset: 902 } },
    ]);
  }, 240_000);
});
