import {
  GetEventSourceMappingCommand,
  LambdaClient,
  ListEventSourceMappingsCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EsmEmulator } from '../../../local/esm/emulator';
import type { EventSourceMapping, MappingState } from '../../../local/esm/mapping';
import { type LambdaApiServer, startLambdaApi } from '../../../local/lambda-api/server';
import { testDefinition } from '../../e2e/kafka-helpers';

/** Two mappings of one function and one of another, without a broker. */
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
      if (mapping) mapping.state = enabled ? 'Enabling' : 'Disabling';
      return mapping;
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

  it('answers ResourceNotFoundException for an unknown UUID', async () => {
    await expect(
      lambda.send(new GetEventSourceMappingCommand({ UUID: '00000000-0000-0000-0000-000000000000' })),
    ).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});
