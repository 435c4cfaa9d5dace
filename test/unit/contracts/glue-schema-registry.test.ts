import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EntityNotFoundException, type GetSchemaVersionCommand } from '@aws-sdk/client-glue';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { schemaCatalog } from '../../../schemas';
import { sampleData } from '../../../schemas/samples';
import { decodeValue, encodeGlue } from '../../../shared/contracts/avro-codec';
import { GlueSchemaRegistry } from '../../../shared/contracts/glue-schema-registry';
import { schemaRegistryFromEnv } from '../../../shared/contracts/registry-from-env';
import { parseAvroType } from '../../../shared/contracts/schema-registry';

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
