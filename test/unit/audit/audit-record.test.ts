import { describe, expect, it } from 'vitest';
import {
  bodyHashOf,
  buildAuditRecord,
  chainHash,
  contentHashOf,
  GENESIS_HASH,
  sha256,
  UnstorableRecordError,
} from '../../../functions/audit-append/audit-record';
import { canonicalJson, toJsonValue } from '../../../functions/audit-append/canonical-json';
import { textArray } from '../../../functions/audit-append/pg-binary-array';
import { wireColumns } from '../../../functions/audit-append/postgres-audit-event-store';
import { cloudEventRecord, decodeJsonCloudEvent } from './support/msk';

const build = (options: Parameters<typeof cloudEventRecord>[0]) => {
  const record = cloudEventRecord(options);
  return buildAuditRecord(record, decodeJsonCloudEvent(record));
};

describe('canonical JSON', () => {
  it('sorts keys at every level, leaves out undefined and keeps array order', () => {
    expect(canonicalJson({ b: 1, a: { d: [3, { z: null, y: 'x' }], c: undefined } })).toBe(
      '{"a":{"d":[3,{"y":"x","z":null}]},"b":1}',
    );
  });

  it('is stable across a jsonb-like round trip (parse of a re-ordered, re-spaced text)', () => {
    const value = { amount: 1e21, small: 1e-7, text: 'é\u2028"', nested: { b: [1.5, -0, true], a: null } };
    const roundTripped = JSON.parse(
      '{"nested": {"a": null, "b": [1.5, 0, true]}, "text": "é\\u2028\\"", "small": 0.0000001, "amount": 1000000000000000000000}',
    );
    expect(canonicalJson(roundTripped)).toBe(canonicalJson(value));
  });

  it('writes objects of the same class or shape with their own keys, whatever came before', () => {
    class Point {
      constructor(
        readonly y: number,
        readonly x: number,
      ) {}
    }
    const shapes = [
      { b: 1, a: 2 },
      { a: 2, b: 1 },
      { b: 1, a: 2, c: 3 },
      { b: 1 },
      { b: 1, z: { b: 1, a: [{ d: 1, c: 2 }] } },
      new Point(1, 2),
      Object.assign(new Point(3, 4), { a: 0 }),
      Object.assign(Object.create(null) as object, { b: 1, a: 2 }),
      ...Array.from({ length: 12 }, (_, i) => ({ [`k${i}`]: i, a: i })),
    ];
    const expected = [
      '{"a":2,"b":1}',
      '{"a":2,"b":1}',
      '{"a":2,"b":1,"c":3}',
      '{"b":1}',
      '{"b":1,"z":{"a":[{"c":2,"d":1}],"b":1}}',
      '{"x":2,"y":1}',
      '{"a":0,"x":4,"y":3}',
      '{"a":2,"b":1}',
      ...Array.from({ length: 12 }, (_, i) => `{"a":${i},"k${i}":${i}}`),
    ];
    // Twice over, in both orders: a remembered shape must never be used for an object with other keys.
    for (const list of [shapes, [...shapes].reverse(), shapes]) {
      const texts = list.map((shape) => canonicalJson(shape));
      expect(texts).toEqual(list === shapes ? expected : [...expected].reverse());
    }
  });

  it('refuses what JSON cannot hold', () => {
    expect(() => canonicalJson(Number.NaN)).toThrow(TypeError);
    expect(() => canonicalJson(() => 1)).toThrow(TypeError);
  });

  it('writes bytes, bigints and dates as toJsonValue stores them', () => {
    const value = {
      b: new Uint8Array([1, 2, 3]),
      n: 12n,
      d: new Date(1),
      nested: [{ f: () => 1, x: undefined }],
    };
    expect(canonicalJson(value)).toBe(canonicalJson(toJsonValue(value)));
  });

  it('turns bytes, bigints and dates into JSON values', () => {
    expect(toJsonValue({ b: Buffer.from([1, 2]), n: 2n ** 70n, d: new Date(0), u: undefined })).toEqual({
      b: 'AQI=',
      n: '1180591620717411303424',
      d: '1970-01-01T00:00:00.000Z',
    });
  });
});

