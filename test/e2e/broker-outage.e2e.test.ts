// The broker goes away under load and comes back: every ESM rejoins by itself and resumes from its committed
// offsets, shows PROBLEM while it cannot reach the broker (dev table and Lambda API), and no record is lost or
// handled twice. A broker of its own (own ports and state dir): killing the stack's would break the other tests.
import '../../shared/kafka/node20-polyfills';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GetEventSourceMappingCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { Admin, Producer } from '@platformatic/kafka';
import type { MSKEvent } from 'aws-lambda';
import { afterAll, describe, expect, it } from 'vitest';
import { renderDashboard } from '../../local/esm/dashboard';
import { EsmEmulator } from '../../local/esm/emulator';
import { type LambdaApiServer, startLambdaApi } from '../../local/lambda-api/server';
import { isAlive } from '../../local/stack/processes';
import { testDefinition } from '../support/esm-definition';
import { uniqueName } from '../support/kafka';
import { waitFor } from '../support/wait';

const run = promisify(execFile);

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

/** Starts (or restarts, on the same data) a broker with the stack's own code, in a child with its own state dir. */
async function startBroker(stateDir: string, broker: number, controller: number): Promise<number> {
  const script = `
    const { ensureStateDirs } = await import('./local/stack/paths.ts');
    ensureStateDirs();
    const { startKafka } = await import('./local/stack/kafka.ts');
    console.log(await startKafka({ broker: ${broker}, controller: ${controller} }, 180000));`;
  const { stdout } = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, STACK_STATE_DIR: stateDir },
    timeout: 200_000,
  });
  return Number(stdout.trim().split('\n').at(-1));
}

const TOPICS = 2;
const PARTITIONS = 3;
const PER_PHASE = 1500;

describe('ESM emulator when the broker goes away', () => {
  let stateDir: string | undefined;
  let brokerPid: number | undefined;
  let emulator: EsmEmulator | undefined;
  let api: LambdaApiServer | undefined;
  afterAll(async () => {
    await emulator?.stop();
    await api?.close();
    if (brokerPid !== undefined && isAlive(brokerPid)) process.kill(brokerPid, 'SIGKILL');
    if (stateDir) await rm(stateDir, { recursive: true, force: true });
  });

  it('rejoins every ESM after a broker kill and restart: nothing lost, nothing handled twice', {
    timeout: 600_000,
  }, async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'esm-outage-'));
    const [port, controllerPort] = [await freePort(), await freePort()];
    const bootstrap = [`127.0.0.1:${port}`];
    brokerPid = await startBroker(stateDir, port, controllerPort);

    const topics = Array.from({ length: TOPICS }, () => uniqueName('e2e-outage'));
    const admin = new Admin({ clientId: 'e2e-outage-admin', bootstrapBrokers: bootstrap });
    await admin.createTopics({ topics, partitions: PARTITIONS, replicas: 1 });
    await waitFor('partition leaders', async () => {
      const metadata = await admin.metadata({ topics, forceUpdate: true });
      return topics.every((topic) => metadata.topics.get(topic)?.partitions.every((p) => p.leader >= 0));
    });
    await admin.close();

    const produce = async (phase: number) => {
      const producer = new Producer({
        clientId: 'e2e-outage',
        bootstrapBrokers: bootstrap,
        idempotent: true,
      });
      try {
        for (const topic of topics) {
          const messages = Array.from({ length: PER_PHASE }, (_, index) => ({
            topic,
            partition: index % PARTITIONS,
            key: Buffer.from(`k${index % 17}`),
            value: Buffer.from(`${phase}:${index}`),
          }));
          for (let at = 0; at < messages.length; at += 500) {
            await producer.send({ messages: messages.slice(at, at + 500) });
          }
        }
      } finally {
        await producer.close();
      }
    };

    // Handled values per topic, with how often: a value seen twice was delivered again after a commit was lost.
    const handled = new Map<string, Map<string, number>>(topics.map((topic) => [topic, new Map()]));
    const definitions = topics.map((topic) =>
      testDefinition(topic, { batchSize: 50, maximumBatchingWindowMs: 0, maximumConcurrency: PARTITIONS }),
    );
    const handler = async (event: MSKEvent) => {
      // Slow enough that batches are in flight and records queued when the broker dies.
      await new Promise((resolve) => setTimeout(resolve, 40));
      for (const records of Object.values(event.records)) {
        for (const record of records) {
          const seen = handled.get(record.topic) as Map<string, number>;
          const value = Buffer.from(record.value, 'base64').toString('utf8');
          seen.set(value, (seen.get(value) ?? 0) + 1);
        }
      }
    };
    emulator = new EsmEmulator({
      definitions,
      brokers: bootstrap,
      handlers: Object.fromEntries(definitions.map((d) => [d.uuid, handler])),
      log: () => {},
    });
    await emulator.start();
    api = await startLambdaApi(emulator);
    const lambda = new LambdaClient({
      region: 'eu-west-1',
      endpoint: api.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const { mappings } = emulator;
    const total = (topic: string) => handled.get(topic)?.size ?? 0;

    await produce(1);
    // Under load: every mapping has handled some of the first phase, not all of it.
    await waitFor('the first records handled', () => topics.every((topic) => total(topic) >= 100), 120_000);
    process.kill(brokerPid, 'SIGKILL');
    await waitFor('the broker gone', () => !isAlive(brokerPid as number));

    // Every mapping notices, stays Enabled, says PROBLEM and keeps trying (a failed rejoin at least).
    await waitFor(
      'every mapping to report the lost broker',
      () => mappings.every((m) => (m.problem?.attempts ?? 0) >= 2),
      60_000,
    );
    for (const mapping of mappings) {
      expect(mapping.state).toBe('Enabled');
      const described = await lambda.send(
        new GetEventSourceMappingCommand({ UUID: mapping.definition.uuid }),
      );
      expect(described.State).toBe('Enabled');
      expect(described.LastProcessingResult).toMatch(/^PROBLEM: Connection error\. /);
    }
    const table = renderDashboard(
      mappings.map((mapping) => ({ mapping, lags: undefined })),
      'dev',
    );
    expect(table).toContain('Enabled (PROBLEM)');
    expect(table).toMatch(/PROBLEM: Connection error\..*rejoin attempt \d+/);

    brokerPid = await startBroker(stateDir, port, controllerPort);
    await produce(2);
    await waitFor(
      'every record of both phases handled',
      () => topics.every((topic) => total(topic) === 2 * PER_PHASE),
      180_000,
    );
    for (const topic of topics) {
      const twice = [...(handled.get(topic) as Map<string, number>)].filter(([, count]) => count > 1);
      expect(twice, topic).toEqual([]);
    }
    // Resumed from, and moved, the committed offsets: every partition committed to its end.
    await waitFor(
      'every partition committed to its end',
      () =>
        mappings.every((m) =>
          Array.from({ length: PARTITIONS }, (_, p) =>
            m.stats.committed.get(`${m.definition.topic}-${p}`),
          ).every((offset) => offset === BigInt((2 * PER_PHASE) / PARTITIONS)),
        ),
      60_000,
    );
    for (const mapping of mappings) {
      expect(mapping.problem).toBeUndefined();
      const described = await lambda.send(
        new GetEventSourceMappingCommand({ UUID: mapping.definition.uuid }),
      );
      expect(described.LastProcessingResult).toBe('OK');
    }
  });
});
