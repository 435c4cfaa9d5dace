// DynamoDB goes away under load: the functions reach dynalite through a TCP proxy owned by this test, which is
// cut (open connections reset, new ones refused) for OUTAGE_S seconds while events keep arriving, then
// restored. dynalite itself is never touched. With the serverless.yml settings an outage is retried inside
// each invocation until 10 s before the function timeout and then fails the invocation as a whole, so no
// valid record reaches the on-failure destination and every effect is applied exactly once.
//
// Before the batch engine retried outages (store errors were record failures: bisect to single records, 3
// retries with sub-second backoff), anything over ~9 s sent valid records to the bucket. OUTAGE_S defaults to
// 45 s (CI); RELIABILITY_DYNAMODB_OUTAGE_S=300 runs the 5 minutes the README promises.
//
// Functions: those on the batch engine that write DynamoDB (demand-prediction-update, incident-explanation,
// notifications and oncall-paging, whose log and local outbox are both DynamoDB, billing): all five.
import { afterAll, describe, expect, it } from 'vitest';
import { invoiceViewsOf } from '../../functions/billing/dynamodb-billing-store';
import { hourBucket } from '../../functions/demand-prediction-update/demand-model';
import { notificationLogKey } from '../../functions/notifications/dynamodb-notification-log';
import { decideNotifications } from '../../functions/notifications/rules';
import { eventTimeField } from '../../schemas/samples';
import { readHeaders } from '../../shared/msk/headers';
import { produceAll } from '../support/kafka';
import { waitFor } from '../support/wait';
import { type BuiltEvent, MIXED_EVENT_TOPICS, mixedEvents } from './reliability/events';
import {
  CuttableProxy,
  failureObjects,
  freePort,
  prepareRun,
  type RunningEmulator,
  type RunSpec,
  removeRun,
  scanAll,
  startEmulator,
  waitUntilDrained,
} from './reliability/harness';

const OUTAGE_S = Number(process.env.RELIABILITY_DYNAMODB_OUTAGE_S ?? 45);
const EVENTS = 2_400;
const FUNCTIONS = [
  'demand-prediction-update',
  'incident-explanation',
  'notifications',
  'oncall-paging',
  'billing',
];
const TOPICS = [
  'booking.created',
  'booking.completed',
  'booking.cancelled',
  'incident.detected',
  'payment.succeeded',
  'payment.failed',
];

let running: RunningEmulator | undefined;
let prepared: RunSpec | undefined;
let proxy: CuttableProxy | undefined;
afterAll(async () => {
  await running?.stop();
  await proxy?.cut();
  if (prepared) await removeRun(prepared);
});

