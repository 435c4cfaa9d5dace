import { LambdaClient } from '@aws-sdk/client-lambda';
import type { MSKEvent } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import type { EsmDefinition } from '../../local/esm/config';
import { EsmEmulator } from '../../local/esm/emulator';
import { type LambdaApiServer, startLambdaApi } from '../../local/lambda-api/server';
import { formatReplay, registerReadModelRebuilder, replay } from '../../ops/replay';
import { testDefinition } from '../support/esm-definition';
import { createTopic, kafkaBrokers, produce, uniqueName } from '../support/kafka';
import { waitFor } from '../support/wait';

let emulator: EsmEmulator | undefined;
let api: LambdaApiServer | undefined;
afterEach(async () => {
  await api?.close();
  await emulator?.stop();
});

/** `model` is a read model: how often each value was applied. */
async function startEmulator(
  topic: string,
  seen: string[],
  model = new Map<string, number>(),
  overrides: Partial<EsmDefinition> = {},
) {
  const definition = testDefinition(topic, {
    maximumBatchingWindowMs: 0,
    functionName: `fn-${topic}`,
    ...overrides,
  });
  emulator = new EsmEmulator({
    definitions: [definition],
    brokers: kafkaBrokers(),
    handlers: {
      [definition.uuid]: async (event: MSKEvent) => {
        for (const records of Object.values(event.records)) {
          for (const r of records) {
            const value = Buffer.from(r.value, 'base64').toString();
            seen.push(value);
            model.set(value, (model.get(value) ?? 0) + 1);
          }
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
      brokers: kafkaBrokers(),
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
      brokers: kafkaBrokers(),
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
      brokers: kafkaBrokers(),
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

  it('replays from explicit offsets: only the named partitions move', async () => {
    const topic = uniqueName('e2e-replay-offsets');
    await createTopic(topic, 2);
    await produce(
      topic,
      Array.from({ length: 6 }, (_, i) => ({ partition: i % 2, value: `r${i}` })),
    );
    const seen: string[] = [];
    const { definition, lambda } = await startEmulator(topic, seen);
    await waitFor('first pass', () => seen.length === 6);
    const [plan] = await replay({
      lambda,
      brokers: kafkaBrokers(),
      functionName: definition.functionName,
      from: { kind: 'offsets', offsets: new Map([[0, 1n]]) },
      log: () => undefined,
    });
    expect(plan?.partitions).toEqual([
      { partition: 0, oldOffset: 3n, newOffset: 1n, recordsToReprocess: 2n },
    ]);
    await waitFor('the replayed records', () => seen.length === 8);
    // Partition 0 from offset 1 (r2, r4); partition 1 untouched.
    expect(seen.slice(6).sort()).toEqual(['r2', 'r4']);
  });

  it('--rebuild clears the read model once the ESM has left its group, then rebuilds it to the same content', async () => {
    const topic = uniqueName('e2e-replay-rebuild');
    await createTopic(topic, 2);
    await produce(
      topic,
      Array.from({ length: 6 }, (_, i) => ({ partition: i % 2, value: `r${i}` })),
    );
    const seen: string[] = [];
    const model = new Map<string, number>();
    const { definition, lambda } = await startEmulator(topic, seen, model);
    await waitFor('first pass', () => seen.length === 6);
    const firstPass = [...model.entries()].sort();
    const statesAtClear: string[] = [];
    registerReadModelRebuilder({
      functionKey: definition.functionName,
      describe: 'clear the test model',
      clear: async () => {
        statesAtClear.push(`${emulator?.find(definition.uuid)?.state} after ${seen.length} records`);
        model.clear();
      },
    });
    const options = {
      lambda,
      brokers: kafkaBrokers(),
      functionName: definition.functionName,
      from: { kind: 'earliest' } as const,
      rebuild: true,
      log: () => undefined,
    };

    // A dry run only plans: nothing cleared.
    await replay({ ...options, dryRun: true });
    expect(statesAtClear).toEqual([]);

    await replay(options);
    // Cleared once the ESM had left the group (its in-flight invocations done), before any record replayed.
    expect(statesAtClear).toHaveLength(1);
    expect(statesAtClear[0]).toMatch(/^(Disabling|Disabled) after 6 records$/);
    await waitFor('the rebuild', () => seen.length === 12);
    // Every value applied exactly once more after the clear: the model is what the first pass built.
    expect([...model.entries()].sort()).toEqual(firstPass);
  });

  it("refuses a --rebuild that reaches past the ESM's MaximumRecordAgeInSeconds, and notes it in a plan", async () => {
    const topic = uniqueName('e2e-replay-age');
    await createTopic(topic, 1);
    await produce(topic, [
      { partition: 0, value: 'two hours old', timestamp: BigInt(Date.now() - 7_200_000) },
      { partition: 0, value: 'new' },
    ]);
    const seen: string[] = [];
    const { definition, lambda } = await startEmulator(topic, seen, new Map(), {
      maximumRecordAgeInSeconds: 3600,
    });
    await waitFor('first pass', () => seen.length === 1);
    // The old record never reached the function (no destination here: discarded, as Lambda does).
    expect(seen).toEqual(['new']);
    let cleared = 0;
    registerReadModelRebuilder({
      functionKey: definition.functionName,
      describe: 'clear the test model',
      clear: async () => {
        cleared++;
      },
    });
    const options = {
      lambda,
      brokers: kafkaBrokers(),
      functionName: definition.functionName,
      from: { kind: 'earliest' } as const,
      log: () => undefined,
    };
    await expect(replay({ ...options, rebuild: true })).rejects.toThrow(
      `--rebuild: ESM ${definition.uuid} (${topic}) would send records older than its MaximumRecordAgeInSeconds (3600 s)`,
    );
    expect(cleared).toBe(0);
    expect(emulator?.find(definition.uuid)?.state).toBe('Enabled');
    const plan = await replay({ ...options, dryRun: true });
    expect(plan[0]?.ageLimitSeconds).toBe(3600);
    expect(formatReplay(plan, true)).toContain(
      "note: records older than 3600 s (the ESM's MaximumRecordAgeInSeconds) go to the on-failure destination",
    );
    // From a time within the limit nothing is cut.
    const recent = await replay({
      ...options,
      from: { kind: 'timestamp', at: new Date(Date.now() - 60_000) },
      dryRun: true,
    });
    expect(recent[0]?.ageLimitSeconds).toBeUndefined();
  });

  it('gives up with a clear message when another consumer keeps the group busy, resets nothing and re-enables the ESM', async () => {
    const topic = uniqueName('e2e-replay-busy');
    await createTopic(topic, 1);
    await produce(topic, [
      { partition: 0, value: 'r0' },
      { partition: 0, value: 'r1' },
    ]);
    const seen: string[] = [];
    const { definition, lambda } = await startEmulator(topic, seen);
    await waitFor('first pass', () => seen.length === 2);
    // A consumer outside the Lambda API in the same group (another deployment, a debugging session).
    const intruder = new EsmEmulator({
      definitions: [{ ...definition, uuid: '00000000-0000-4000-8000-000000000001' }],
      brokers: kafkaBrokers(),
      handlers: { '00000000-0000-4000-8000-000000000001': async () => undefined },
    });
    await intruder.start();
    try {
      await expect(
        replay({
          lambda,
          brokers: kafkaBrokers(),
          functionName: definition.functionName,
          from: { kind: 'earliest' },
          waitTimeoutMs: 2_000,
          log: () => undefined,
        }),
      ).rejects.toThrow(
        new RegExp(
          `^Consumer group ${definition.consumerGroupId} still has 1 member\\(s\\) after 2 s .*Nothing was reset; the ESM was enabled again`,
        ),
      );
      await waitFor('the ESM enabled again', () => emulator?.find(definition.uuid)?.state === 'Enabled');
      const [plan] = await replay({
        lambda,
        brokers: kafkaBrokers(),
        functionName: definition.functionName,
        from: { kind: 'earliest' },
        dryRun: true,
      });
      expect(plan?.partitions).toEqual([
        { partition: 0, oldOffset: 2n, newOffset: 0n, recordsToReprocess: 2n },
      ]);
    } finally {
      await intruder.stop();
    }
  });
});
