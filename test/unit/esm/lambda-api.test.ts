import { request as httpRequest } from 'node:http';
import {
  GetEventSourceMappingCommand,
  InvokeCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_PAYLOAD_BYTES } from '../../../local/esm/batcher';
import type { EsmEmulator } from '../../../local/esm/emulator';
import type { InvocationResult } from '../../../local/esm/invoker';
import type { EventSourceMapping, MappingState } from '../../../local/esm/mapping';
import { type LambdaApiServer, reportedState, startLambdaApi } from '../../../local/lambda-api/server';
import { testDefinition } from '../../support/esm-definition';

/**
 * Two mappings of one function and one of another, without a broker. Like the real mappings, a state change
 * completes after UpdateEventSourceMapping has answered.
 */
function fakeEmulator() {
  const mappings = [
    testDefinition('payment.failed', { functionKey: 'billing', functionName: 'svc-local-billing' }),
    testDefinition('booking.completed', { functionKey: 'billing', functionName: 'svc-local-billing' }),
    testDefinition('booking.created', {
      functionKey: 'notifications',
      functionName: 'svc-local-notifications',
    }),
  ].map((definition) => ({ definition, state: 'Enabled' as MappingState, lastModified: new Date(0) }));
  const emulator = {
    mappings,
    find: (uuid: string) => mappings.find((m) => m.definition.uuid === uuid),
    setEnabled: (uuid: string, enabled: boolean) => {
      const mapping = mappings.find((m) => m.definition.uuid === uuid);
      setTimeout(() => {
        if (mapping) mapping.state = enabled ? 'Enabled' : 'Disabled';
      }, 20);
      return mapping;
    },
    /** Echoes the event, or fails as a handler error does when it asks to. */
    invoke: async (functionName: string, event: { fail?: string }): Promise<InvocationResult | undefined> => {
      if (!mappings.some((m) => m.definition.functionName === functionName)) return undefined;
      if (event.fail)
        return { ok: false, error: new TypeError(event.fail), requestId: 'r-1', timedOut: false };
      return { ok: true, response: { functionName, event }, requestId: 'r-1' };
    },
  };
  return emulator as unknown as EsmEmulator & {
    mappings: Array<EventSourceMapping & { state: MappingState }>;
  };
}

