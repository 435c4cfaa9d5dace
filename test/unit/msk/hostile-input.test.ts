/**
 * The findings of issue 20, one test each: a hostile record fails alone, with a reason naming the field and the
 * limit, the same for every function, and the valid records of its batch are processed.
 */
import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { contractDecoder } from '../../../functions/audit-append/contract-decoder';
import type { DemandModelConfig } from '../../../functions/demand-prediction-update/demand-model';
import type { ApplyOutcome, DemandReadModel } from '../../../functions/demand-prediction-update/ports';
import { demandPolicy } from '../../../functions/demand-prediction-update/process-demand-batch';
import zonesFile from '../../../functions/demand-prediction-update/zones.json';
import { sampleData } from '../../../schemas/samples';
import { encodeConfluent, encodeJson } from '../../../shared/contracts/avro-codec';
import { cloudEventHeaders, eventKey } from '../../../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { confluentHeader, glueHeader } from '../../../shared/contracts/framing';
import {
  type DecodeOutcome,
  decodeEvent,
  type KafkaEventRecord,
  kafkaEvent,
  kafkaEventRecord,
  RecordDecodeError,
  runBatch,
  withRawRecords,
} from '../../../shared/msk';

const silent = { error: () => {}, warn: () => {} };

function record(
  type: string,
  offset: number,
  options: { topic?: string; value?: Buffer | null; headers?: Record<string, string>; n?: number } = {},
): KafkaEventRecord {
  const n = options.n ?? offset;
  const data = sampleData[type as keyof typeof sampleData](n);
  return kafkaEventRecord({
    topic: options.topic ?? type,
    partition: 0,
    offset,
    timestamp: 1_772_438_400_000 + offset,
    key: `key-${n}`,
    value: options.value === undefined ? encodeConfluent(registry.latest(type), data) : options.value,
    headers: {
      ...cloudEventHeaders({
        id: `evt-${type}-${n}`,
        type,
        source: 'urn:mobility:test',
        specversion: '1.0',
        time: '2026-03-02T08:00:00.000Z',
        subject: `key-${n}`,
        datacontenttype: 'application/avro',
      }),
      ...options.headers,
    },
  });
}

async function decodeAll(records: KafkaEventRecord[]): Promise<DecodeOutcome[]> {
  const partitions = await decodeEvent(kafkaEvent(records), { registry });
  return partitions.flatMap((partition) => partition.records);
}

/** Decodes [valid, hostile, valid] and returns the hostile one's outcome after checking the others decoded. */
async function hostileBetweenValid(type: string, hostile: KafkaEventRecord): Promise<DecodeOutcome> {
  const outcomes = await decodeAll([record(type, 0), { ...hostile, offset: 1 }, record(type, 2)]);
  expect(outcomes[0]).not.toBeInstanceOf(RecordDecodeError);
  expect(outcomes[2]).not.toBeInstanceOf(RecordDecodeError);
  return outcomes[1] as DecodeOutcome;
}

