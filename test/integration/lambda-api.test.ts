// The local Lambda API over the real emulator, broker and worker threads: UpdateEventSourceMapping answers the
// transition it started and GetEventSourceMapping the settled state once the mapping has joined or left its
// group; Invoke runs the function's handler in its execution environments (worker threads), as a batch.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  GetEventSourceMappingCommand,
  InvokeCommand,
  LambdaClient,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import type { MSKEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EsmEmulator } from '../../local/esm/emulator';
import { type WorkerHandler, workerHandler } from '../../local/esm/worker-handler';
import { type LambdaApiServer, startLambdaApi } from '../../local/lambda-api/server';
import { testDefinition } from '../support/esm-definition';
import { createTopic, kafkaBrokers, uniqueName } from '../support/kafka';
import { waitFor } from '../support/wait';

const topic = uniqueName('lambda-api');
const definition = testDefinition(topic, { functionName: `fn-${topic}`, timeoutSeconds: 5 });
const recording = path.join(mkdtempSync(path.join(tmpdir(), 'lambda-api-')), 'records.txt');
let worker: WorkerHandler;
let emulator: EsmEmulator;
let api: LambdaApiServer;
let lambda: LambdaClient;

beforeAll(async () => {
  writeFileSync(recording, '');
  await createTopic(topic, 1);
  worker = workerHandler(
    'test/integration/fixtures/recording-function.handler',
    { RECORDING_FILE: recording },
    { instances: 1 },
  );
  emulator = new EsmEmulator({
    definitions: [definition],
    brokers: kafkaBrokers(),
    handlers: { e2e: worker.handler },
  });
  await emulator.start();
  api = await startLambdaApi(emulator);
  lambda = new LambdaClient({
    region: 'eu-west-1',
    endpoint: api.url,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
});

afterAll(async () => {
  await api?.close();
  await emulator?.stop();
  await worker?.close();
});

const state = async () =>
  (await lambda.send(new GetEventSourceMappingCommand({ UUID: definition.uuid }))).State;

const event = (values: string[]): MSKEvent => ({
  eventSource: 'aws:kafka',
  eventSourceArn: definition.eventSourceArn,
  bootstrapServers: kafkaBrokers().join(','),
  records: {
    [`${topic}-0`]: values.map((value, offset) => ({
      topic,
      partition: 0,
      offset,
      timestamp: 0,
      timestampType: 'CREATE_TIME',
      key: '',
      value: Buffer.from(value).toString('base64'),
      headers: [],
    })),
  },
});

describe('local Lambda API over the real emulator', () => {
  it('answers Disabling and Enabling to an update, then shows Disabled and Enabled', async () => {
    expect(await state()).toBe('Enabled');
    const disabling = await lambda.send(
      new UpdateEventSourceMappingCommand({ UUID: definition.uuid, Enabled: false }),
    );
    expect(disabling.State).toBe('Disabling');
    await waitFor('the mapping to be disabled', async () => (await state()) === 'Disabled');
    const enabling = await lambda.send(
      new UpdateEventSourceMappingCommand({ UUID: definition.uuid, Enabled: true }),
    );
    expect(enabling.State).toBe('Enabling');
    await waitFor('the mapping to be enabled', async () => (await state()) === 'Enabled');
  });

  it('invokes the function in its worker thread and returns its partial batch response', async () => {
    const answer = await lambda.send(
      new InvokeCommand({
        FunctionName: definition.functionName,
        Payload: JSON.stringify(event(['first', 'poison', 'after'])),
      }),
    );
    expect(answer.FunctionError).toBeUndefined();
    const response = JSON.parse(Buffer.from(answer.Payload ?? []).toString());
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: `${topic}-0`, offset: 1 } },
      { itemIdentifier: { partition: `${topic}-0`, offset: 2 } },
    ]);
    expect(response.threadId).toBeGreaterThan(0);
    expect(readFileSync(recording, 'utf8')).toBe('first\n');
  });

  it('answers a thrown error with FunctionError Unhandled', async () => {
    const answer = await lambda.send(
      new InvokeCommand({ FunctionName: definition.functionName, Payload: JSON.stringify(event(['throw'])) }),
    );
    expect(answer.FunctionError).toBe('Unhandled');
    expect(JSON.parse(Buffer.from(answer.Payload ?? []).toString())).toMatchObject({
      errorType: 'Error',
      errorMessage: `cannot handle ${topic}-0@0`,
    });
  });
});
