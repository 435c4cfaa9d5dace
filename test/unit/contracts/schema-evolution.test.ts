import { readdirSync, readFileSync } from 'node:fs';
import type avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { schemaCatalog } from '../../../schemas';
import { buildSchemaBundle, bundleFile, schemasDir } from '../../../schemas/bundle';
import { sampleData } from '../../../schemas/samples';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import { parseAvroType } from '../../../shared/contracts/schema-registry';

const designEventTypes = [
  'booking.created',
  'booking.completed',
  'booking.cancelled',
  'payment.succeeded',
  'payment.failed',
  'incident.detected',
  'genai.request',
  'genai.response',
  'genai.hitl.requested',
  'genai.hitl.resolved',
  'vehicle.status.changed',
];

/** Every consecutive (older, newer) version pair of every event type. */
function consecutivePairs() {
  const byType = new Map<string, typeof schemaCatalog>();
  for (const entry of schemaCatalog) byType.set(entry.type, [...(byType.get(entry.type) ?? []), entry]);
  return [...byType.values()].flatMap((entries) => {
    const sorted = [...entries].sort((a, b) => a.version - b.version);
    return sorted.slice(1).map((newer, i) => ({ older: sorted[i] as (typeof sorted)[number], newer }));
  });
}

/**
 * Backward compatible = a consumer on the newer schema reads data written with the older one. avsc's
 * createResolver throws when it cannot (a new field without default, a changed type, a removed enum symbol).
 */
function assertReadable(reader: avro.Type, writer: avro.Type) {
  reader.createResolver(writer);
}

describe('schema catalog', () => {
  it('has a schema for every event type in DESIGN.md, and only those', () => {
    expect(new Set(schemaCatalog.map((entry) => entry.type))).toEqual(new Set(designEventTypes));
  });

  it('lists every .avsc file exactly once, with unique ids and Glue version ids', () => {
    const files = readdirSync(schemasDir).filter((file) => file.endsWith('.avsc'));
    expect(schemaCatalog.map((entry) => entry.file).sort()).toEqual(files.sort());
    expect(new Set(schemaCatalog.map((entry) => entry.id)).size).toBe(schemaCatalog.length);
    expect(new Set(schemaCatalog.map((entry) => entry.glueSchemaVersionId)).size).toBe(schemaCatalog.length);
    for (const entry of schemaCatalog) expect(entry.file).toBe(`${entry.type}.v${entry.version}.avsc`);
  });

  it('keeps the generated bundle in step with catalog.json and the .avsc files (npm run events:generate)', () => {
    expect(readFileSync(bundleFile, 'utf8')).toBe(buildSchemaBundle());
  });

  it('documents every schema and gives it a namespace', () => {
    for (const entry of schemaCatalog) {
      const schema = entry.schema as { namespace?: string; doc?: string };
      expect(schema.namespace, entry.file).toMatch(/^com\.mobility\.events\./);
      expect(schema.doc, entry.file).toBeTruthy();
    }
  });

  it('accepts the sample data of every event type with its newest schema', () => {
    for (const type of designEventTypes) {
      const schema = fileCatalogSchemaRegistry.latest(type);
      const data = sampleData[type as keyof typeof sampleData](3);
      expect(schema.writerType.isValid(data), type).toBe(true);
    }
  });
});

describe('schema evolution', () => {
  const pairs = consecutivePairs();

  it('has at least one evolved type (booking.created v1 -> v2)', () => {
    expect(pairs.map(({ older, newer }) => `${older.type} v${older.version}->v${newer.version}`)).toContain(
      'booking.created v1->v2',
    );
  });

  it.each(pairs.map((pair) => [`${pair.older.file} -> ${pair.newer.file}`, pair] as const))(
    'every consecutive version pair is backward compatible: %s',
    (_name, { older, newer }) => {
      const writer = parseAvroType(older.schema);
      const reader = parseAvroType(newer.schema);
      assertReadable(reader, writer);
      // And the data really reads: v1 bytes come out as v2 with the defaults filled in.
      const sample = sampleData[older.type as keyof typeof sampleData](4);
      const oldShape = writer.clone(
        Object.fromEntries(
          (writer as avro.types.RecordType).fields.map((field) => [
            field.name,
            (sample as never)[field.name],
          ]),
        ),
      );
      const read = reader.fromBuffer(writer.toBuffer(oldShape), reader.createResolver(writer));
      expect(reader.isValid(read)).toBe(true);
    },
  );

  it('reads booking.created v1 data as v2 with the new fields defaulted', () => {
    const v1 = fileCatalogSchemaRegistry.version('booking.created', 1);
    const { channel: _channel, promoCode: _promoCode, ...v1Data } = sampleData['booking.created'](1);
    const bytes = v1.writerType.toBuffer(v1Data);
    const read = v1.readerType.fromBuffer(bytes, v1.resolver);
    expect(read).toMatchObject({ ...v1Data, channel: 'APP', promoCode: null });
  });

  it('catches an incompatible change: a new field without a default', () => {
    const v1 = schemaCatalog.find((entry) => entry.type === 'booking.created' && entry.version === 1);
    const schema = structuredClone(v1?.schema) as { fields: unknown[] };
    schema.fields.push({ name: 'loyaltyTier', type: 'string' });
    expect(() => assertReadable(parseAvroType(schema), parseAvroType(v1?.schema))).toThrow(/loyaltyTier/);
  });

  it('catches an incompatible change: a field type changed', () => {
    const v1 = schemaCatalog.find((entry) => entry.type === 'booking.completed');
    const schema = structuredClone(v1?.schema) as { fields: { name: string; type: unknown }[] };
    const distance = schema.fields.find((field) => field.name === 'distanceMeters');
    if (distance) distance.type = 'string';
    expect(() => assertReadable(parseAvroType(schema), parseAvroType(v1?.schema))).toThrow();
  });

  it('catches an incompatible change: an enum symbol removed', () => {
    const v1 = schemaCatalog.find((entry) => entry.type === 'incident.detected');
    const schema = structuredClone(v1?.schema) as {
      fields: { name: string; type: { symbols?: string[] } }[];
    };
    const severity = schema.fields.find((field) => field.name === 'severity');
    if (severity?.type.symbols) severity.type.symbols = ['LOW', 'MEDIUM', 'HIGH'];
    expect(() => assertReadable(parseAvroType(schema), parseAvroType(v1?.schema))).toThrow();
  });
});
