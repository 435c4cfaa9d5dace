// redrive against the real parts: the emulator's ESM sends a poison record to the failed-records bucket in
// s3rver, then `npm run redrive` (its run(), in-process) reads the bucket, invokes the function through the
// local Lambda API (the function's worker thread) or produces to the broker, and tags the objects in s3rver.
// The "fix" swaps the function's execution environments for ones with POISON_FIXED=true, as a deploy would.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GetObjectTaggingCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../../local/esm/destinations';
import { EsmEmulator } from '../../../local/esm/emulator';
import type { EsmHandler } from '../../../local/esm/invoker';
import { type WorkerHandler, workerHandler } from '../../../local/esm/worker-handler';
import { type LambdaApiServer, startLambdaApi } from '../../../local/lambda-api/server';
import { run } from '../../../ops/redrive/command';
import { stackVar } from '../../support/env';
import { testDefinition } from '../../support/esm-definition';
import { createTopic, kafkaBrokers, produce, uniqueName } from '../../support/kafka';
import { captureStdout } from '../../support/stdout';
import { waitFor } from '../../support/wait';

const topic = uniqueName('redrive');
const functionKey = uniqueName('redrive-fn');
const functionName = `mobility-events-local-${functionKey}`;
const recording = path.join(mkdtempSync(path.join(tmpdir(), 'redrive-')), 'records.txt');
const s3 = s3Client();
let bucket: string;
let broken: WorkerHandler;
let fixed: WorkerHandler;
let current: WorkerHandler;
let emulator: EsmEmulator;
let api: LambdaApiServer;

beforeAll(async () => {
  bucket = stackVar('FAILED_RECORDS_BUCKET');
  writeFileSync(recording, '');
  await createTopic(topic, 2);
  const env = { RECORDING_FILE: recording, RECORDING_DETAIL: 'true' };
  const handler = 'test/integration/fixtures/recording-function.handler';
  broken = workerHandler(handler, env, { instances: 1 });
  fixed = workerHandler(handler, { ...env, POISON_FIXED: 'true' }, { instances: 1 });
  current = broken;
  const definition = testDefinition(topic, {
    functionKey,
    functionName,
    batchSize: 10,
    maximumBatchingWindowMs: 200,
    maximumRetryAttempts: 0,
    bisectBatchOnFunctionError: true,
    reportBatchItemFailures: true,
    destination: { type: 's3', arn: `arn:aws:s3:::${bucket}`, bucket },
  });
  const delegate: EsmHandler = (event, context) => current.handler(event, context);
  emulator = new EsmEmulator({
    definitions: [definition],
    brokers: kafkaBrokers(),
    handlers: { [functionKey]: delegate },
    retryDelayMs: () => 10,
  });
  await emulator.start();
  api = await startLambdaApi(emulator);
});

afterAll(async () => {
  await api?.close();
  await emulator?.stop();
  await Promise.all([broken?.close(), fixed?.close()]);
  s3.destroy();
});

/** The CLI in-process: exit code (or thrown CliError's) and what it printed. */
async function redrive(...args: string[]): Promise<{ code: number; out: string }> {
  const { result: code, out } = await captureStdout(() =>
    run(['--function', functionKey, '--lambda-endpoint', api.url, '--bucket', bucket, ...args]),
  );
  return { code, out };
}

const recorded = () =>
  readFileSync(recording, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.split(' ')[0]);

async function objectKeys(): Promise<string[]> {
  const uuid = emulator.mappings[0]?.definition.uuid;
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `aws/lambda/${uuid}/` }));
  return (listed.Contents ?? []).map((o) => o.Key as string).sort();
}

const statusOf = async (key: string) =>
  (await s3.send(new GetObjectTaggingCommand({ Bucket: bucket, Key: key }))).TagSet?.find(
    (t) => t.Key === 'redrive-status',
  )?.Value;

describe('redrive against s3rver, the local Lambda API and the broker', () => {
  it('redrives a poison record by Invoke once its cause is fixed, exactly once, and skips it afterwards', async () => {
    await produce(topic, [
      { partition: 0, key: 'k1', value: 'ok-1' },
      { partition: 0, key: 'ka', value: 'poison-a', headers: { ce_id: 'a' } },
      { partition: 0, key: 'k2', value: 'ok-2' },
      { partition: 1, key: 'k3', value: 'ok-3' },
    ]);
    await waitFor('the poison record in the bucket and the rest processed', async () => {
      return (await objectKeys()).length === 1 && recorded().length === 3;
    });
    expect(recorded().sort()).toEqual(['ok-1', 'ok-2', 'ok-3']);
    const [key] = await objectKeys();

    const dry = await redrive('--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.out).toContain(`Dry run, nothing changed: 1 object(s) to redrive (invoke ${functionName})`);
    expect(dry.out).toContain(`${topic}-0@1  [not redriven]`);
    expect(await statusOf(key as string)).toBeUndefined();

    // Still broken: the record fails again, the object says so and stays pending.
    const again = await redrive();
    expect(again.code).toBe(1);
    expect(again.out).toContain(`failed again  ${key}: 1 of 1 record(s), 0 succeeded`);
    expect(again.out).toContain(`${topic}-0@1: reported as a batch item failure`);
    expect(await statusOf(key as string)).toBe('failed-again');

    current = fixed;
    const done = await redrive();
    expect(done.code).toBe(0);
    expect(done.out).toContain(`redriven      ${key}: 1 record(s)`);
    expect(await statusOf(key as string)).toBe('redriven');
    expect(recorded().filter((v) => v === 'poison-a')).toHaveLength(1);

    const second = await redrive();
    expect(second.code).toBe(0);
    expect(second.out).toContain('0 object(s) to redrive');
    expect(second.out).toContain('1 already redriven (skipped)');
    expect(recorded().filter((v) => v === 'poison-a')).toHaveLength(1);

    const listed = await redrive('--list');
    expect(listed.out).toMatch(new RegExp(`${topic}-0@1  \\[redriven \\d{4}-`));
  });

  it('redrives to the topic with the original key, headers and value, and skips the object afterwards', async () => {
    current = broken;
    const before = new Set(await objectKeys());
    await produce(topic, [{ partition: 1, key: 'kb', value: 'poison-b', headers: { ce_id: 'b' } }]);
    await waitFor(
      'the second poison record in the bucket',
      async () => (await objectKeys()).length > before.size,
    );
    const key = (await objectKeys()).find((k) => !before.has(k)) as string;

    current = fixed;
    const wrongTopic = await redrive('--to-topic', `${topic}-other`).catch(
      (error: Error & { exitCode: number }) => ({
        code: error.exitCode,
        out: error.message,
      }),
    );
    expect(wrongTopic).toEqual({
      code: 2,
      out: expect.stringContaining(`hold records of ${topic}: select one topic with --topic`),
    });

    const produced = await redrive('--to-topic', topic);
    expect(produced.code).toBe(0);
    expect(produced.out).toContain(
      `note: every consumer of ${topic} receives these records again: ${functionName}`,
    );
    expect(produced.out).toContain(`redriven      ${key}: 1 record(s)`);
    // The ESM consumes it again from the topic: same partition, key, headers and value.
    await waitFor('the produced record to reach the function', () => recorded().includes('poison-b'));
    expect(readFileSync(recording, 'utf8')).toContain('poison-b p1 key=kb ce_id=b\n');

    const second = await redrive('--to-topic', topic);
    expect(second.out).toContain('0 object(s) to redrive');
    expect(recorded().filter((v) => v === 'poison-b')).toHaveLength(1);
  });
});
