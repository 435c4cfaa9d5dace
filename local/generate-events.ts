/**
 * Generates the MSK-shaped sample events in events/<function>/*.json (and schemas/bundle.generated.json)
 * from the schemas and schemas/samples.ts. Deterministic: fixed ids, times and offsets, so regenerating
 * gives byte-identical files; test/unit/contracts/generated-files.test.ts checks the committed files.
 *
 *   npm run events:generate
 */
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SchemaCatalogEntry } from '../schemas';
import { buildSchemaBundle } from '../schemas/bundle';
import {
  aggregateIdOf,
  eventTimeField,
  type SampleEventType,
  sampleData,
  sampleSources,
} from '../schemas/samples';
import { encodeConfluent, encodeGlue } from '../shared/contracts/avro-codec';
import { FileCatalogSchemaRegistry } from '../shared/contracts/file-catalog-registry';
import { type OutgoingEvent, toKafkaMessage } from '../shared/kafka/event-message';
import { kafkaEvent, kafkaEventRecord } from '../shared/msk/build';
import type { KafkaEvent, KafkaEventRecord } from '../shared/msk/event';
import { consumedTopics } from './consumers';

/** Topics each function consumes: the consumers map (serverless/consumers.cjs), the ESMs' source too. */
export const functionTopics = Object.fromEntries(consumedTopics()) as Record<string, SampleEventType[]>;

/** RFC 9562 v5-style UUID from a name: stable ids without randomness. */
function stableUuid(name: string): string {
  const hex = createHash('sha1').update(`mobility-events/${name}`).digest('hex');
  const variant = ((Number.parseInt(hex.slice(16, 18), 16) & 0x3f) | 0x80).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-5${hex.slice(13, 16)}-${variant}${hex.slice(18, 20)}-${hex.slice(20, 32)}`;
}

function traceparentFor(name: string): string {
  const hex = createHash('sha1').update(`trace/${name}`).digest('hex');
  return `00-${hex.slice(0, 32)}-${hex.slice(32, 40)}${hex.slice(0, 8)}-01`;
}

interface Generator {
  registry: FileCatalogSchemaRegistry;
}

function outgoingEvent(type: SampleEventType, n: number): OutgoingEvent {
  const data = sampleData[type](n);
  const key = aggregateIdOf(type, data);
  return {
    topic: type,
    key,
    id: stableUuid(`${type}/${n}`),
    type,
    source: sampleSources[type],
    subject: key,
    time: new Date(data[eventTimeField[type] as keyof typeof data] as number).toISOString(),
    data,
    correlationId: `corr-${stableUuid(`correlation/${n}`).slice(0, 8)}`,
    traceparent: traceparentFor(`${type}/${n}`),
  };
}

type Framing = 'latest' | 'v1' | 'glue-zlib' | 'poison';

function record(
  gen: Generator,
  type: SampleEventType,
  n: number,
  partition: number,
  offset: number,
  framing: Framing = 'latest',
): KafkaEventRecord {
  const event = outgoingEvent(type, n);
  const message = toKafkaMessage(event, gen.registry);
  let value = message.value;
  if (framing === 'v1') {
    // An older producer: the same event written with version 1 (fields v1 lacks are dropped).
    const v1 = gen.registry.version(type, 1);
    const fields = (v1.writerType as unknown as { fields: { name: string }[] }).fields.map((f) => f.name);
    value = encodeConfluent(v1, Object.fromEntries(fields.map((name) => [name, event.data[name]])));
  } else if (framing === 'glue-zlib') {
    const schema = gen.registry.latest(type);
    const entry = gen.registry.catalogEntry(schema.id as number);
    value = encodeGlue(entry.glueSchemaVersionId, schema.writerType, event.data, { compress: true });
  } else if (framing === 'poison') {
    // A producer that framed with an unknown magic byte: decodes to a RecordDecodeError (wrong-magic-byte).
    value = Buffer.concat([Buffer.from([0x07]), value.subarray(1)]);
  }
  return kafkaEventRecord({
    topic: type,
    partition,
    offset,
    timestamp: Date.parse(event.time),
    key: message.key,
    value,
    headers: message.headers,
  });
}

function tombstone(type: SampleEventType, n: number, partition: number, offset: number): KafkaEventRecord {
  const data = sampleData[type](n);
  return kafkaEventRecord({
    topic: type,
    partition,
    offset,
    timestamp: Date.parse(new Date(data[eventTimeField[type] as keyof typeof data] as number).toISOString()),
    key: aggregateIdOf(type, data),
    value: null,
  });
}

function fileName(type: string): string {
  return `${type.replaceAll('.', '-')}.json`;
}

/** The events of one function: one file per topic, a multi-partition batch, a tombstone and a poison record. */
function functionEvents(gen: Generator, fn: string, topics: SampleEventType[], seed: number) {
  const files = new Map<string, KafkaEvent>();
  for (const [t, type] of topics.entries()) {
    const base = seed + t * 10;
    const partition = base % 6;
    const records = [0, 1, 2].map((i) => {
      let framing: Framing = 'latest';
      // Older producers still write booking.created v1; audit must read Glue-framed compressed values.
      if (type === 'booking.created' && i === 1) framing = 'v1';
      if (fn === 'audit-append' && type === 'payment.succeeded' && i === 2) framing = 'glue-zlib';
      return record(gen, type, base + i, partition, 100 + base + i, framing);
    });
    files.set(fileName(type), kafkaEvent(records));
  }
  const primary = topics[0] as SampleEventType;
  files.set(
    'multi-partition.json',
    kafkaEvent([
      ...[0, 1, 2].map((i) => record(gen, primary, seed + 50 + i, 0, 2000 + i)),
      ...[0, 1].map((i) => record(gen, primary, seed + 60 + i, 3, 3000 + i)),
      ...[0, 1, 2].map((i) => record(gen, primary, seed + 70 + i, 5, 5000 + i)),
    ]),
  );
  files.set(
    'tombstone.json',
    kafkaEvent([
      record(gen, primary, seed + 80, 1, 700),
      tombstone(primary, seed + 80, 1, 701),
      record(gen, primary, seed + 81, 1, 702),
    ]),
  );
  files.set(
    'poison.json',
    kafkaEvent([
      record(gen, primary, seed + 90, 2, 900),
      record(gen, primary, seed + 91, 2, 901, 'poison'),
      record(gen, primary, seed + 92, 2, 902),
      record(gen, primary, seed + 93, 4, 400),
      record(gen, primary, seed + 94, 4, 401),
    ]),
  );
  return files;
}

/** JSON with byte arrays (headers) kept on one line, so fixtures stay readable and diffable. */
function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2).replace(
    /\[\s*(\d+(?:,\s*\d+)*)\s*\]/g,
    (_m, nums: string) => `[${nums.split(/,\s*/).join(',')}]`,
  )}\n`;
}

