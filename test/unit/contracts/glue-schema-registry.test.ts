import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  EntityNotFoundException,
  type GetSchemaVersionCommand,
  type GetSchemaVersionCommandOutput,
} from '@aws-sdk/client-glue';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { schemaCatalog } from '../../../schemas';
import { sampleData } from '../../../schemas/samples';
import { decodeValue, encodeConfluent, encodeGlue } from '../../../shared/contracts/avro-codec';
import { cloudEventHeaders } from '../../../shared/contracts/cloudevents';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import { GlueSchemaRegistry } from '../../../shared/contracts/glue-schema-registry';
import { schemaRegistryFromEnv } from '../../../shared/contracts/registry-from-env';
import { parseAvroType, UnusableSchemaError } from '../../../shared/contracts/schema-registry';
import { decodeEvent, kafkaEvent, kafkaEventRecord, RecordDecodeError } from '../../../shared/msk';

const v1 = schemaCatalog.find((entry) => entry.type === 'booking.created' && entry.version === 1);
const versionId = 'a1b2c3d4-0000-4000-8000-00000000abcd';

function fakeGlue(behaviour: 'ok' | 'not-found' | 'throttled') {
  const calls: string[] = [];
  return {
    calls,
    send: async (command: GetSchemaVersionCommand) => {
      calls.push(command.input.SchemaVersionId ?? '');
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (behaviour === 'not-found') {
        throw new EntityNotFoundException({ message: 'Schema version is not found.', $metadata: {} });
      }
      if (behaviour === 'throttled')
        throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      return {
        $metadata: {},
        SchemaVersionId: versionId,
        SchemaDefinition: JSON.stringify(v1?.schema),
        DataFormat: 'AVRO' as const,
        SchemaArn: 'arn:aws:glue:eu-west-1:123456789012:schema/mobility/booking.created',
        VersionNumber: 1,
      };
    },
  };
}

describe('GlueSchemaRegistry', () => {
  it('fetches a schema version once and decodes with it, read as the newest catalog version', async () => {
    const glue = fakeGlue('ok');
    const registry = new GlueSchemaRegistry({ glue });
    const { channel: _c, promoCode: _p, ...data } = sampleData['booking.created'](5);
    const value = encodeGlue(versionId, parseAvroType(v1?.schema), data);
    const results = await Promise.all([decodeValue(value, registry), decodeValue(value, registry)]);
    await decodeValue(value, registry);
    expect(glue.calls).toEqual([versionId]);
    expect(results[0]).toMatchObject({ ok: true, data: { ...data, channel: 'APP', promoCode: null } });
    expect(registry.cached(versionId)?.eventType).toBe('booking.created');
  });

  it('answers numeric (Confluent) ids from the local catalog without calling Glue', async () => {
    const glue = fakeGlue('ok');
    expect((await new GlueSchemaRegistry({ glue }).resolve(1))?.eventType).toBe('booking.created');
    expect(glue.calls).toEqual([]);
  });

  it('treats EntityNotFoundException as an unknown schema id', async () => {
    const registry = new GlueSchemaRegistry({ glue: fakeGlue('not-found') });
    expect(await registry.resolve(versionId)).toBeUndefined();
  });

  it('rethrows other Glue errors (the record is not at fault) and retries on the next call', async () => {
    const glue = fakeGlue('throttled');
    const registry = new GlueSchemaRegistry({ glue });
    await expect(registry.resolve(versionId)).rejects.toThrow('Rate exceeded');
    await expect(registry.resolve(versionId)).rejects.toThrow('Rate exceeded');
    expect(glue.calls).toHaveLength(2);
  });
});

