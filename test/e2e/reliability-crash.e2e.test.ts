// Mixed events (bookings, payments, incidents, genai.*) through the real broker and the real handlers of all six
// functions (incident-explanation produces its genai.* events to the run's topics, where audit-append and
// notifications consume them with the rest), while the emulator (a child process) is SIGKILLed at seeded random
// points and restarted. Afterwards every store holds exactly the expected effects: no event lost, none doubled
// (one explanation and at most one review per incident; the genai.* events a redelivered incident re-produces are
// deduplicated downstream), and nothing in the on-failure destination (a record a killed invocation left "in
// progress" in Powertools idempotency is processed by its redelivery, not failed). RELIABILITY_SEED reproduces
// the kill points.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { invoiceViewsOf } from '../../functions/billing/dynamodb-billing-store';
import { hourBucket } from '../../functions/demand-prediction-update/demand-model';
import type { ReviewResolution, ReviewTask } from '../../functions/incident-explanation/ports';
import { reviewOf } from '../../functions/incident-explanation/resolve-review';
import { notificationLogKey } from '../../functions/notifications/dynamodb-notification-log';
import { decideNotifications } from '../../functions/notifications/rules';
import { eventTimeField } from '../../schemas/samples';
import { readHeaders } from '../../shared/msk/headers';
import { produceAll } from '../support/kafka';
import { type BuiltEvent, expectedExplanation, MIXED_EVENT_TOPICS, mixedEvents } from './reliability/events';
import {
  auditChainBreaks,
  auditRows,
  failureObjects,
  prepareRun,
  type RunSpec,
  removeRun,
  scanAll,
  waitUntilDrained,
} from './reliability/harness';

// 10,000 events as the issue asks: 113 s alone on the idle 2-core machine (2026-11-23); 484 s when six other
// test runs shared it, inside the 540 s limit below. RELIABILITY_EVENTS lowers it for a quick local run.
const EVENTS = Number(process.env.RELIABILITY_EVENTS ?? 10_000);
const SEED = Number(process.env.RELIABILITY_SEED ?? 20_261_123);
const KILLS = 3;
const DRAIN_MS = Number(process.env.RELIABILITY_DRAIN_S ?? 300) * 1000;
const PARTITIONS = 3;
const AUDITED = new Set([
  'payment.succeeded',
  'payment.failed',
  'genai.request',
  'genai.response',
  'genai.hitl.requested',
  'genai.hitl.resolved',
]);

/** mulberry32: a small seeded PRNG, so a failing run's kill points can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

interface Child {
  process: ChildProcess;
  started: Promise<void>;
  /** Where its output goes, for failure messages. */
  logFile: string;
}

const children: ChildProcess[] = [];
/** The run to remove afterwards (its topics and tables). */
let prepared: RunSpec | undefined;
afterAll(async () => {
  await Promise.all(
    children
      .filter((child) => child.exitCode === null && child.signalCode === null)
      .map((child) => {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
  );
  if (prepared) await removeRun(prepared);
});

function startChild(specFile: string): Child {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', 'test/e2e/reliability/emulator-child.ts', specFile],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  children.push(child);
  const logFile = `${specFile}.${children.length}.log`;
  const log = createWriteStream(logFile);
  child.stderr?.pipe(log);
  const started = new Promise<void>((resolve, reject) => {
    let head = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      log.write(chunk);
      if (head.length < 100_000) head += chunk.toString();
      if (head.includes('emulator started')) resolve();
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`emulator child exited (${code ?? signal}); output in ${logFile}`)),
    );
  });
  started.catch(() => undefined);
  return { process: child, started, logFile };
}

async function kill(child: Child): Promise<void> {
  const exited = new Promise((resolve) => child.process.once('exit', resolve));
  child.process.kill('SIGKILL');
  await exited;
}