/** The AWS Lambda developer guide's example MSK event, and its self-managed Kafka counterpart. */
function awsExamples(): Map<string, unknown> {
  const bootstrapServers =
    'b-2.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092,b-1.demo-cluster-1.a1bcde.c1.kafka.us-east-1.amazonaws.com:9092';
  const records = {
    'mytopic-0': [
      {
        topic: 'mytopic',
        partition: 0,
        offset: 15,
        timestamp: 1545084650987,
        timestampType: 'CREATE_TIME',
        key: 'cmVjb3JkS2V5',
        value: 'eyJrZXkiOiJ2YWx1ZSJ9',
        headers: [{ headerKey: [104, 101, 97, 100, 101, 114, 86, 97, 108, 117, 101] }],
      },
    ],
  };
  return new Map<string, unknown>([
    [
      'msk.json',
      {
        eventSource: 'aws:kafka',
        eventSourceArn:
          'arn:aws:kafka:us-east-1:123456789012:cluster/vpc-2priv-2pub/751d2973-a626-431c-9d4e-d7975eb44dd7-2',
        bootstrapServers,
        records,
      },
    ],
    ['self-managed-kafka.json', { eventSource: 'SelfManagedKafka', bootstrapServers, records }],
  ]);
}

/** Every generated file: repository-relative path -> exact content. */
export function generateFiles(): Map<string, string> {
  const bundle = buildSchemaBundle();
  // Built from the fresh bundle, not the imported one, so a changed .avsc is used in the same run.
  const entries = (JSON.parse(bundle) as { schemas: SchemaCatalogEntry[] }).schemas;
  const gen: Generator = { registry: new FileCatalogSchemaRegistry(entries) };
  const files = new Map<string, string>([['schemas/bundle.generated.json', bundle]]);
  for (const [index, [fn, topics]] of Object.entries(functionTopics).entries()) {
    for (const [name, event] of functionEvents(gen, fn, topics, index * 100)) {
      files.set(`events/${fn}/${name}`, formatJson(event));
    }
  }
  for (const [name, event] of awsExamples()) files.set(`events/aws-examples/${name}`, formatJson(event));
  return files;
}

export const repoRoot = join(import.meta.dirname, '..');

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const files = generateFiles();
  for (const [path, content] of files) {
    mkdirSync(dirname(join(repoRoot, path)), { recursive: true });
    writeFileSync(join(repoRoot, path), content);
  }
  console.log(`Wrote ${files.size} files (schemas/bundle.generated.json, events/**)`);
}