describe('local Lambda API for event source mappings', () => {
  const emulator = fakeEmulator();
  let api: LambdaApiServer;
  let lambda: LambdaClient;
  beforeAll(async () => {
    api = await startLambdaApi(emulator);
    lambda = new LambdaClient({
      region: 'eu-west-1',
      endpoint: api.url,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  });
  afterAll(() => api.close());

  it('lists the mappings of a function by name or ARN', async () => {
    const byName = await lambda.send(
      new ListEventSourceMappingsCommand({ FunctionName: 'svc-local-billing' }),
    );
    expect(byName.EventSourceMappings?.map((m) => m.Topics?.[0])).toEqual([
      'payment.failed',
      'booking.completed',
    ]);
    const byArn = await lambda.send(
      new ListEventSourceMappingsCommand({
        FunctionName: 'arn:aws:lambda:eu-west-1:000000000000:function:svc-local-notifications',
      }),
    );
    expect(byArn.EventSourceMappings).toHaveLength(1);
    expect(byArn.EventSourceMappings?.[0]).toMatchObject({
      State: 'Enabled',
      BatchSize: 100,
      AmazonManagedKafkaEventSourceConfig: { ConsumerGroupId: 'booking.created-group' },
      FunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:svc-local-notifications',
    });
  });

  it('gets one mapping and disables it', async () => {
    const uuid = emulator.mappings[0]?.definition.uuid as string;
    const got = await lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }));
    expect(got.UUID).toBe(uuid);
    const updated = await lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: false }));
    expect(updated.State).toBe('Disabling');
  });

  it('answers an update with the transition it started and shows the settled state afterwards', async () => {
    const uuid = emulator.mappings[2]?.definition.uuid as string;
    const disabling = await lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: false }));
    expect(disabling.State).toBe('Disabling');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }))).State).toBe('Disabled');
    const enabling = await lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: true }));
    expect(enabling.State).toBe('Enabling');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect((await lambda.send(new GetEventSourceMappingCommand({ UUID: uuid }))).State).toBe('Enabled');
  });

  it('reports the transition only when the requested state differs from the settled one', () => {
    expect(reportedState('Enabled', false)).toBe('Disabling');
    expect(reportedState('Enabling', false)).toBe('Disabling');
    expect(reportedState('Disabled', false)).toBe('Disabled');
    expect(reportedState('Disabled', true)).toBe('Enabling');
    expect(reportedState('Disabling', true)).toBe('Enabling');
    expect(reportedState('Enabled', true)).toBe('Enabled');
  });

  it('invokes a function by name or ARN and returns what its handler returned', async () => {
    const byName = await lambda.send(
      new InvokeCommand({ FunctionName: 'svc-local-billing', Payload: JSON.stringify({ records: {} }) }),
    );
    expect(byName.FunctionError).toBeUndefined();
    expect(JSON.parse(Buffer.from(byName.Payload ?? []).toString())).toEqual({
      functionName: 'svc-local-billing',
      event: { records: {} },
    });
    const byArn = await lambda.send(
      new InvokeCommand({
        FunctionName: 'arn:aws:lambda:eu-west-1:000000000000:function:svc-local-notifications',
        Payload: '{}',
      }),
    );
    expect(JSON.parse(Buffer.from(byArn.Payload ?? []).toString()).functionName).toBe(
      'svc-local-notifications',
    );
  });

  it('answers a handler error as Lambda does: FunctionError Unhandled and the error as the payload', async () => {
    const failed = await lambda.send(
      new InvokeCommand({ FunctionName: 'svc-local-billing', Payload: JSON.stringify({ fail: 'boom' }) }),
    );
    expect(failed.StatusCode).toBe(200);
    expect(failed.FunctionError).toBe('Unhandled');
    expect(JSON.parse(Buffer.from(failed.Payload ?? []).toString())).toMatchObject({
      errorType: 'TypeError',
      errorMessage: 'boom',
    });
  });

  it('answers ResourceNotFoundException for an unknown function and refuses a body that is not JSON', async () => {
    await expect(
      lambda.send(new InvokeCommand({ FunctionName: 'svc-local-nothing', Payload: '{}' })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    await expect(
      lambda.send(new InvokeCommand({ FunctionName: 'svc-local-billing', Payload: '{not json' })),
    ).rejects.toMatchObject({ name: 'InvalidRequestContentException' });
  });

  it('refuses an invocation payload over 6 MB with 413 RequestTooLargeException', async () => {
    await expect(
      lambda.send(
        new InvokeCommand({
          FunctionName: 'svc-local-billing',
          Payload: JSON.stringify({ pad: 'x'.repeat(MAX_PAYLOAD_BYTES) }),
        }),
      ),
    ).rejects.toMatchObject({ name: 'RequestTooLargeException', $metadata: { httpStatusCode: 413 } });
  });

  it('refuses an update body over its limit without reading it all, even without a Content-Length', async () => {
    const uuid = emulator.mappings[1]?.definition.uuid as string;
    const status = await raw(api.url, {
      method: 'PUT',
      path: `/2015-03-31/event-source-mappings/${uuid}`,
      chunks: Array.from({ length: 40 }, () => 'x'.repeat(4096)),
    });
    expect(status.status).toBe(413);
    expect(status.body).toContain('smaller than');
  });

  it('answers only requests addressed to its own host and port (DNS rebinding)', async () => {
    const port = new URL(api.url).port;
    const path = '/2015-03-31/event-source-mappings';
    for (const host of ['evil.example', `evil.example:${port}`, `127.0.0.1:${Number(port) + 1}`, '']) {
      const answer = await raw(api.url, { method: 'GET', path, host });
      expect(answer.status, host).toBe(403);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `LOCALHOST:${port}`]) {
      expect((await raw(api.url, { method: 'GET', path, host })).status, host).toBe(200);
    }
  });

  it('answers ResourceNotFoundException for an unknown UUID', async () => {
    await expect(
      lambda.send(new GetEventSourceMappingCommand({ UUID: '00000000-0000-0000-0000-000000000000' })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

/** One HTTP request with a chosen Host header, or a chunked body without a Content-Length. */
function raw(
  base: string,
  options: { method: string; path: string; host?: string; chunks?: string[] },
): Promise<{ status: number; body: string }> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: options.method,
        path: options.path,
        setHost: options.host === undefined,
        headers: options.host === undefined ? {} : { host: options.host },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      },
    );
    // The server closes the connection after refusing a body; the rest of it may not be written.
    req.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE' && error.code !== 'ECONNRESET') reject(error);
    });
    for (const chunk of options.chunks ?? []) req.write(chunk);
    req.end();
  });
}