/** Zigzag varint of a long, as Avro writes it. */
function avroLong(n: bigint): number[] {
  let v = n >= 0n ? n << 1n : (-n << 1n) - 1n;
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

describe('finding 1: Avro block counts are checked against the bytes that remain', () => {
  it('a 16-byte value claiming 2^31-1 array items fails alone, at once', async () => {
    const schema = registry.latest('genai.hitl.requested');
    // Confluent header, three 1-character strings, then the array block count.
    const body = [2, 0x61, 2, 0x62, 2, 0x63, ...avroLong(2n ** 31n - 1n)];
    const value = Buffer.concat([confluentHeader(schema.id as number), Buffer.from(body)]);
    expect(value.length).toBe(16);
    const outcome = await hostileBetweenValid(
      'genai.hitl.requested',
      record('genai.hitl.requested', 1, { value }),
    );
    expect(outcome).toMatchObject({
      reason: 'invalid-avro',
      detail: expect.stringContaining('array block count 2147483647 exceeds the 0 bytes left'),
    });
  });

  it('a negative block count with a block size past the end fails too', async () => {
    const schema = registry.latest('genai.hitl.requested');
    const body = [2, 0x61, 2, 0x62, 2, 0x63, ...avroLong(-3n), ...avroLong(1_000_000n)];
    const value = Buffer.concat([confluentHeader(schema.id as number), Buffer.from(body)]);
    const outcome = await hostileBetweenValid(
      'genai.hitl.requested',
      record('genai.hitl.requested', 1, { value }),
    );
    expect(outcome).toMatchObject({
      reason: 'invalid-avro',
      detail: expect.stringContaining('block size 1000000'),
    });
  });
});

describe('finding 2: Glue zlib values inflate only up to 1 MiB', () => {
  it('a 64 MiB bomb fails alone as value-too-large', async () => {
    const entry = registry.catalogEntry(registry.latest('booking.created').id as number);
    const bomb = deflateSync(Buffer.alloc(64 * 1024 * 1024));
    const value = Buffer.concat([glueHeader(entry.glueSchemaVersionId, true), bomb]);
    expect(value.length).toBeLessThan(100_000);
    const outcome = await hostileBetweenValid('booking.created', record('booking.created', 1, { value }));
    expect(outcome).toMatchObject({
      reason: 'value-too-large',
      detail: expect.stringContaining('more than 1048576 bytes'),
    });
  });
});

describe('finding 2 (fuzz): corrupt zlib data', () => {
  it('fails alone with the zlib error (inflated asynchronously: inflateSync leaks on corrupt data)', async () => {
    const entry = registry.catalogEntry(registry.latest('booking.created').id as number);
    const value = Buffer.concat([
      glueHeader(entry.glueSchemaVersionId, true),
      Buffer.from([0x78, 0x9c, 1, 2, 3, 4, 5]),
    ]);
    const outcome = await hostileBetweenValid('booking.created', record('booking.created', 1, { value }));
    expect(outcome).toMatchObject({ reason: 'invalid-avro', detail: expect.stringContaining('zlib:') });
  });
});

describe('finding 3: records that used to fail the whole batch fail alone', () => {
  it('a Kafka timestamp above 2^53', async () => {
    const hostile = { ...record('genai.request', 1), timestamp: 2 ** 53 + 2 };
    expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({
      reason: 'invalid-timestamp',
      detail: expect.stringContaining('Kafka timestamp 9007199254740994'),
    });
  });

  it.each(['ce_id', 'ce_subject', 'ce_type', 'ce_correlationid'])(
    'a %s of 4 KB (over PostgreSQL index row limit, SQLSTATE 54000)',
    async (header) => {
      const hostile = record('genai.request', 1, { headers: { [header]: 'x'.repeat(4096) } });
      expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({
        reason: 'invalid-ce-attribute',
        detail: expect.stringMatching(new RegExp(`^${header} is 4096 bytes, limit is \\d+$`)),
      });
    },
  );

  it('demand: createdAt = 8.64e15 fails alone; the batch around it is aggregated', async () => {
    const schema = registry.latest('booking.created');
    const data = { ...sampleData['booking.created'](1), createdAt: 8.64e15 };
    const hostile = record('booking.created', 1, { value: encodeConfluent(schema, data) });
    const outcome = await hostileBetweenValid('booking.created', hostile);
    expect(outcome).toMatchObject({
      reason: 'invalid-data',
      detail: expect.stringContaining(
        'data.createdAt timestamp-millis 8640000000000000 is outside years 0001-9999',
      ),
    });
    const applied: string[] = [];
    const readModel: DemandReadModel = {
      apply: async (updates) => {
        applied.push(...updates.map((update) => update.zoneId));
        return updates.map((update): ApplyOutcome => ({ update, status: 'APPLIED' }));
      },
      zoneDemand: async () => [],
      topZones: async () => [],
      supplyAndDemand: async () => {
        throw new Error('not read here');
      },
    };
    const config = zonesFile as DemandModelConfig;
    const event = kafkaEvent([
      record('booking.created', 0),
      { ...hostile, offset: 1 },
      record('booking.created', 2),
    ]);
    const partitions = withRawRecords(await decodeEvent(event, { registry }), event.records);
    // Through the engine under demand's policy, as the handler runs it.
    const result = await runBatch(
      partitions,
      demandPolicy(config, new Set(config.zones.map((zone) => zone.zoneId)), readModel),
      { logger: silent },
    );
    expect(applied.length).toBeGreaterThan(0);
    expect(result.response.batchItemFailures.map((failure) => failure.itemIdentifier.offset)).toEqual([1, 2]);
  });

  it('demand: a createdAt in year 10000 is refused, not bucketed as +010000-01-01', async () => {
    const data = { ...sampleData['booking.created'](1), createdAt: Date.UTC(10000, 0, 1) };
    const hostile = record('booking.created', 1, {
      value: encodeConfluent(registry.latest('booking.created'), data),
    });
    expect(await hostileBetweenValid('booking.created', hostile)).toMatchObject({ reason: 'invalid-data' });
  });

  it('audit: ce_time in year 0000 is refused in the decode (Date.UTC would read it as 1900)', async () => {
    const hostile = record('genai.request', 1, { headers: { ce_time: '0000-01-01T00:00:00Z' } });
    expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({
      reason: 'invalid-ce-attribute',
      detail: expect.stringContaining('ce_time "0000-01-01T00:00:00Z" is not an RFC 3339 date-time'),
    });
    expect(() => contractDecoder(registry)(hostile)).toThrow(RecordDecodeError);
  });

  it('audit: a JSON string with a lone surrogate is refused in the decode', async () => {
    const schema = registry.latest('genai.request');
    const text = encodeJson(sampleData['genai.request'](1))
      .toString('utf8')
      .replace(/"modelId":"[^"]*"/, '"modelId":"\\ud800"');
    const hostile = {
      ...record('genai.request', 1, { value: Buffer.from(text) }),
      valueSchemaMetadata: { dataFormat: 'AVRO' as const, schemaId: String(schema.id) },
    };
    const json = { ...hostile, value: encodeJson(sampleData['genai.request'](1)).toString('base64') };
    // Control: the same record without the surrogate decodes as JSON.
    expect(await hostileBetweenValid('genai.request', json)).toMatchObject({ format: 'json' });
    expect(text).toContain('\\ud800');
    expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({
      reason: 'invalid-data',
      detail: expect.stringContaining('lone UTF-16 surrogate'),
    });
  });
});

describe('finding 4: the catalog binds each topic to its event types', () => {
  it('a payment.succeeded record on booking.completed fails and is never billed', async () => {
    const hostile = record('payment.succeeded', 1, { topic: 'booking.completed' });
    const outcome = await hostileBetweenValid('booking.completed', hostile);
    expect(outcome).toMatchObject({
      reason: 'topic-type-mismatch',
      detail: 'ce_type payment.succeeded on topic booking.completed, which carries only booking.completed',
    });
    // Every function's loop reports a RecordDecodeError as that record's failure: billing never sees it.
    expect(outcome).toBeInstanceOf(RecordDecodeError);
  });

  it('a topic with a namespace prefix is bound as its catalog topic; an unknown topic carries nothing', async () => {
    const prefixed = record('booking.completed', 0, { topic: 'rel-run1.booking.completed' });
    const [ok] = await decodeAll([prefixed]);
    expect(ok).not.toBeInstanceOf(RecordDecodeError);
    const [wrong] = await decodeAll([
      record('payment.succeeded', 0, { topic: 'rel-run1.booking.completed' }),
    ]);
    expect(wrong).toMatchObject({ reason: 'topic-type-mismatch' });
    const [unknown] = await decodeAll([record('booking.completed', 0, { topic: 'completed' })]);
    expect(unknown).toMatchObject({
      reason: 'topic-type-mismatch',
      detail: expect.stringContaining('not in the schema catalog'),
    });
  });

  it('a JSON value without schema-registry metadata is refused, not stored unvalidated', async () => {
    const hostile = record('genai.request', 1, { value: encodeJson({ anything: 'goes' }) });
    expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({
      reason: 'json-without-schema',
    });
  });

  it('a JSON value that does not match the schema its metadata names is refused', async () => {
    const schema = registry.latest('genai.request');
    const hostile = {
      ...record('genai.request', 1, { value: encodeJson({ anything: 'goes' }) }),
      valueSchemaMetadata: { dataFormat: 'AVRO' as const, schemaId: String(schema.id) },
    };
    expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({ reason: 'invalid-json' });
  });
});

describe('finding 5: headers are decoded strictly; events are identified by source + id', () => {
  it('ce_id bytes 61 ff and 61 fe are record failures naming the bytes, not two U+FFFD ids', async () => {
    for (const bytes of [
      [0x61, 0xff],
      [0x61, 0xfe],
    ]) {
      const hostile = record('genai.request', 1);
      hostile.headers = [
        ...(hostile.headers ?? []).filter((header) => !('ce_id' in header)),
        { ce_id: bytes },
      ];
      expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({
        reason: 'invalid-header',
        detail: `header "ce_id" is not valid UTF-8: bytes ${Buffer.from(bytes)
          .toString('hex')
          .replace(/(..)(?!$)/, '$1 ')}`,
      });
    }
  });

  it('eventKey tells apart the same id from two sources, and cannot be forged by separators', () => {
    expect(eventKey({ source: 'urn:a', id: '1' })).not.toBe(eventKey({ source: 'urn:b', id: '1' }));
    expect(eventKey({ source: 'a","b', id: 'c' })).not.toBe(eventKey({ source: 'a', id: 'b","c' }));
  });
});

describe('finding 7: CloudEvents attributes are validated once, the same for every function', () => {
  it('ce_time "yesterday" fails in the shared decode that billing and audit both use, with one reason', async () => {
    const hostile = record('payment.succeeded', 1, { headers: { ce_time: 'yesterday' } });
    const outcome = await hostileBetweenValid('payment.succeeded', hostile);
    expect(outcome).toMatchObject({
      reason: 'invalid-ce-attribute',
      detail: 'ce_time "yesterday" is not an RFC 3339 date-time between years 0001 and 9999',
    });
    expect(outcome).toBeInstanceOf(RecordDecodeError);
    expect(() => contractDecoder(registry)(hostile)).toThrow(
      expect.objectContaining({
        reason: 'invalid-ce-attribute',
        detail: (outcome as RecordDecodeError).detail,
      }),
    );
  });

  it.each([
    ['ce_time', '2026-02-30T00:00:00Z', 'RFC 3339'],
    ['ce_time', '2026-03-02 08:00:00Z', 'RFC 3339'],
    ['ce_time', '2026-03-02T08:00:00', 'RFC 3339'],
    ['ce_source', 'urn:\u0000evil', 'control character U+0000'],
    ['ce_specversion', '0.3', 'unsupported ce_specversion'],
  ])('%s %j fails with a reason naming it', async (header, value, problem) => {
    const hostile = record('genai.request', 1, { headers: { [header]: value } });
    expect(await hostileBetweenValid('genai.request', hostile)).toMatchObject({
      reason: 'invalid-ce-attribute',
      detail: expect.stringContaining(problem),
    });
  });
});
