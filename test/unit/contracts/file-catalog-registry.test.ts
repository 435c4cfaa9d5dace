// The file catalog parses each schema on first use (avsc compiles code per type, so parsing all of them was
// most of a cold start) and exactly once: every lookup of one schema returns the same parsed object.
import { describe, expect, it } from 'vitest';
import { schemaCatalog } from '../../../schemas';
import { FileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';

const bookingCreated = schemaCatalog.filter((entry) => entry.type === 'booking.created');
const v1 = bookingCreated.find((entry) => entry.version === 1);
const v2 = bookingCreated.find((entry) => entry.version === 2);

describe('FileCatalogSchemaRegistry', () => {
  it('parses nothing until a schema is asked for, so a broken schema only fails its own lookups', () => {
    const broken = { ...schemaCatalog[0], id: 999_999, type: 'broken.type', schema: { type: 'record' } };
    const registry = new FileCatalogSchemaRegistry([...schemaCatalog, broken as never]);
    expect(registry.latest('booking.created').version).toBe(2);
    expect(() => registry.cached(999_999)).toThrow();
  });

  it('returns one parsed schema per id, whether asked by id, Glue UUID, type or version', () => {
    if (!v1 || !v2) throw new Error('the catalog must hold booking.created v1 and v2');
    const registry = new FileCatalogSchemaRegistry();
    const byId = registry.cached(v2.id);
    expect(byId).toBeDefined();
    expect(registry.cached(v2.id)).toBe(byId);
    expect(registry.cached(v2.glueSchemaVersionId.toUpperCase())).toBe(byId);
    expect(registry.latest('booking.created')).toBe(byId);
    expect(registry.find('booking.created')).toBe(byId);
    expect(registry.version('booking.created', 2)).toBe(byId);
    // v1 is read as v2 (the newest), through a resolver built once, sharing v2's parsed type.
    const old = registry.cached(v1.id);
    expect(old?.resolver).toBeDefined();
    expect(old?.readerType).toBe(byId?.writerType);
    expect(registry.version('booking.created', 1)).toBe(old);
  });

  it('answers unknown ids, types and versions as before', async () => {
    const registry = new FileCatalogSchemaRegistry();
    expect(registry.cached(123_456_789)).toBeUndefined();
    expect(registry.cached('00000000-0000-0000-0000-000000000000')).toBeUndefined();
    await expect(registry.resolve(123_456_789)).resolves.toBeUndefined();
    expect(registry.find('no.such.type')).toBeUndefined();
    expect(() => registry.latest('no.such.type')).toThrow('No schema for event type "no.such.type"');
    expect(() => registry.version('booking.created', 9)).toThrow('No schema booking.created v9');
  });
});
