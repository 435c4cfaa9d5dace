import { describe, expect, it } from 'vitest';
import { sampleData } from '../../../schemas/samples';
import { encodeConfluent, encodeJson } from '../../../shared/contracts/avro-codec';
import { cloudEventHeaders } from '../../../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { confluentHeader } from '../../../shared/contracts/framing';
import type { SchemaRegistry } from '../../../shared/contracts/schema-registry';
import { kafkaEvent, kafkaEventRecord } from '../../../shared/msk/build';
import {
  type DecodedEvent,
  decodeEvent,
  decodeRawRecord,
  isRecordDecodeError,
  RecordDecodeError,
} from '../../../shared/msk/decode';
import type { KafkaEvent, KafkaEventRecord } from '../../../shared/msk/event';
import { loadEvent } from '../../support/load-event';

const booking = sampleData['booking.created'](7);

function headersFor(type: string, subject: string, extra: Record<string, string> = {}) {
  return {
    ...cloudEventHeaders({
      id: `evt-${subject}`,
      type,
      source: 'urn:mobility:test',
      specversion: '1.0',
      time: '2026-03-02T08:00:00.000Z',
      subject,
      datacontenttype: 'application/avro',
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      correlationId: 'corr-7',
    }),
    ...extra,
  };
}

function bookingRecord(offset: number, partition = 0, overrides: Partial<KafkaEventRecord> = {}) {
  return {
    ...kafkaEventRecord({
      topic: 'booking.created',
      partition,
      offset,
      timestamp: 1_772_438_400_000 + offset,
      key: booking.bookingId,
      value: encodeConfluent(registry.latest('booking.created'), booking),
      headers: headersFor('booking.created', booking.bookingId),
    }),
    ...overrides,
  };
}

async function decodeOne(record: KafkaEventRecord, maxValueBytes?: number) {
  const partitions = await decodeEvent(kafkaEvent([record]), { registry, maxValueBytes });
  return partitions[0]?.records[0];
}

describe('the AWS developer guide example MSK event', () => {
  it.each(['aws-examples/msk.json', 'aws-examples/self-managed-kafka.json'])(
    '%s decodes exactly',
    async (file) => {
      const event = loadEvent(file);
      const record = event.records['mytopic-0']?.[0] as KafkaEventRecord;
      const raw = decodeRawRecord(record);
      expect(raw).toEqual({
        topic: 'mytopic',
        partition: 0,
        offset: 15,
        timestamp: 1545084650987,
        timestampType: 'CREATE_TIME',
        key: 'recordKey',
        headers: { headerKey: 'headerValue' },
        value: Buffer.from('{"key":"value"}'),
      });
      expect(JSON.parse(String((raw as { value: Buffer }).value))).toEqual({ key: 'value' });
    },
  );

  it('is a typed error for the full contract: it has no CloudEvents headers', async () => {
    const [partition] = await decodeEvent(loadEvent('aws-examples/msk.json'), { registry });
    const outcome = partition?.records[0];
    expect(outcome).toBeInstanceOf(RecordDecodeError);
    expect(outcome).toMatchObject({
      topic: 'mytopic',
      partition: 0,
      offset: 15,
      reason: 'missing-ce-headers',
    });
  });

  it('has no eventSourceArn in the self-managed shape', () => {
    const event = loadEvent('aws-examples/self-managed-kafka.json');
    expect(event.eventSource).toBe('SelfManagedKafka');
    expect('eventSourceArn' in event).toBe(false);
  });
});

