// Load generator of bench/e2e.bench.ts, in a process of its own so the emulator's event loop never delays
// the offered load (producers are other services in production). Argument: a JSON job
// {topics, rate, seconds, kind: 'mixed' | 'audited', from}; prints a JSON line when its clock starts and one
// with what it sent (and the CPU it used meanwhile) when it has sent everything.
// Not idempotent: an idempotent producer of @platformatic/kafka allows one request in flight, which caps a
// single producer far below 1,000 events/s on a loaded machine; acks from the leader, pipelined requests.
import '../shared/kafka/node20-polyfills';
import { setTimeout as sleep } from 'node:timers/promises';
import { ProduceAcks, Producer } from '@platformatic/kafka';
import {
  type BuiltEvent,
  buildEvent,
  explanationEventCount,
  mixedEvents,
  newFlowIds,
} from '../test/e2e/reliability/events';
import { kafkaBrokers } from '../test/support/kafka';

interface Job {
  topics: Record<string, string>;
  rate: number;
  seconds: number;
  kind: 'mixed' | 'audited';
  /** First flow number, so consecutive jobs never repeat the sample sequence. */
  from: number;
}

const job = JSON.parse(process.argv[2] as string) as Job;
const total = Math.round(job.rate * job.seconds);
const types = Object.keys(job.topics) as Array<Parameters<typeof buildEvent>[0]>;
// Generated before the clock starts (about 45 us per event), so generation never lowers the rate.
const events: BuiltEvent[] =
  job.kind === 'mixed'
    ? mixedEvents(job.topics, total, job.from)
    : Array.from({ length: total }, (_, i) => {
        const type = types[i % types.length] as (typeof types)[number];
        return buildEvent(type, job.from + i, newFlowIds(), job.topics[type] as string);
      });
// Audited: what is produced here, plus, in the mix, the genai.* events incident-explanation produces per incident.
const audited =
  events.filter((e) => e.type.startsWith('payment.') || e.type.startsWith('genai.')).length +
  (job.kind === 'mixed' ? await explanationEventCount(events) : 0);

const producer = new Producer({
  clientId: 'bench-e2e-load',
  bootstrapBrokers: kafkaBrokers(),
  acks: ProduceAcks.LEADER,
  maxInflights: 20,
});
// 20 ms ticks scheduled against the start time: a late tick sends more, so the average rate holds.
const tickMs = 20;
const startedAt = Date.now();
const cpuAtStart = process.cpuUsage();
// The runner measures the machine's CPU from here to the summary line.
process.stdout.write(`${JSON.stringify({ started: startedAt })}\n`);
const outstanding = new Set<Promise<unknown>>();
let sent = 0;
while (sent < total) {
  const due = Math.min(total, Math.floor(((Date.now() - startedAt + tickMs) / 1000) * job.rate));
  if (due <= sent) {
    // Below 1 event per tick (rates under 50/s): wait for the next one's time.
    await sleep(Math.max(1, startedAt + ((sent + 1) / job.rate) * 1000 - tickMs - Date.now()));
    continue;
  }
  const batch = events.slice(sent, due);
  const sending = producer.send({
    messages: batch.map(({ message: m }) => ({
      topic: m.topic,
      ...(m.key ? { key: m.key } : {}),
      ...(m.value ? { value: m.value } : {}),
      ...(m.headers ? { headers: m.headers } : {}),
    })),
  });
  outstanding.add(sending);
  sending.finally(() => outstanding.delete(sending)).catch(() => undefined);
  if (outstanding.size >= 50) await Promise.race(outstanding);
  sent += batch.length;
  const next = startedAt + (sent / job.rate) * 1000 - Date.now();
  if (next > 0) await sleep(Math.min(next, tickMs));
}
await Promise.all(outstanding);
const endedAt = Date.now();
const cpu = process.cpuUsage(cpuAtStart);
process.stdout.write(
  `${JSON.stringify({
    sent,
    audited,
    startedAt,
    endedAt,
    achievedRate: sent / ((endedAt - startedAt) / 1000),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  })}\n`,
);
await producer.close();