describe('reliability: emulator crashes', () => {
  it(
    `processes ${EVENTS} mixed events exactly once in effect across ${KILLS} SIGKILLs of the emulator`,
    async () => {
      const random = prng(SEED);
      const spec = await prepareRun({
        functions: [
          'audit-append',
          'billing',
          'demand-prediction-update',
          'incident-explanation',
          'notifications',
          'oncall-paging',
        ],
        topics: MIXED_EVENT_TOPICS,
        partitions: PARTITIONS,
      });
      prepared = spec;
      const specFile = path.join(tmpdir(), `reliability-${spec.run}.json`);
      writeFileSync(specFile, JSON.stringify(spec));
      const events = mixedEvents(spec.topics, EVENTS);
      const started = Date.now();

      // Produce while the emulator runs and dies: 20 chunks, paced, so kills land mid-stream and mid-batch.
      const chunks = 20;
      const size = Math.ceil(events.length / chunks);
      const producing = (async () => {
        for (let i = 0; i < chunks; i++) {
          await produceAll(events.slice(i * size, (i + 1) * size).map((e) => e.message));
          await new Promise((r) => setTimeout(r, 500));
        }
      })();

      const killedAfterMs: number[] = [];
      for (let k = 0; k < KILLS; k++) {
        const child = startChild(specFile);
        await child.started;
        // A seeded point 2-8 s after the mappings started: batches of every ESM are in flight by then.
        const after = Math.round(2_000 + random() * 6_000);
        killedAfterMs.push(after);
        await new Promise((r) => setTimeout(r, after));
        await kill(child);
      }
      await producing;
      const last = startChild(specFile);
      await last.started;
      // Ends read anew each time: incident-explanation keeps producing genai.* events until it is done.
      await waitUntilDrained(spec, 'every ESM to commit every partition to its end', DRAIN_MS, 1_000, {
        movingEnds: true,
        context: () => `emulator output in ${last.logFile}`,
      });
      const drainedMs = Date.now() - started;

      // Every event is valid, so the on-failure destination stays empty: a record a killed invocation left
      // "in progress" (billing, notifications) is processed by its redelivery instead of exhausting the retries.
      const stranded: string[] = [];
      for (const object of await failureObjects(spec)) {
        const functionKey = spec.definitions.find((d) => d.uuid === object.esmUuid)?.functionKey;
        for (const record of Object.values(object.event.records).flat()) {
          const headers = readHeaders(record.headers as never);
          const id = typeof headers === 'string' ? undefined : headers.ce_id;
          stranded.push(
            `${functionKey} ${record.topic}-${record.partition}@${record.offset} ${id} (${object.record.requestContext.condition}, ${object.key})`,
          );
        }
      }
      expect(stranded, `records in the on-failure destination; emulator output in ${last.logFile}`).toEqual(
        [],
      );

      // incident-explanation: one explanation per incident; a review where its policy asks for one, resolved
      // where the mix resolves it (a resolution is kept even if it arrives first); its genai.* events.
      const incidents = events.filter((e) => e.type === 'incident.detected');
      const explanations = await Promise.all(incidents.map(expectedExplanation));
      const produced = explanations.flatMap((outcome) => outcome.events);
      const incidentItems = await scanAll(spec.tables.IncidentsTable as string);
      const views = incidentItems.filter((i) => i.sk === 'VIEW');
      expect(views.map((v) => v.incidentId).sort()).toEqual(explanations.map((o) => o.incidentId).sort());
      expect(new Set(views.map((v) => v.explainer))).toEqual(new Set(['RULES_FALLBACK']));
      const resolvedBy = new Map(
        events.filter((e) => e.type === 'genai.hitl.resolved').map((e) => [e.data.incidentId as string, e]),
      );
      const expectedReviews = new Map<string, string>();
      for (const outcome of explanations) {
        if (resolvedBy.has(outcome.incidentId)) expectedReviews.set(outcome.incidentId, 'RESOLVED');
        else if (outcome.review)
          expectedReviews.set(outcome.incidentId, `OPEN ${outcome.review.reasons.join(',')}`);
      }
      // Each review as the store tells it: its task with the decision kept apart on it (reviewOf).
      const decisions = new Map(
        incidentItems.filter((i) => i.sk === 'RESOLUTION').map((i) => [i.incidentId as string, i]),
      );
      const reviews = new Map(
        incidentItems
          .filter((i) => i.sk === 'REVIEW')
          .map((i) =>
            reviewOf({
              task: i as unknown as ReviewTask,
              kept: decisions.get(i.incidentId as string) as ReviewResolution | undefined,
            }),
          )
          .map((review) => [
            review?.incidentId as string,
            review?.status === 'RESOLVED' ? 'RESOLVED' : `${review?.status} ${review?.reasons.join(',')}`,
          ]),
      );
      expect(Object.fromEntries(reviews)).toEqual(Object.fromEntries(expectedReviews));
      /** Tasks a batch wrote OPEN after their decision (the race README "Reviews" describes): the decision held. */
      const reopened = incidentItems.filter(
        (i) => i.sk === 'REVIEW' && i.status === 'OPEN' && decisions.has(i.incidentId as string),
      ).length;

      // Audit: one row per audited event id, incident-explanation's produced events included however often a
      // redelivery re-produced them, and every chain of the run verifies.
      const auditedIds = [
        ...events.filter((e) => AUDITED.has(e.type)).map((e) => e.id),
        ...produced.map((e) => e.id),
      ];
      const audit = await auditRows(spec);
      expect(audit.length).toBe(auditedIds.length);
      expect(audit.map((r) => r.ceId).sort()).toEqual(auditedIds.sort());
      expect(await auditChainBreaks(spec)).toEqual([]);

      // Billing: one invoice per completed booking, paid by its payment.
      // Each invoice with the payment state its stored payments give it (billing derives it on read).
      const invoices = invoiceViewsOf(await scanAll(spec.tables.BillingTable as string));
      const flows = new Map<string, { completed?: BuiltEvent; paid?: BuiltEvent }>();
      for (const e of events) {
        if (e.type === 'booking.completed')
          flows.set(e.bookingId, { ...flows.get(e.bookingId), completed: e });
        if (e.type === 'payment.succeeded') flows.set(e.bookingId, { ...flows.get(e.bookingId), paid: e });
      }
      const billingWrong: string[] = [];
      for (const bookingId of invoices.keys()) {
        if (!flows.get(bookingId)?.completed) billingWrong.push(`${bookingId}: invoice without completion`);
      }
      for (const [bookingId, { completed, paid }] of flows) {
        if (!completed) continue;
        const invoice = invoices.get(bookingId);
        const amount = (paid?.data.amount as { amountMinor: number } | undefined)?.amountMinor ?? 0;
        if (!invoice) billingWrong.push(`${bookingId}: no invoice`);
        else if (invoice.paidMinor !== amount) {
          billingWrong.push(`${bookingId}: paid ${invoice.paidMinor}, expected ${amount}`);
        }
      }
      expect(billingWrong).toEqual([]);

      // Notifications: one log entry per (event, recipient) the rules decide, none other; all sent.
      const notificationItems = (await scanAll(spec.tables.NotificationsTable as string)).filter((i) =>
        String(i.sk).startsWith('RECIPIENT#'),
      );
      const logged = new Map(notificationItems.map((i) => [`${i.pk}|${i.sk}`, i]));
      const notificationsWrong: string[] = [];
      let expectedNotifications = 0;
      const notified = [
        ...events.map((e) => ({ topic: e.type as string, source: e.source, id: e.id, data: e.data })),
        ...produced.map((e) => ({ topic: e.topic, source: e.source, id: e.id, data: e.data })),
      ];
      for (const e of notified) {
        for (const intent of decideNotifications({ ...e, time: '' })) {
          expectedNotifications++;
          const { pk, sk } = notificationLogKey(e.source, e.id, intent.recipient.id);
          const key = `${pk}|${sk}`;
          const item = logged.get(key);
          logged.delete(key);
          if (item?.status !== 'SENT') {
            notificationsWrong.push(`${key}: ${item ? item.status : 'missing'}`);
          }
        }
      }
      expect(notificationsWrong).toEqual([]);
      expect([...logged.keys()], 'notifications nobody expected').toEqual([]);

      // Demand: counts per zone and hour equal the booking events of each kind.
      const kindOf: Record<string, string> = {
        'booking.created': 'booked',
        'booking.completed': 'completed',
        'booking.cancelled': 'cancelled',
      };
      const expectedDemand = new Map<string, Record<string, number>>();
      for (const e of events) {
        const kind = kindOf[e.type];
        if (!kind) continue;
        const key = `ZONE#${e.data.zoneId}|HOUR#${hourBucket(Number(e.data[eventTimeField[e.type]]))}`;
        const counts = expectedDemand.get(key) ?? { booked: 0, completed: 0, cancelled: 0 };
        counts[kind] = (counts[kind] ?? 0) + 1;
        expectedDemand.set(key, counts);
      }
      const demand = new Map(
        (await scanAll(spec.tables.DemandTable as string)).map((i) => [
          `${i.pk}|${i.sk}`,
          {
            booked: Number(i.booked ?? 0),
            completed: Number(i.completed ?? 0),
            cancelled: Number(i.cancelled ?? 0),
          },
        ]),
      );
      expect(Object.fromEntries(demand)).toEqual(Object.fromEntries(expectedDemand));

      console.log(
        `crash: ${events.length} events, ${spec.definitions.length} ESMs, seed ${SEED}, killed after ${killedAfterMs.join('/')} ms of running; drained in ${drainedMs} ms; ${audit.length} audit rows, ${invoices.size} invoices, ${views.length} explanations, ${reviews.size} reviews (${reopened} written open again after their decision), ${produced.length} genai.* events produced, ${expectedNotifications} notifications expected`,
      );
    },
    240_000 + DRAIN_MS,
  );
});