describe('decodeEvent', () => {
  it('decodes a CloudEvent with Avro data, key, headers and coordinates', async () => {
    const outcome = (await decodeOne(bookingRecord(42))) as DecodedEvent;
    expect(outcome).toMatchObject({
      topic: 'booking.created',
      partition: 0,
      offset: 42,
      timestamp: 1_772_438_400_042,
      key: booking.bookingId,
      tombstone: false,
      format: 'avro-confluent',
      data: booking,
      cloudEvent: {
        id: `evt-${booking.bookingId}`,
        type: 'booking.created',
        source: 'urn:mobility:test',
        specversion: '1.0',
        time: '2026-03-02T08:00:00.000Z',
        subject: booking.bookingId,
        datacontenttype: 'application/avro',
        traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
        correlationId: 'corr-7',
      },
    });
    expect(outcome.schema).toMatchObject({ id: 2, eventType: 'booking.created', version: 2 });
    expect(outcome.rawValue[0]).toBe(0);
  });

  it('refuses a JSON value without valueSchemaMetadata: only an ESM schema registry delivers JSON', async () => {
    const outcome = await decodeOne(bookingRecord(1, 0, { value: encodeJson(booking).toString('base64') }));
    expect(outcome).toMatchObject({ reason: 'json-without-schema' });
  });

  it('decodes a null key and a tombstone (null or absent value)', async () => {
    const nullValue = await decodeOne(bookingRecord(3, 0, { key: null, value: null }));
    expect(nullValue).toMatchObject({ key: null, tombstone: true, data: null, rawValue: null });
    const { value: _value, key: _key, ...absent } = bookingRecord(4, 0, { headers: [] });
    expect(await decodeOne(absent)).toMatchObject({
      key: null,
      tombstone: true,
      cloudEvent: null,
      data: null,
    });
  });

  it('decodes UTF-8 keys and unpadded or URL-safe base64 keys', async () => {
    const keyOf = async (key: string) => {
      const outcome = await decodeOne(bookingRecord(1, 0, { key, value: null }));
      if (!outcome || isRecordDecodeError(outcome)) throw new Error(`key ${key} not decoded`);
      return outcome.key;
    };
    expect(await keyOf(Buffer.from('zürich-42').toString('base64'))).toBe('zürich-42');
    expect(await keyOf(Buffer.from('bk-1').toString('base64'))).toBe('bk-1');
    expect(await keyOf(Buffer.from('bk-1').toString('base64url'))).toBe('bk-1');
    const invalid = await decodeOne(
      bookingRecord(1, 0, { key: Buffer.from([0xfb, 0xff]).toString('base64url') }),
    );
    expect(invalid).toMatchObject({ reason: 'invalid-key', detail: 'key is not valid UTF-8: bytes fb ff' });
  });

  it('keeps several topic-partitions apart, each in offset order', async () => {
    const event = kafkaEvent([
      bookingRecord(7, 1),
      bookingRecord(5, 0),
      bookingRecord(6, 1),
      bookingRecord(4, 0),
    ]);
    const partitions = await decodeEvent(event, { registry });
    expect(partitions.map((p) => [p.key, p.records.map((r) => r.offset)])).toEqual([
      ['booking.created-1', [6, 7]],
      ['booking.created-0', [4, 5]],
    ]);
  });

  it('accepts headers: [] and headers: null', async () => {
    expect(await decodeOne(bookingRecord(1, 0, { headers: null, value: null }))).toMatchObject({
      headers: {},
    });
  });

  it('decodes UTF-8 header values', async () => {
    const record = bookingRecord(1, 0, {
      headers: [{ note: [...Buffer.from('Grüße')] }] as never,
      value: null,
    });
    expect(await decodeOne(record)).toMatchObject({ headers: { note: 'Grüße' } });
  });
});