describe('reliability: DynamoDB outage', () => {
  it(
    `rides out ${OUTAGE_S} s without DynamoDB under load: nothing valid in the bucket, every effect once`,
    async () => {
      const dynamodb = new URL(process.env.AWS_ENDPOINT_URL_DYNAMODB as string);
      proxy = new CuttableProxy(await freePort(), {
        host: dynamodb.hostname,
        port: Number(dynamodb.port),
      });
      await proxy.open();
      const viaProxy = `http://127.0.0.1:${proxy.port}`;
      const spec = await prepareRun({
        functions: FUNCTIONS,
        topics: TOPICS,
        partitions: 3,
        envOverrides: Object.fromEntries(FUNCTIONS.map((f) => [f, { AWS_ENDPOINT_URL_DYNAMODB: viaProxy }])),
      });
      prepared = spec;
      // The mixed flows, only the events of the run's topics (the others would have no topic to go to).
      const allTopics = Object.fromEntries(MIXED_EVENT_TOPICS.map((t) => [t, spec.topics[t] ?? '']));
      const events = mixedEvents(allTopics, Math.ceil(EVENTS * 2.2)).filter((e) => TOPICS.includes(e.type));

      running = await startEmulator(spec);
      // Produced over the whole outage and beyond: 30 chunks, paced so load arrives before, during and after.
      const chunks = 30;
      const size = Math.ceil(events.length / chunks);
      const pace = Math.max(1_000, Math.round(((OUTAGE_S + 20) * 1_000) / chunks));
      const producing = (async () => {
        for (let i = 0; i < chunks; i++) {
          await produceAll(events.slice(i * size, (i + 1) * size).map((e) => e.message));
          await new Promise((r) => setTimeout(r, pace));
        }
      })();

      // Cut once the functions have written part of the stream, so batches are in flight when it goes.
      await waitFor(
        'a first share of the incidents to be explained',
        async () => (await views(spec)).size >= 20,
        120_000,
        500,
      ).catch((error: Error) => {
        throw new Error(`${error.message}; last output:\n${running?.logs.join('').slice(-3_000)}`);
      });
      await proxy.cut();
      const cutAt = Date.now();
      await new Promise((r) => setTimeout(r, 2_000));
      const viewsAtCut = (await views(spec)).size;
      await new Promise((r) => setTimeout(r, OUTAGE_S * 1_000 - 2_000));
      const viewsDuringOutage = (await views(spec)).size;
      const connectionsBefore = proxy.connections;
      await proxy.open();
      const outageMs = Date.now() - cutAt;
      await producing;

      await waitUntilDrained(spec, 'every ESM to commit every partition to its end', 240_000, 1_000);

      // Every record is valid: the on-failure destination holds nothing of the run.
      const stranded: string[] = [];
      for (const object of await failureObjects(spec)) {
        for (const record of Object.values(object.event.records).flat()) {
          const headers = readHeaders(record.headers as never);
          stranded.push(
            `${record.topic}-${record.partition}@${record.offset} ${typeof headers === 'string' ? '' : headers.ce_id} (${object.record.requestContext.condition})`,
          );
        }
      }
      expect(stranded).toEqual([]);

      // The outage was real: nothing was written while it lasted, and the functions saw it.
      expect(viewsDuringOutage).toBe(viewsAtCut);
      const logs = running.logs.join('');
      expect(logs).toMatch(/retrying inside the invocation/);
      expect(proxy.connections).toBeGreaterThan(connectionsBefore);

      // incident-explanation: one explained view per incident.
      const incidents = events.filter((e) => e.type === 'incident.detected');
      const explained = await views(spec);
      expect([...explained].sort()).toEqual(incidents.map((e) => String(e.data.incidentId)).sort());

      // demand: counts per zone and hour equal the booking events of each kind (nothing lost or doubled).
      expect(await demandCounts(spec)).toEqual(expectedDemand(events));

      // notifications: one SENT log entry and one outbox message per notification the rules decide, no other.
      const notificationItems = await scanAll(spec.tables.NotificationsTable as string);
      const expectedKeys = events.flatMap((e) =>
        decideNotifications({ topic: e.type, source: e.source, id: e.id, time: '', data: e.data }).map(
          (intent) => notificationLogKey(e.source, e.id, intent.recipient.id),
        ),
      );
      const logged = notificationItems.filter((i) => String(i.sk).startsWith('RECIPIENT#'));
      expect(logged.map((i) => `${i.pk}|${i.sk}`).sort()).toEqual(
        expectedKeys.map((k) => `${k.pk}|${k.sk}`).sort(),
      );
      expect(new Set(logged.map((i) => i.status))).toEqual(new Set(['SENT']));
      expect(notificationItems.filter((i) => i.pk === 'OUTBOX')).toHaveLength(expectedKeys.length);

      // billing: one invoice per completed booking, paid by its payment (nothing lost or doubled).
      const invoices = invoiceViewsOf(await scanAll(spec.tables.BillingTable as string));
      const completed = events.filter((e) => e.type === 'booking.completed');
      expect([...invoices.keys()].sort()).toEqual(completed.map((e) => e.bookingId).sort());
      const paid = new Map(
        events
          .filter((e) => e.type === 'payment.succeeded')
          .map((e) => [e.bookingId, (e.data.amount as { amountMinor: number }).amountMinor]),
      );
      const billingWrong = [...invoices]
        .filter(([bookingId, invoice]) => invoice.paidMinor !== (paid.get(bookingId) ?? 0))
        .map(
          ([bookingId, invoice]) =>
            `${bookingId}: paid ${invoice.paidMinor}, expected ${paid.get(bookingId) ?? 0}`,
        );
      expect(billingWrong).toEqual([]);

      const failed = logs.split('\n').filter((l) => l.includes('invocation failed'));
      const failedInvocations = failed.length;
      // Why invocations failed (an outage that outlasted an invocation's retries, a timeout...): for the record.
      const failureReasons = [
        ...new Set(failed.map((l) => l.replace(/^.*invocation failed: /, '').slice(0, 160))),
      ];
      console.log(
        `dynamodb outage: ${events.length} events, ${outageMs} ms outage, ${viewsAtCut} incidents explained at the cut, ${failedInvocations} failed invocations retried (${failureReasons.join(' | ')}), ${proxy.connections} connections through the proxy`,
      );
    },
    (OUTAGE_S + 420) * 1_000,
  );
});

async function views(spec: RunSpec): Promise<Set<string>> {
  const items = await scanAll(spec.tables.IncidentsTable as string);
  return new Set(items.filter((i) => i.sk === 'VIEW').map((i) => String(i.pk).slice('INCIDENT#'.length)));
}

const KIND: Record<string, string> = {
  'booking.created': 'booked',
  'booking.completed': 'completed',
  'booking.cancelled': 'cancelled',
};

function expectedDemand(events: BuiltEvent[]): Record<string, Record<string, number>> {
  const expected: Record<string, Record<string, number>> = {};
  for (const e of events) {
    const kind = KIND[e.type];
    if (!kind) continue;
    const key = `ZONE#${e.data.zoneId}|HOUR#${hourBucket(Number(e.data[eventTimeField[e.type]]))}`;
    const counts = expected[key] ?? { booked: 0, completed: 0, cancelled: 0 };
    counts[kind] = (counts[kind] ?? 0) + 1;
    expected[key] = counts;
  }
  return expected;
}

async function demandCounts(spec: RunSpec): Promise<Record<string, Record<string, number>>> {
  return Object.fromEntries(
    (await scanAll(spec.tables.DemandTable as string)).map((i) => [
      `${i.pk}|${i.sk}`,
      {
        booked: Number(i.booked ?? 0),
        completed: Number(i.completed ?? 0),
        cancelled: Number(i.cancelled ?? 0),
      },
    ]),
  );
}
