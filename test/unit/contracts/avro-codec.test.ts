import { describe, expect, it } from 'vitest';
import { sampleData } from '../../../schemas/samples';
import {
  decodeValue,
  EncodeError,
  encodeConfluent,
  encodeGlue,
  encodeJson,
} from '../../../shared/contracts/avro-codec';
import { fileCatalogSchemaRegistry as registry } from '../../../shared/contracts/file-catalog-registry';
import { confluentHeader, readFraming, uuidFromBytes, uuidToBytes } from '../../../shared/contracts/framing';

const incident = sampleData['incident.detected'](2);
const incidentSchema = registry.latest('incident.detected');

describe('framing', () => {
  it('reads the Confluent header: magic 0 and a 4-byte big-endian id', () => {
    const framed = Buffer.concat([confluentHeader(0x01020304), Buffer.from([1, 2])]);
    expect([...framed.subarray(0, 5)]).toEqual([0, 1, 2, 3, 4]);
    expect(readFraming(framed)).toEqual({ kind: 'confluent', schemaId: 0x01020304, bodyOffset: 5 });
  });

  it('reads the Glue header: version 3, compression, 16-byte schema version UUID', () => {
    const uuid = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
    const framed = encodeGlue(uuid, incidentSchema.writerType, incident, { compress: true });
    expect(framed[0]).toBe(3);
    expect(framed[1]).toBe(5);
    expect(readFraming(framed)).toEqual({
      kind: 'glue',
      schemaVersionId: uuid,
      compressed: true,
      bodyOffset: 18,
    });
    expect(uuidFromBytes(uuidToBytes(uuid), 0)).toBe(uuid);
  });

  it('names a wrong first byte', () => {
    expect(readFraming(Buffer.from([0x07, 1, 2]))).toMatchObject({
      kind: 'invalid',
      reason: 'wrong-magic-byte',
    });
    expect(readFraming(Buffer.from([0, 0, 1]))).toMatchObject({
      kind: 'invalid',
      reason: 'truncated-header',
    });
  });
});

describe('decodeValue', () => {
  it('round-trips Confluent-framed Avro', async () => {
    const result = await decodeValue(encodeConfluent(incidentSchema, incident), registry);
    expect(result).toMatchObject({ ok: true, format: 'avro-confluent', data: incident });
  });

  it.each([false, true])('round-trips Glue-framed Avro (zlib compressed: %s)', async (compress) => {
    const v1 = registry.version('booking.created', 1);
    const { channel: _c, promoCode: _p, ...v1Data } = sampleData['booking.created'](0);
    const glueId = '00000000-0000-4000-8000-000000000001';
    const result = await decodeValue(encodeGlue(glueId, v1.writerType, v1Data, { compress }), registry);
    // Read as the newest version (v2): the defaults fill the fields v1 lacks.
    expect(result).toMatchObject({ ok: true, format: 'avro-glue', data: { ...v1Data, channel: 'APP' } });
  });

  it('refuses a JSON value that no schema-registry metadata names a schema for', async () => {
    const result = await decodeValue(encodeJson({ bookingId: 'b-1' }), registry);
    expect(result).toMatchObject({ ok: false, reason: 'json-without-schema' });
  });

  it('checks a JSON value against the schema the metadata names, and reads it as the newest version', async () => {
    const v1 = registry.version('booking.created', 1);
    const { channel: _c, promoCode: _p, ...v1Data } = sampleData['booking.created'](0);
    expect(await decodeValue(encodeJson(v1Data), registry, v1.id)).toMatchObject({
      ok: true,
      format: 'json',
      data: { ...v1Data, channel: 'APP', promoCode: null },
      schema: { id: v1.id },
    });
    expect(await decodeValue(encodeJson({ bookingId: 'b-1' }), registry, v1.id)).toMatchObject({
      ok: false,
      reason: 'invalid-json',
    });
  });

  it('reports an unknown schema id', async () => {
    const framed = Buffer.concat([confluentHeader(9999), Buffer.from([2, 0x61])]);
    expect(await decodeValue(framed, registry)).toMatchObject({ ok: false, reason: 'unknown-schema-id' });
  });

  it('reports truncated Avro', async () => {
    const framed = encodeConfluent(incidentSchema, incident);
    const result = await decodeValue(framed.subarray(0, framed.length - 10), registry);
    expect(result).toMatchObject({ ok: false, reason: 'truncated-avro' });
  });

  it('reports trailing bytes after the record', async () => {
    const framed = Buffer.concat([encodeConfluent(incidentSchema, incident), Buffer.from([1, 2, 3])]);
    expect(await decodeValue(framed, registry)).toMatchObject({ ok: false, reason: 'invalid-avro' });
  });

  it('reports JSON that is not an object', async () => {
    expect(await decodeValue(Buffer.from('"text"'), registry, 1)).toMatchObject({ ok: false });
    expect(await decodeValue(Buffer.from('[1,2]'), registry, 1)).toMatchObject({ ok: false });
  });

  it('reports a wrong magic byte', async () => {
    expect(await decodeValue(Buffer.from([0x42, 0, 0, 0, 1]), registry)).toMatchObject({
      ok: false,
      reason: 'wrong-magic-byte',
    });
  });

  it('reports a corrupt zlib body', async () => {
    const framed = encodeGlue('00000000-0000-4000-8000-000000000007', incidentSchema.writerType, incident, {
      compress: true,
    });
    framed[20] = (framed[20] as number) ^ 0xff;
    expect(await decodeValue(framed, registry)).toMatchObject({ ok: false, reason: 'invalid-avro' });
  });
});

describe('encodeConfluent', () => {
  it('names every field that does not match the schema', () => {
    expect(() =>
      encodeConfluent(incidentSchema, { ...incident, severity: 'SEVERE', detectedAt: 'now' }),
    ).toThrow(EncodeError);
    expect(() => encodeConfluent(incidentSchema, { ...incident, severity: 'SEVERE' })).toThrow(
      /severity="SEVERE"/,
    );
  });
});
