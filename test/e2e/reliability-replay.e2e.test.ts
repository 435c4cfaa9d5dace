// A full replay (`replay --from-earliest --rebuild`, through the Lambda API as against AWS) of billing,
// demand-prediction-update and audit-append after a run of mixed booking and payment events: the rebuilt read
// models equal the ones built the first time, item for item, and the audit log gains no row.

import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, describe, expect, it } from 'vitest';
import { billingReadModelRebuilder } from '../../functions/billing/rebuild';
import { demandReadModelRebuilder } from '../../functions/demand-prediction-update/rebuild';
import { type LambdaApiServer, startLambdaApi } from '../../local/lambda-api/server';
import { registerReadModelRebuilder, replay } from '../../ops/replay';
import { kafkaBrokers, produceAll } from '../support/kafka';
import { type BuiltEvent, buildEvent, newFlowIds } from './reliability/events';
import {
  auditChainBreaks,
  auditRows,
  prepareRun,
  type RunningEmulator,
  type RunSpec,
  removeRun,
  scanAll,
  startEmulator,
  waitUntilDrained,
} from './reliability/harness';

const FLOWS = 200;

let running: RunningEmulator | undefined;
/** The run to remove afterwards (its topics and tables). */
let prepared: RunSpec | undefined;
let api: LambdaApiServer | undefined;
afterAll(async () => {
  await api?.close();
  await running?.stop();
  if (prepared) await removeRun(prepared);
});

/** Every item of a table, in key order, so two scans compare item for item. */
async function snapshot(table: string): Promise<Record<string, unknown>[]> {
  const items = await scanAll(table);
  const key = (i: Record<string, unknown>) => `${i.pk}|${i.sk}`;
  return items.sort((a, b) => (key(a) < key(b) ? -1 : 1));
}

async function drained(spec: RunSpec, what: string): Promise<void> {
  await waitUntilDrained(spec, what, 180_000, 500);
}

describe('reliability: full replay with rebuild', () => {
  it('rebuilds identical billing and demand read models and adds no audit row', async () => {
    const spec = await prepareRun({
      functions: ['audit-append', 'billing', 'demand-prediction-update'],
      topics: [
        'booking.created',
        'booking.completed',
        'booking.cancelled',
        'payment.succeeded',
        'payment.failed',
      ],
      partitions: 3,
    });
    prepared = spec;
    const events: BuiltEvent[] = [];
    for (let n = 0; n < FLOWS; n++) {
      const ids = newFlowIds();
      const add = (type: Parameters<typeof buildEvent>[0]) =>
        events.push(buildEvent(type, n, ids, spec.topics[type] as string));
      add('booking.created');
      if (n % 3 === 0) {
        add('booking.completed');
        add('payment.succeeded');
      } else if (n % 3 === 1) add('booking.cancelled');
      else {
        add('booking.completed');
        add('payment.failed');
      }
    }
    running = await startEmulator(spec);
    api = await startLambdaApi(running.emulator);
    await produceAll(events.map((e) => e.message));
    await drained(spec, 'the first pass');

    const billingTable = spec.tables.BillingTable as string;
    const demandTable = spec.tables.DemandTable as string;
    const before = {
      billing: await snapshot(billingTable),
      demand: await snapshot(demandTable),
      audit: (await auditRows(spec)).map((r) => r.ceId).sort(),
    };
    // The first pass built something to compare: an invoice per completed booking, a demand count per booking.
    expect(before.billing.filter((i) => i.sk === 'INVOICE')).toHaveLength(
      events.filter((e) => e.type === 'booking.completed').length,
    );
    expect(before.demand.reduce((n, i) => n + Number(i.booked ?? 0), 0)).toBe(FLOWS);
    expect(before.audit).toHaveLength(events.filter((e) => e.type.startsWith('payment.')).length);

    const documents = DynamoDBDocumentClient.from(new DynamoDBClient({}));
    registerReadModelRebuilder(billingReadModelRebuilder(documents, billingTable));
    registerReadModelRebuilder(demandReadModelRebuilder(documents, demandTable));
    const lambda = new LambdaClient({
      region: process.env.AWS_REGION ?? 'eu-west-1',
      endpoint: api.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
    const functionName = (key: string) =>
      spec.definitions.find((d) => d.functionKey === key)?.functionName as string;
    try {
      for (const [key, rebuild] of [
        ['billing', true],
        ['demand-prediction-update', true],
        ['audit-append', false],
      ] as const) {
        const plans = await replay({
          lambda,
          brokers: kafkaBrokers(),
          functionName: functionName(key),
          functionKey: key,
          from: { kind: 'earliest' },
          rebuild,
          log: () => undefined,
        });
        // Every record of every mapping of the function is read again.
        const again = plans.flatMap((p) => p.partitions).reduce((n, p) => n + p.recordsToReprocess, 0n);
        const consumed = new Set(plans.map((p) => p.topic));
        expect(Number(again), key).toBe(events.filter((e) => consumed.has(e.message.topic)).length);
      }
    } finally {
      documents.destroy();
      lambda.destroy();
    }
    await drained(spec, 'the replay');

    expect(await snapshot(billingTable)).toEqual(before.billing);
    expect(await snapshot(demandTable)).toEqual(before.demand);
    expect((await auditRows(spec)).map((r) => r.ceId).sort()).toEqual(before.audit);
    expect(await auditChainBreaks(spec)).toEqual([]);
  }, 420_000);
});
