// Redrive after a fix, through the real broker, the emulator, billing's real handler and ESM settings, s3rver and
// the local Lambda API. Billing is deployed with a wrong BILLING_TABLE (a configuration mistake: every record
// fails in the function), so its ESMs give up and write every batch to the failed-records bucket. The fix is a
// deploy with the right table (new execution environments). `npm run redrive` then invokes billing with the
// original records: every invoice and payment lands exactly once; a second redrive sends nothing; and one that
// sends everything again (tags lost) changes nothing.
import { PutObjectTaggingCommand } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it } from 'vitest';
import { s3Client } from '../../local/esm/destinations';
import { type LambdaApiServer, startLambdaApi } from '../../local/lambda-api/server';
import { run } from '../../ops/redrive/command';
import { produceAll } from '../support/kafka';
import { captureStdout } from '../support/stdout';
import { waitFor } from '../support/wait';
import { type BuiltEvent, buildEvent, newFlowIds } from './reliability/events';
import {
  committedOffsetsOf,
  failureObjects,
  prepareRun,
  type RunningEmulator,
  type RunSpec,
  removeRun,
  scanAll,
  startEmulator,
} from './reliability/harness';

let running: RunningEmulator | undefined;
let api: LambdaApiServer | undefined;
let prepared: RunSpec | undefined;
afterAll(async () => {
  await api?.close();
  await running?.stop();
  if (prepared) await removeRun(prepared);
});

const PARTITIONS = 2;
const FLOWS = 4;

async function redrive(spec: RunSpec, lambdaEndpoint: string, ...args: string[]) {
  const { result: code, out } = await captureStdout(() =>
    run([
      '--function',
      'billing',
      '--lambda-endpoint',
      lambdaEndpoint,
      '--bucket',
      spec.bucket,
      '--json',
      ...args,
    ]),
  );
  return { code, report: JSON.parse(out) };
}

describe('reliability: redrive', () => {
  it('redrives the batches a misconfigured function gave up on, after the fix, exactly once; a second redrive sends nothing, one that resends everything changes nothing', async () => {
    const spec = await prepareRun({
      functions: ['billing'],
      topics: ['booking.completed', 'payment.succeeded'],
      partitions: PARTITIONS,
      envOverrides: { billing: { BILLING_TABLE: 'mobility-events-local-billing-missing' } },
      // One attempt per batch: the bucket fills fast; bisect still splits down to single records.
      definitionOverrides: { maximumRetryAttempts: 0 },
    });
    // While broken, a short function timeout bounds each failing invocation, however long the function would
    // keep retrying a store error inside it; the fixed deploy keeps serverless.yml's timeout.
    const broken: RunSpec = {
      ...spec,
      definitions: spec.definitions.map((d) => ({ ...d, timeoutSeconds: 10 })),
    };
    prepared = spec;
    const topic = (canonical: string) => spec.topics[canonical] as string;
    const events: BuiltEvent[] = [];
    for (let n = 0; n < FLOWS; n++) {
      const ids = newFlowIds();
      events.push(buildEvent('booking.completed', n, ids, topic('booking.completed'), n % PARTITIONS));
      events.push(buildEvent('payment.succeeded', n, ids, topic('payment.succeeded'), n % PARTITIONS));
    }

    running = await startEmulator(broken, { retryDelayMs: () => 20 });
    await produceAll(events.map((e) => e.message));
    await waitFor(
      'every ESM to commit every partition (each batch in the bucket)',
      async () => {
        const committed = await committedOffsetsOf(spec);
        return [...committed.values()].reduce((sum, offset) => sum + offset, 0n) === BigInt(events.length);
      },
      180_000,
      500,
    );
    const failed = await failureObjects(spec);
    const inBucket = failed.flatMap((o) => Object.values(o.event.records).flat());
    expect(inBucket).toHaveLength(events.length);
    expect(await scanAll(spec.tables.BillingTable as string)).toEqual([]);
    await running.stop();

    // The fix: billing deployed again with its table. Its ESMs have committed everything: nothing comes back
    // by itself.
    const fixed: RunSpec = {
      ...spec,
      functions: {
        billing: {
          ...(spec.functions.billing as RunSpec['functions'][string]),
          env: {
            ...spec.functions.billing?.env,
            BILLING_TABLE: spec.tables.BillingTable as string,
          },
        },
      },
    };
    running = await startEmulator(fixed, { retryDelayMs: () => 20 });
    api = await startLambdaApi(running.emulator);

    const dry = await redrive(spec, api.url, '--dry-run');
    expect(dry.code).toBe(0);
    expect(dry.report.plan.pending).toHaveLength(failed.length);
    expect(await scanAll(spec.tables.BillingTable as string)).toEqual([]);

    const redriveStarted = Date.now();
    const first = await redrive(spec, api.url);
    const redriveMs = Date.now() - redriveStarted;
    expect(first.code).toBe(0);
    expect(first.report.outcomes).toHaveLength(failed.length);
    expect(
      first.report.outcomes.filter((o: { status: string }) => o.status !== 'redriven'),
      'objects that failed again',
    ).toEqual([]);

    const billing = await scanAll(spec.tables.BillingTable as string);
    const invoices = billing.filter((i) => i.sk === 'INVOICE');
    const completed = events.filter((e) => e.type === 'booking.completed');
    expect(invoices.map((i) => i.pk).sort()).toEqual(completed.map((e) => `INVOICE#${e.bookingId}`).sort());
    // One ledger item per payment (pk INVOICE#<booking>, sk PAYMENT#<paymentId>:<outcome>): each applied once.
    const payments = events.filter((e) => e.type === 'payment.succeeded');
    const ledger = billing.filter((i) => String(i.sk).startsWith('PAYMENT#'));
    expect(ledger.map((i) => i.pk).sort()).toEqual(payments.map((e) => `INVOICE#${e.bookingId}`).sort());
    for (const payment of payments) {
      expect(ledger.filter((i) => String(i.sk).startsWith(`PAYMENT#${payment.data.paymentId}`))).toHaveLength(
        1,
      );
    }

    // Every object is tagged redriven: a second redrive finds nothing to send and changes nothing.
    const second = await redrive(spec, api.url);
    expect(second.code).toBe(0);
    expect(second.report.plan.pending).toEqual([]);
    expect(second.report.plan.redriven).toHaveLength(failed.length);
    expect(second.report.outcomes).toBeUndefined();
    const sortKey = (i: Record<string, unknown>) => `${i.pk}/${i.sk}`;
    const sorted = (items: Record<string, unknown>[]) =>
      items.sort((a, b) => (sortKey(a) < sortKey(b) ? -1 : 1));
    expect(sorted(await scanAll(spec.tables.BillingTable as string))).toEqual(sorted(billing));

    // Had the tags been lost (a tag write refused after the records were sent), a redrive would send everything
    // again: billing's idempotency keeps the effects as they are.
    const s3 = s3Client();
    try {
      for (const object of failed)
        await s3.send(
          new PutObjectTaggingCommand({ Bucket: spec.bucket, Key: object.key, Tagging: { TagSet: [] } }),
        );
    } finally {
      s3.destroy();
    }
    const resent = await redrive(spec, api.url);
    expect(resent.code).toBe(0);
    expect(resent.report.outcomes).toHaveLength(failed.length);
    expect(sorted(await scanAll(spec.tables.BillingTable as string))).toEqual(sorted(billing));
    console.log(`redrive: ${failed.length} objects (${events.length} records) redriven in ${redriveMs} ms`);
  }, 300_000);
});
