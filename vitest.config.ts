import { defineConfig } from 'vitest/config';

// Three projects so `npx vitest run test/unit/...` never waits for services: globalSetup only runs for a
// project that has test files queued, and only `integration` has one (it starts the local stack).
export default defineConfig({
  test: {
    // JSON next to the console output: .ci/run counts skipped/todo tests from it.
    reporters: ['default', ['json', { outputFile: '.local/test-report.json' }]],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts', 'test/e2e/**/*.test.ts'],
          globalSetup: ['test/support/global-setup.ts'],
          setupFiles: ['test/support/env.ts'],
          // A cold stack (broker format + start, first consumer-group joins) takes tens of seconds on 2 cores.
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'deploy',
          include: ['test/deploy/**/*.test.ts'],
          // `serverless package` bundles the functions with esbuild: tens of seconds under load.
          testTimeout: 300_000,
          hookTimeout: 300_000,
        },
      },
    ],
  },
});
