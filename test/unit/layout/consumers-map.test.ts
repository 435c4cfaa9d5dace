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
    [
      'a batch size per topic that misses a topic and names one it does not consume',
      {
        ...billingLike,
        topics: ['booking.completed', 'payment.succeeded'],
        batchSize: { 'booking.completed': 10, 'payment.failed': 10 },
      },
      /batchSize per topic must name its topics exactly \(missing payment.succeeded, not consumed: payment.failed\)/,
    ],
    [
      "a batch size in esm, where it would override the entry's",
      { ...billingLike, esm: { batchSize: 10 } },
      /batchSize belongs in the entry/,
    ],
    [
      'a batch size per topic of 0',
      { ...billingLike, batchSize: { 'booking.completed': 0 } },
      /batchSize is required: a whole number, or one per topic/,
    ],
    [
      'a batch size per topic that is not a whole number',
      { ...billingLike, batchSize: { 'booking.completed': 1.5 } },
      /batchSize is required: a whole number, or one per topic/,
    ],
  ])('refuses %s, naming the function', (_what, entry, message) => {
    expect(() => functionOf('ride-receipts', entry)).toThrow(message);
    expect(() => functionOf('ride-receipts', entry)).toThrow(/function "ride-receipts"/);
  });

  it('gives each ESM the batch size the function names for its topic', () => {
    const events = functionOf('ride-receipts', {
      ...billingLike,
      topics: ['booking.completed', 'payment.succeeded'],
      batchSize: { 'booking.completed': 10, 'payment.succeeded': 200 },
    }).events as Array<{ msk: { topic: string; batchSize: number } }>;
    expect(events.map(({ msk }) => [msk.topic, msk.batchSize])).toEqual([
      ['booking.completed', 10],
      ['payment.succeeded', 200],
    ]);
  });

  it("runs another function's code where `code` names it, with its own name, role and consumer groups", () => {
    expect(functionOf('ride-receipts', { ...billingLike, code: 'billing' })).toMatchObject({
      handler: 'functions/billing/handler.handler',
      role: 'RideReceiptsExecutionRole',
      environment: { POWERTOOLS_SERVICE_NAME: 'ride-receipts' },
      events: [
        {
          msk: {
            consumerGroupId: `${'$'}{self:service}-${'$'}{sls:stage}-ride-receipts-booking-completed`,
          },
        },
      ],
    });
  });

  it.each([
    ['its own name', 'ride-receipts'],
    ['no function of the map', 'ride-receipt'],
    ['a function without topics', 'audit-digest'],
    ["a function that runs another's code itself", 'oncall-paging'],
  ])('refuses a `code` that names %s', (_what, code) => {
    expect(() => functionOf('ride-receipts', { ...billingLike, code })).toThrow(
      /function "ride-receipts": code must name another function of this map that consumes topics with its own code/,
    );
  });
});