describe('bad input: each record becomes a typed error naming topic, partition, offset and reason', () => {
  const framed = encodeConfluent(registry.latest('booking.created'), booking);
  const cases: [string, KafkaEventRecord, string, number?][] = [
    [
      'wrong magic byte',
      bookingRecord(10, 2, { value: Buffer.from([9, ...framed.subarray(1)]).toString('base64') }),
      'wrong-magic-byte',
    ],
    [
      'unknown schema id',
      bookingRecord(11, 2, {
        value: Buffer.concat([confluentHeader(424242), framed.subarray(5)]).toString('base64'),
      }),
      'unknown-schema-id',
    ],
    [
      'truncated Avro',
      bookingRecord(12, 2, { value: framed.subarray(0, framed.length - 8).toString('base64') }),
      'truncated-avro',
    ],
    [
      'JSON without valueSchemaMetadata',
      bookingRecord(13, 2, { value: Buffer.from('{"bookingId": ').toString('base64') }),
      'json-without-schema',
    ],
    [
      'missing ce_ headers',
      bookingRecord(14, 2, { headers: [{ 'content-type': [...Buffer.from('application/avro')] }] }),
      'missing-ce-headers',
    ],
    ['value over the size limit', bookingRecord(15, 2), 'value-too-large', 64],
    [
      'a header that is not a byte array',
      bookingRecord(16, 2, { headers: [{ ce_id: 'evt-1' as unknown as number[] }] }),
      'invalid-header',
    ],
    [
      'a header byte out of range',
      bookingRecord(17, 2, { headers: [{ ce_id: [101, 300] }] }),
      'invalid-header',
    ],
    [
      'a value written with another type than ce_type',
      bookingRecord(18, 2, {
        value: encodeConfluent(
          registry.latest('booking.cancelled'),
          sampleData['booking.cancelled'](1),
        ).toString('base64'),
      }),
      'schema-type-mismatch',
    ],
  ];

  it.each(cases)('%s', async (_name, record, reason, maxValueBytes) => {
    const outcome = await decodeOne(record, maxValueBytes);
    expect(outcome).toBeInstanceOf(RecordDecodeError);
    const error = outcome as RecordDecodeError;
    expect(error).toMatchObject({ topic: 'booking.created', partition: 2, offset: record.offset, reason });
    expect(error.message).toContain(`booking.created-2 offset ${record.offset}`);
    expect(error.message).toContain(reason);
  });

  it('none of them stops the loop: good records after bad ones still decode', async () => {
    const event: KafkaEvent = kafkaEvent([...cases.map(([, record]) => record), bookingRecord(99, 2)]);
    const [partition] = await decodeEvent(event, { registry, maxValueBytes: 10_000 });
    const outcomes = partition?.records ?? [];
    expect(outcomes.filter(isRecordDecodeError)).toHaveLength(cases.length - 1);
    expect(outcomes.at(-1)).toMatchObject({ offset: 99, tombstone: false });
  });

  it('rejects (does not report the record) when the registry cannot be reached', async () => {
    const unreachable: SchemaRegistry = {
      cached: () => undefined,
      resolve: () => Promise.reject(new Error('connect ETIMEDOUT glue.eu-west-1.amazonaws.com')),
    };
    await expect(decodeEvent(kafkaEvent([bookingRecord(1)]), { registry: unreachable })).rejects.toThrow(
      /ETIMEDOUT/,
    );
  });

  it('fetches a schema it has not cached, then decodes', async () => {
    const lazy: SchemaRegistry = { cached: () => undefined, resolve: (id) => registry.resolve(id) };
    const outcome = await decodeOne(bookingRecord(1));
    const [partition] = await decodeEvent(kafkaEvent([bookingRecord(1)]), { registry: lazy });
    expect(partition?.records[0]).toEqual(outcome);
  });
});

describe('records from an ESM with schema-registry integration (valueSchemaMetadata)', () => {
  const schema = registry.latest('booking.created');
  const body = schema.writerType.toBuffer(booking);

  it('EventRecordFormat=SOURCE: the Avro body without framing, schema id from the metadata', async () => {
    const record = bookingRecord(1, 0, {
      value: body.toString('base64'),
      valueSchemaMetadata: { dataFormat: 'AVRO', schemaId: String(schema.id) },
    });
    expect(await decodeOne(record)).toMatchObject({
      format: 'avro-plain',
      data: booking,
      schema: { id: schema.id },
    });
  });

  it('SOURCE with a Glue schema version UUID', async () => {
    const entry = registry.catalogEntry(schema.id as number);
    const record = bookingRecord(1, 0, {
      value: body.toString('base64'),
      valueSchemaMetadata: { dataFormat: 'AVRO', schemaId: entry.glueSchemaVersionId.toUpperCase() },
    });
    expect(await decodeOne(record)).toMatchObject({ format: 'avro-plain', data: booking });
  });

  it('EventRecordFormat=JSON: a JSON value with AVRO metadata', async () => {
    const record = bookingRecord(1, 0, {
      value: encodeJson(booking).toString('base64'),
      valueSchemaMetadata: { dataFormat: 'AVRO', schemaId: String(schema.id) },
    });
    expect(await decodeOne(record)).toMatchObject({ format: 'json', data: booking });
  });

  it('still reads a value that kept its Confluent framing', async () => {
    const record = bookingRecord(1, 0, {
      valueSchemaMetadata: { dataFormat: 'AVRO', schemaId: String(schema.id) },
    });
    expect(await decodeOne(record)).toMatchObject({ format: 'avro-confluent', data: booking });
  });

  it('an unknown metadata schema id is a typed error', async () => {
    const record = bookingRecord(5, 0, {
      value: body.toString('base64'),
      valueSchemaMetadata: { dataFormat: 'AVRO', schemaId: '31337' },
    });
    expect(await decodeOne(record)).toMatchObject({ reason: 'unknown-schema-id', offset: 5 });
  });
});
