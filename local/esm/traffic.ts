// Traffic for `dev`: the MSK-shaped samples in events/ re-produced to their topics, or generated events at
// a steady rate through the project's producer (CloudEvents headers, Avro values).
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { Producer } from '@platformatic/kafka';
import type { MSKEvent } from 'aws-lambda';
import {
  aggregateIdOf,
  eventTimeField,
  type SampleEventType,
  sampleData,
  sampleSources,
} from '../../schemas/samples';
import { kafkaSettingsFromEnv } from '../../shared/kafka/client-options';
import { EventProducer } from '../../shared/kafka/producer';

export interface ProducibleRecord {
  topic: string;
  key?: Buffer;
  value?: Buffer;
  headers: Map<Buffer, Buffer>;
}

/** Every record of events/<function>/*.json whose topic exists, once (several functions share samples). */
export async function sampleRecords(topics: Set<string>, root = process.cwd()): Promise<ProducibleRecord[]> {
  const dir = path.join(root, 'events');
  const seen = new Set<string>();
  const records: ProducibleRecord[] = [];
  for (const folder of (await readdir(dir, { withFileTypes: true })).filter((d) => d.isDirectory())) {
    for (const file of (await readdir(path.join(dir, folder.name)))
      .filter((f) => f.endsWith('.json'))
      .sort()) {
      const event = JSON.parse(await readFile(path.join(dir, folder.name, file), 'utf8')) as MSKEvent;
      for (const record of Object.values(event.records ?? {}).flat()) {
        const identity = `${record.topic}|${record.key}|${record.value}`;
        if (!topics.has(record.topic) || seen.has(identity)) continue;
        seen.add(identity);
        records.push({
          topic: record.topic,
          ...(record.key ? { key: Buffer.from(record.key, 'base64') } : {}),
          ...(record.value ? { value: Buffer.from(record.value, 'base64') } : {}),
          headers: new Map(
            (record.headers ?? []).flatMap((h) =>
              Object.entries(h).map(
                ([name, bytes]) => [Buffer.from(name), Buffer.from(bytes)] as [Buffer, Buffer],
              ),
            ),
          ),
        });
      }
    }
  }
  return records;
}

/** Produces the samples now (current timestamps, so latency and record age mean something). */
export async function produceSamples(brokers: string[], records: ProducibleRecord[]): Promise<void> {
  const producer = new Producer({ clientId: 'dev-samples', bootstrapBrokers: brokers, idempotent: true });
  try {
    await producer.send({ messages: records });
  } finally {
    await producer.close();
  }
}

export interface GeneratedTraffic {
  produced(): number;
  stop(): Promise<void>;
}

/** About `rate` events per second across the given event types, in 100 ms ticks. */
export function generateTraffic(rate: number, types: SampleEventType[]): GeneratedTraffic {
  const producer = EventProducer.connect(kafkaSettingsFromEnv('dev-traffic'));
  let n = 0;
  let produced = 0;
  let sending = Promise.resolve();
  const timer = setInterval(() => {
    const count = Math.max(1, Math.round(rate / 10));
    const events = Array.from({ length: count }, () => {
      n += 1;
      const type = types[n % types.length] as SampleEventType;
      const data = (sampleData[type] as (i: number) => Record<string, unknown>)(n);
      const key = aggregateIdOf(type, data);
      return {
        topic: type,
        key,
        id: randomUUID(),
        type,
        source: sampleSources[type],
        subject: key,
        time: new Date(Number(data[eventTimeField[type]] ?? Date.now())).toISOString(),
        data,
      };
    });
    // One send at a time: a slow broker slows the traffic instead of piling up sends.
    sending = sending
      .then(() => producer.publish(events))
      .then(() => {
        produced += events.length;
      })
      .catch((error: Error) => console.error(`traffic: ${error.message}`));
  }, 100);
  return {
    produced: () => produced,
    stop: async () => {
      clearInterval(timer);
      await sending;
      await producer.close();
    },
  };
}