describe('a Glue schema version that cannot be used', () => {
  const glueAnswering = (answer: Partial<GetSchemaVersionCommandOutput>) => ({
    send: async (): Promise<GetSchemaVersionCommandOutput> => ({
      $metadata: {},
      SchemaVersionId: versionId,
      SchemaArn: 'arn:aws:glue:eu-west-1:123456789012:schema/mobility/booking.created',
      VersionNumber: 9,
      ...answer,
    }),
  });
  // bookingId as an int: no resolution to the catalog's reader schema, where it is a string.
  const catalogSchema = v1?.schema as { fields: Array<{ name: string }> };
  const incompatible = {
    ...catalogSchema,
    fields: catalogSchema.fields.map((field) =>
      field.name === 'bookingId' ? { ...field, type: 'int' } : field,
    ),
  };

  it('is refused as unusable, naming the version and why: not Avro, unparsable, or not readable as the catalog type', async () => {
    const cases: Array<[Partial<GetSchemaVersionCommandOutput>, RegExp]> = [
      [{ DataFormat: 'JSON', SchemaDefinition: '{}' }, /is JSON, not AVRO/],
      [{ DataFormat: 'AVRO', SchemaDefinition: '{"type": "record", "name":' }, /cannot be read: .*JSON/],
      [
        { DataFormat: 'AVRO', SchemaDefinition: JSON.stringify(incompatible) },
        /\(booking.created\) cannot be read/,
      ],
    ];
    for (const [answer, message] of cases) {
      const registry = new GlueSchemaRegistry({ glue: glueAnswering(answer) });
      const refusal = registry.resolve(versionId);
      await expect(refusal).rejects.toThrow(UnusableSchemaError);
      await expect(refusal).rejects.toThrow(message);
    }
  });

  it("fails only the records written with it; the batch's other records decode", async () => {
    const registry = new GlueSchemaRegistry({
      glue: glueAnswering({ DataFormat: 'AVRO', SchemaDefinition: JSON.stringify(incompatible) }),
    });
    const data = sampleData['booking.created'](5);
    const record = (partition: number, offset: number, value: Buffer) =>
      kafkaEventRecord({
        topic: 'booking.created',
        partition,
        offset,
        timestamp: 0,
        key: data.bookingId,
        value,
        headers: cloudEventHeaders({
          id: `e-${partition}-${offset}`,
          type: 'booking.created',
          source: 'urn:test',
          specversion: '1.0',
          time: '2026-11-23T10:00:00.000Z',
          subject: data.bookingId,
          datacontenttype: 'application/avro',
        }),
      });
    const good = encodeConfluent(fileCatalogSchemaRegistry.latest('booking.created'), data);
    const unusable = encodeGlue(versionId, parseAvroType(incompatible), { ...data, bookingId: 7 });
    const partitions = await decodeEvent(kafkaEvent([record(0, 0, unusable), record(1, 0, good)]), {
      registry,
    });
    const outcomes = partitions.flatMap((partition) => partition.records);
    expect(outcomes[0]).toBeInstanceOf(RecordDecodeError);
    expect(outcomes[0]).toMatchObject({ reason: 'unusable-schema', partition: 0, offset: 0 });
    expect(outcomes[1]).toMatchObject({ data: { bookingId: data.bookingId } });
  });
});

describe('schemaRegistryFromEnv with SCHEMA_REGISTRY=glue', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('answers catalog ids without Glue, then loads the Glue client for an unknown schema version id', async () => {
    // A stand-in for the Glue endpoint (AWS JSON 1.1): the real GlueClient is loaded on demand and calls it.
    const targets: string[] = [];
    const server = createServer((request, response) => {
      targets.push(String(request.headers['x-amz-target']));
      request.resume().on('end', () => {
        response.setHeader('content-type', 'application/x-amz-json-1.1');
        response.end(
          JSON.stringify({
            SchemaVersionId: versionId,
            SchemaDefinition: JSON.stringify(v1?.schema),
            DataFormat: 'AVRO',
            SchemaArn: 'arn:aws:glue:eu-west-1:123456789012:schema/mobility/booking.created',
            VersionNumber: 1,
          }),
        );
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    try {
      vi.stubEnv('AWS_ENDPOINT_URL_GLUE', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      vi.stubEnv('AWS_REGION', 'eu-west-1');
      vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
      vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
      const registry = schemaRegistryFromEnv({ SCHEMA_REGISTRY: 'glue' });
      expect(registry.cached(1)?.eventType).toBe('booking.created');
      expect((await registry.resolve(1))?.eventType).toBe('booking.created');
      expect(registry.cached(versionId)).toBeUndefined();
      expect(targets).toEqual([]);

      const { channel: _c, promoCode: _p, ...data } = sampleData['booking.created'](5);
      const decoded = await decodeValue(encodeGlue(versionId, parseAvroType(v1?.schema), data), registry);
      expect(decoded).toMatchObject({ ok: true, data: { ...data, channel: 'APP', promoCode: null } });
      expect(targets).toEqual(['AWSGlue.GetSchemaVersion']);
      expect(registry.cached(versionId)?.eventType).toBe('booking.created');
    } finally {
      server.close();
    }
  });

  it('rejects an unknown registry kind', () => {
    expect(() => schemaRegistryFromEnv({ SCHEMA_REGISTRY: 'confluent' })).toThrow(/SCHEMA_REGISTRY/);
  });
});
