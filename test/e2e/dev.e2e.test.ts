import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LambdaClient, ListEventSourceMappingsCommand } from '@aws-sdk/client-lambda';
import { describe, expect, it } from 'vitest';
import { loadEsmDefinitions } from '../../local/esm/config';
import { waitFor } from '../support/wait';

describe('npm run dev', () => {
  it('starts every ESM of serverless.yml behind the local Lambda API, shows the ESMs and the outbox, and stops cleanly on SIGINT', async () => {
    const stateFile = path.join(tmpdir(), `esm-emulator-${process.pid}.json`);
    // The stack env of this test run is inherited, so `dev` uses these services and leaves them running.
    const dev = spawn(
      process.execPath,
      ['--import', 'tsx', 'local/cli.ts', 'dev', '--no-samples', '--keep-stack'],
      {
        env: { ...process.env, ESM_EMULATOR_STATE_FILE: stateFile },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let stdout = '';
    dev.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
    });
    let stderr = '';
    dev.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => dev.on('exit', (code) => resolve(code)));
    try {
      await waitFor('dev to start', () => existsSync(stateFile) || dev.exitCode !== null, 180_000);
      expect(dev.exitCode, stderr).toBeNull();
      const { lambdaEndpoint } = JSON.parse(readFileSync(stateFile, 'utf8')) as { lambdaEndpoint: string };
      const lambda = new LambdaClient({
        region: 'eu-west-1',
        endpoint: lambdaEndpoint,
        credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      });
      const listed = await lambda.send(new ListEventSourceMappingsCommand({}));
      const expected = await loadEsmDefinitions();
      expect(listed.EventSourceMappings?.map((m) => m.UUID).sort()).toEqual(
        expected.map((d) => d.uuid).sort(),
      );
      expect(new Set(listed.EventSourceMappings?.map((m) => m.State))).toEqual(new Set(['Enabled']));
    } finally {
      dev.kill('SIGINT');
    }
    expect(await exited, stderr).toBe(0);
    expect(existsSync(stateFile)).toBe(false);
    // The display printed on the way out: a row per ESM, then what the notifications function sent locally.
    const finalDisplay = stdout.slice(stdout.lastIndexOf('mobility-events dev'));
    expect(finalDisplay).toMatch(/^notifications\s+payment\.failed\s+/m);
    expect(finalDisplay).toMatch(/^outbox: \d+ messages?/m);
  }, 300_000);
});