describe('buildAuditRecord', () => {
  it('keeps the bytes of key, value and headers, and CloudEvents attributes under lower-case names', () => {
    const record = build({ offset: 3, correlationId: 'c-1', extraHeaders: { bin: [0, 200] } });
    expect(record.ce).toMatchObject({ id: 'genai.request-0-3', correlationid: 'c-1', specversion: '1.0' });
    expect(record.headers).toContainEqual(['ce_id', 'genai.request-0-3']);
    expect(record.headers).toContainEqual(['bin', { base64: Buffer.from([0, 200]).toString('base64') }]);
    expect(record.key?.toString()).toBe('incident-3');
    expect(JSON.parse(record.rawValue?.toString() ?? '')).toEqual({ prompt: 'explain 3', tokens: 3 });
  });

  it('identifies the body without trace context or Kafka coordinates, but hashes all content', () => {
    const a = build({
      topic: 'genai.request',
      offset: 1,
      id: 'e-1',
      time: '2026-11-01T00:00:00Z',
      subject: 's',
      data: { x: 1 },
    });
    const b = build({
      topic: 'genai.request',
      offset: 99,
      id: 'e-1',
      time: '2026-11-01T00:00:00Z',
      subject: 's',
      data: { x: 1 },
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    expect(a.bodyHash.equals(b.bodyHash)).toBe(true);
    expect(a.contentHash.equals(b.contentHash)).toBe(false);
    const c = build({ offset: 1, id: 'e-1', time: '2026-11-01T00:00:00Z', subject: 's', data: { x: 2 } });
    expect(a.bodyHash.equals(c.bodyHash)).toBe(false);
  });

  it('hashes exactly the canonical JSON of the documented objects', () => {
    const record = build({
      offset: 5,
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    });
    const { traceparent: _traceparent, ...ceWithoutTrace } = record.ce;
    const key = record.key?.toString('base64') ?? null;
    expect(record.bodyHash).toEqual(
      sha256(Buffer.from(canonicalJson({ v: 1, key, ce: ceWithoutTrace, data: record.data }))),
    );
    const content = {
      v: 1,
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
      timestamp: record.timestamp,
      key,
      headers: record.headers,
      ce: record.ce,
      data: record.data,
      rawValueSha256: sha256(record.rawValue as Buffer).toString('hex'),
    };
    expect(record.contentHash).toEqual(sha256(Buffer.from(canonicalJson(content))));
    expect(bodyHashOf(record)).toEqual(record.bodyHash);
  });

  it('recomputes the same content hash from the stored form', () => {
    const record = build({ offset: 5, data: { nested: { list: [1, 'two', null] }, amount: 12.5 } });
    const stored = JSON.parse(JSON.stringify({ headers: record.headers, ce: record.ce, data: record.data }));
    expect(contentHashOf({ ...record, ...stored }).equals(record.contentHash)).toBe(true);
  });

  it.each([
    ['an empty type', { type: '' }, /"type"/],
    ['an impossible date', { time: '2026-02-30T10:00:00Z' }, /RFC 3339/],
    ['a time without offset', { time: '2026-02-03T10:00:00' }, /RFC 3339/],
    [
      'year 0000 (Date.UTC read it as 1900; PostgreSQL refuses it, 22008)',
      { time: '0000-01-01T00:00:00Z' },
      /RFC 3339/,
    ],
    ['NUL in data', { data: { text: 'a\u0000b' } }, /U\+0000/],
  ])('refuses a record with %s (poison)', (_name, options, message) => {
    expect(() => build({ offset: 1, ...options })).toThrow(UnstorableRecordError);
    expect(() => build({ offset: 1, ...options })).toThrow(message);
  });
});

describe('wireColumns', () => {
  it('sends the hashed canonical texts and the exact bytes, one array per column', () => {
    const record = build({ offset: 9, correlationId: 'c-9', data: { z: 1, a: [true, null] } });
    const columns = wireColumns([record, build({ offset: 10, rawValue: 'null' })]);
    expect(columns).toHaveLength(11);
    const [topics, , , , keys, headers, ce, data, raw, bodyHashes] = columns as Buffer[];
    expect(topics).toEqual(textArray(['genai.request', 'genai.request']));
    expect(keys?.includes(record.key as Buffer)).toBe(true);
    expect(raw?.includes(record.rawValue as Buffer)).toBe(true);
    expect(bodyHashes?.includes(record.bodyHash)).toBe(true);
    expect(headers?.includes(Buffer.from(JSON.stringify(record.headers)))).toBe(true);
    expect(ce?.includes(Buffer.from(canonicalJson(record.ce)))).toBe(true);
    // Data null is a NULL element (the column stays SQL NULL, as before).
    expect(data).toEqual(textArray(['{"a":[true,null],"z":1}', null], 'jsonb'));
  });
});

describe('chainHash', () => {
  it('is sha256(prev || content || int64be(seq) || int64be(recorded µs)), as audit_append computes it', () => {
    const content = sha256(Buffer.from('content'));
    const tail = Buffer.alloc(16);
    tail.writeBigInt64BE(1n, 0);
    tail.writeBigInt64BE(1_700_000_000_123_456n, 8);
    expect(chainHash(GENESIS_HASH, content, 1n, 1_700_000_000_123_456n)).toEqual(
      sha256(Buffer.concat([GENESIS_HASH, content, tail])),
    );
  });
});
