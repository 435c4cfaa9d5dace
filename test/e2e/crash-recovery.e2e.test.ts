import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Admin } from '@platformatic/kafka';
import { afterEach, describe, expect, it } from 'vitest';
import { committedOffsets } from '../../local/esm/starting-position';
import { testDefinition } from '../support/esm-definition';
import { createTopic, kafkaBrokers, produce, uniqueName } from '../support/kafka';
import { waitFor } from '../support/wait';

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});

function startEmulatorProcess(definitionsFile: string, recordingFile: string, run: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'local/esm/main.ts',
      '--definitions-file',
      definitionsFile,
      '--handler-module',
      'test/e2e/fixtures/recording-handler.ts',
    ],
    {
      env: { ...process.env, RECORDING_FILE: recordingFile, RECORDING_RUN: run, RECORDING_DELAY_MS: '150' },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  child.stderr?.on('data', () => undefined);
  children.push(child);
  return child;
}

/** The records a run's handler was given ("start") or finished ("done"), in log order. */
const deliveries = (file: string, run: string, phase: 'start' | 'done' = 'start') =>
  (existsSync(file) ? readFileSync(file, 'utf8') : '')
    .split('\n')
    .filter((line) => line.startsWith(`${run} `) && line.endsWith(` ${phase}`))
    .map((line) => {
      const [, partition, offset] = line.split(' ').map(Number);
      return { partition: partition as number, offset: offset as number };
    });

describe('crash recovery (emulator killed with SIGKILL mid-batch)', () => {
  it('loses nothing and redelivers exactly the uncommitted records', async () => {
    const topic = uniqueName('e2e-crash');
    await createTopic(topic, 2);
    const perPartition = 20;
    await produce(
      topic,
      Array.from({ length: perPartition * 2 }, (_, i) => ({ partition: i % 2, value: `v${i}` })),
    );
    const dir = tmpdir();
    const definitionsFile = path.join(dir, `${topic}-defs.json`);
    const recordingFile = path.join(dir, `${topic}-deliveries.log`);
    const definition = testDefinition(topic, { batchSize: 3, maximumBatchingWindowMs: 0 });
    writeFileSync(definitionsFile, JSON.stringify([definition]));

    const first = startEmulatorProcess(definitionsFile, recordingFile, 'run1');
    // Kill while batches are in flight: after a few invocations, well before the topic is drained.
    await waitFor('some deliveries', () => deliveries(recordingFile, 'run1').length >= 9, 30_000);
    first.kill('SIGKILL');
    await waitFor('the process to die', () => first.exitCode !== null || first.signalCode !== null);

    const admin = new Admin({ clientId: 'e2e-crash', bootstrapBrokers: kafkaBrokers() });
    const committed = await committedOffsets(admin, definition.consumerGroupId, topic, [0, 1]).finally(() =>
      admin.close(),
    );
    const run1 = deliveries(recordingFile, 'run1');
    expect(run1.length).toBeLessThan(perPartition * 2);

    startEmulatorProcess(definitionsFile, recordingFile, 'run2');
    const expectedRun2 = [0, 1].reduce((n, p) => n + perPartition - Number(committed.get(p) ?? 0n), 0);
    // The restarted member waits for the killed one's session to expire (10 s) before it gets partitions.
    await waitFor('the rest', () => deliveries(recordingFile, 'run2').length >= expectedRun2, 60_000);

    const run2 = deliveries(recordingFile, 'run2');
    const run1Done = deliveries(recordingFile, 'run1', 'done');
    let redeliveredInAll = 0;
    for (const partition of [0, 1]) {
      const from = Number(committed.get(partition) ?? 0n);
      const again = run2.filter((d) => d.partition === partition).map((d) => d.offset);
      // The second run starts exactly at the committed offset and reads everything after it, in order.
      expect(again).toEqual(Array.from({ length: perPartition - from }, (_, i) => from + i));
      // Only finished records were committed: every offset below the committed one was done before the kill.
      const done = new Set(run1Done.filter((d) => d.partition === partition).map((d) => d.offset));
      expect(Array.from({ length: from }, (_, i) => i).filter((offset) => !done.has(offset))).toEqual([]);
      // What was in flight at the kill (given, not done) lies at or past the committed offset: redelivered.
      const inFlight = run1
        .filter((d) => d.partition === partition && !done.has(d.offset))
        .map((d) => d.offset);
      expect(inFlight.filter((offset) => offset < from)).toEqual([]);
      const redelivered = run1
        .filter((d) => d.partition === partition && d.offset >= from)
        .map((d) => d.offset);
      expect(redelivered.filter((offset) => !again.includes(offset))).toEqual([]);
      redeliveredInAll += redelivered.length;
    }
    // Killed mid-batch: both partitions had a batch in the handler, so something is redelivered.
    expect(redeliveredInAll).toBeGreaterThan(0);
  }, 120_000);
});
