// serverless/consumers.cjs declares every function; an entry it cannot read right fails `serverless print` and
// `package` with the function named, instead of deploying a function without its setting.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const { functionOf, functions } = createRequire(import.meta.url)('../../../serverless/consumers.cjs') as {
  functionOf(functionKey: string, entry: Record<string, unknown>): Record<string, unknown>;
  functions: Record<string, { handler: string; role: string; events: unknown[] }>;
};

const billingLike = { description: 'd', grants: {}, topics: ['booking.completed'], batchSize: 100 };

describe('the consumers map', () => {
  it('derives handler, role, service name and one msk event per topic', () => {
    expect(functionOf('ride-receipts', billingLike)).toMatchObject({
      handler: 'functions/ride-receipts/handler.handler',
      role: 'RideReceiptsExecutionRole',
      environment: { POWERTOOLS_SERVICE_NAME: 'ride-receipts' },
      events: [
        {
          msk: {
            topic: 'booking.completed',
            batchSize: 100,
            maximumBatchingWindow: 0,
            consumerGroupId: `${'$'}{self:service}-${'$'}{sls:stage}-ride-receipts-booking-completed`,
          },
        },
      ],
    });
    expect(Object.keys(functions).length).toBeGreaterThanOrEqual(6);
  });

  it.each([
    ['a misspelt key', { ...billingLike, memorysize: 256 }, /unknown memorysize/],
    ['neither topics nor a schedule', { description: 'd', grants: {} }, /needs topics or a schedule/],
    ['both', { ...billingLike, schedule: 'rate(5 minutes)' }, /needs topics or a schedule/],
    [
      'topics without a batch size',
      { description: 'd', grants: {}, topics: ['booking.completed'] },
      /batchSize/,
    ],
  ])('refuses %s, naming the function', (_what, entry, message) => {
    expect(() => functionOf('ride-receipts', entry)).toThrow(message);
    expect(() => functionOf('ride-receipts', entry)).toThrow(/function "ride-receipts"/);
  });
});
