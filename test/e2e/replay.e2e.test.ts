import { LambdaClient } from '@aws-sdk/client-lambda';
import type { MSKEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { EsmEmulator } from '../../local/esm/emulator';
import { type LambdaApiServer, startLambdaApi } from '../../local/lambda-api/server';
import { replay } from '../../local/replay';
import { brokers, createTopic, produce, testDefinition, uniqueName, waitFor } from './kafka-helpers';

let emulator: EsmEmulator | undefined;
let api: LambdaApiServer | undefined;
afterEach(async () => {
  await api?.close();
  await emulator?.stop();
});

async function startEmulator(topic: string, seen: string[]) {
  const definition = testDefinition(topic, { maximumBatchingWindowMs: 0, functionName: `fn-${topic}` });
  emulator = new EsmEmulator({
    definitions: [definition],
    brokers: brokers(),
    handlers: {
      [definition.uuid]: async (event: MSKEvent) => {
        for (const records of Object.values(event.records)) {
          for (const r of records) seen.push(Buffer.from(r.value, 'base64').toString());
        }
      },
    },
  });
  await emulator.start();
  api = await startLambdaApi(emulator);
  // The same client the command uses against AWS, pointed at the local endpoint.
  const lambda = new LambdaClient({
    region: 'eu-west-1',
    endpoint: api.url,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
  });
  return { definition, lambda };
}

describe('replay through the Lambda API (local endpoint)', () => {
  it('replays from earliest: every record once more', async () => {
    const topic = uniqueName('e2e-replay');
    await createTopic(topic, 2);
    await produce(
      topic,
      Array.from({ length: 8 }, (_, i) => ({ partition: i % 2, value: `r${i}` })),
    );
    const seen: string[] = [];
    const { definition, lambda } = await startEmulator(topic, seen);
    await waitFor('first pass', () => seen.length === 8);

    const dryRun = await replay({
      lambda,
      brokers: brokers(),
      functionName: definition.functionName,
      from: { kind: 'earliest' },
      dryRun: true,
    });
    expect(dryRun[0]?.partitions).toEqual([
      { partition: 0, oldOffset: 4n, newOffset: 0n, recordsToReprocess: 4n },
      { partition: 1, oldOffset: 4n, newOffset: 0n, recordsToReprocess: 4n },
    ]);
    expect(seen).toHaveLength(8);

    const plans = await replay({
      lambda,
      brokers: brokers(),
      functionName: definition.functionName,
      from: { kind: 'earliest' },
      log: () => undefined,
    });
    expect(plans[0]).toMatchObject({ uuid: definition.uuid, consumerGroupId: definition.consumerGroupId });
    await waitFor('second pass', () => seen.length === 16);
    expect(seen.slice(8).sort()).toEqual(seen.slice(0, 8).sort());
    await waitFor('commits after the replay', async () => {
      const mapping = emulator?.find(definition.uuid);
      return mapping?.state === 'Enabled' && mapping.stats.committed.get(`${topic}-0`) === 4n;
    });
  });

  it('replays from a timestamp: exactly the records at or after it', async () => {
    const topic = uniqueName('e2e-replay-ts');
    await createTopic(topic, 1);
    const cut = BigInt(Date.now());
    await produce(topic, [
      { partition: 0, value: 'old-1', timestamp: cut - 60_000n },
      { partition: 0, value: 'old-2', timestamp: cut - 30_000n },
      { partition: 0, value: 'new-1', timestamp: cut },
      { partition: 0, value: 'new-2', timestamp: cut + 1n },
    ]);
    const seen: string[] = [];
    const { definition, lambda } = await startEmulator(topic, seen);
    await waitFor('first pass', () => seen.length === 4);
    const [plan] = await replay({
      lambda,
      brokers: brokers(),
      functionName: definition.functionName,
      from: { kind: 'timestamp', at: new Date(Number(cut)) },
      log: () => undefined,
    });
    expect(plan?.partitions).toEqual([
      { partition: 0, oldOffset: 4n, newOffset: 2n, recordsToReprocess: 2n },
    ]);
    await waitFor('the replayed records', () => seen.length === 6);
    expect(seen.slice(4)).toEqual(['new-1', 'new-2']);
  });
});
