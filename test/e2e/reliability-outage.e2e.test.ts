// The audit store goes away under load: audit-append reaches PostgreSQL through a TCP proxy owned by this test,
// which is closed (open connections cut, new ones refused) for a few seconds while events keep arriving, then
// reopened. The shared PostgreSQL server is never touched. The batch engine retries the outage inside the
// invocation (and the ESM's 10 retries come after that): records are retried, none reaches the on-failure
// destination, processing resumes and every event is stored exactly once.
import { afterAll, describe, expect, it } from 'vitest';
import { produceAll } from '../support/kafka';
import { waitFor } from '../support/wait';
import { buildEvent, newFlowIds } from './reliability/events';
import {
  auditChainBreaks,
  auditRows,
  CuttableProxy,
  failureObjects,
  freePort,
  prepareRun,
  type RunningEmulator,
  type RunSpec,
  removeRun,
  startEmulator,
  waitUntilDrained,
} from './reliability/harness';

const EVENTS = 3_000;
const OUTAGE_MS = 6_000;

let running: RunningEmulator | undefined;
/** The run to remove afterwards (its topics and tables). */
let prepared: RunSpec | undefined;
let proxy: CuttableProxy | undefined;
afterAll(async () => {
  await running?.stop();
  await proxy?.cut();
  if (prepared) await removeRun(prepared);
});

describe('reliability: audit store outage', () => {
  it('retries through an outage of the audit database, sends nothing to the destination and loses nothing', async () => {
    const databaseUrl = new URL(process.env.DATABASE_URL as string);
    proxy = new CuttableProxy(await freePort(), {
      host: databaseUrl.hostname,
      port: Number(databaseUrl.port || 5432),
    });
    await proxy.open();
    const viaProxy = new URL(databaseUrl);
    viaProxy.hostname = '127.0.0.1';
    viaProxy.port = String(proxy.port);

    const spec = await prepareRun({
      functions: ['audit-append'],
      topics: ['payment.succeeded', 'genai.request'],
      partitions: 3,
      envOverrides: {
        'audit-append': { DATABASE_URL: viaProxy.toString(), DATABASE_CONNECT_TIMEOUT_MS: '1000' },
      },
    });
    prepared = spec;
    const events = Array.from({ length: EVENTS }, (_, n) => {
      const type = n % 2 === 0 ? 'payment.succeeded' : 'genai.request';
      return buildEvent(type, n, newFlowIds(), spec.topics[type] as string);
    });

    running = await startEmulator(spec);
    const chunks = 15;
    const size = Math.ceil(EVENTS / chunks);
    const producing = (async () => {
      for (let i = 0; i < chunks; i++) {
        await produceAll(events.slice(i * size, (i + 1) * size).map((e) => e.message));
        await new Promise((r) => setTimeout(r, 400));
      }
    })();

    // Cut once the store has taken part of the stream, so batches are in flight when it goes.
    await waitFor(
      'a first share of the events to be stored',
      async () => (await auditRows(spec)).length >= EVENTS / 5,
      60_000,
      200,
    );
    await proxy.cut();
    // Counted a second in, so a commit that was on the wire at the cut is included.
    await new Promise((r) => setTimeout(r, 1_000));
    const storedAtCut = (await auditRows(spec)).length;
    await new Promise((r) => setTimeout(r, OUTAGE_MS - 1_000));
    const storedDuringOutage = (await auditRows(spec)).length;
    const connectionsBefore = proxy.connections;
    await proxy.open();
    await producing;

    await waitUntilDrained(spec, 'audit-append to commit every partition to its end', 120_000, 500);

    // The outage was real: nothing was stored while it lasted, and the function failed batches meanwhile.
    expect(storedAtCut).toBeLessThan(EVENTS);
    expect(storedDuringOutage).toBe(storedAtCut);
    const logs = running.logs.join('');
    expect(logs).toMatch(/refused by the database|ECONNREFUSED|Connection terminated/);
    // Processing resumed through new connections, and every event is stored exactly once.
    expect(proxy.connections).toBeGreaterThan(connectionsBefore);
    const rows = await auditRows(spec);
    expect(rows.length).toBe(EVENTS);
    expect(rows.map((r) => r.ceId).sort()).toEqual(events.map((e) => e.id).sort());
    expect(await auditChainBreaks(spec)).toEqual([]);
    // Retried, not given up on: the on-failure destination holds nothing of the run.
    expect(await failureObjects(spec)).toEqual([]);
    const failed = logs.split('\n').filter((l) => l.includes('invocation failed'));
    const failedInvocations = failed.length;
    // Why invocations failed (an outage that outlasted an invocation's retries, a timeout...): for the record.
    const failureReasons = [
      ...new Set(failed.map((l) => l.replace(/^.*invocation failed: /, '').slice(0, 160))),
    ];
    console.log(
      `outage: ${EVENTS} events, ${storedAtCut} stored at the cut, ${OUTAGE_MS} ms outage, ${failedInvocations} failed invocations retried (${failureReasons.join(' | ')}), ${proxy.connections} connections through the proxy`,
    );
  }, 240_000);
});
