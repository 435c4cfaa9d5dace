// serverless/esm-extensions.cjs turns custom.esm and each msk event into EventSourceMapping properties. The
// batching window is written here because osls drops a window of 0, which would leave Kafka's 500 ms default.
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

type Extensions = Record<string, { Properties: Record<string, unknown> }>;
const buildExtensions = createRequire(import.meta.url)(
  '../../../serverless/esm-extensions.cjs',
) as (context: { resolveConfigurationProperty: (path: string[]) => Promise<unknown> }) => Promise<Extensions>;

const arn = 'arn:aws:kafka:eu-west-1:000000000000:cluster/mobility-events-test/1';

function configWith(msk: Record<string, unknown>, defaults: Record<string, unknown> = {}, topics = 1) {
  const events = Array.from({ length: topics }, (_, i) => ({
    msk: {
      arn,
      topic: i === 0 ? 'booking.completed' : `topic.${i}`,
      consumerGroupId: `g${i}`,
      batchSize: 100,
      ...msk,
    },
  }));
  const config: Record<string, unknown> = {
    functions: { billing: { events } },
    custom: {
      esm: {
        defaults: { maximumRetryAttempts: 3, onFailure: 's3', reportBatchItemFailures: true, ...defaults },
      },
    },
  };
  return {
    resolveConfigurationProperty: async ([first, second]: string[]) => {
      const top = config[first as string] as Record<string, unknown>;
      return second === undefined ? top : top?.[second];
    },
  };
}

const provisioned = { provisionedPollerConfig: { minimumPollers: 1, maximumPollers: 6 } };

describe('esm-extensions', () => {
  it('writes a window of 0 explicitly, with the error handling of custom.esm', async () => {
    const extensions = await buildExtensions(configWith({ maximumBatchingWindow: 0, ...provisioned }));
    expect(extensions).toEqual({
      BillingEventSourceMappingMSKMobilityeventstestBookingcompleted: {
        Properties: {
          MaximumBatchingWindowInSeconds: 0,
          ProvisionedPollerConfig: { MinimumPollers: 1, MaximumPollers: 6 },
          MaximumRetryAttempts: 3,
          MaximumRecordAgeInSeconds: undefined,
          BisectBatchOnFunctionError: undefined,
          FunctionResponseTypes: ['ReportBatchItemFailures'],
          DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] } } },
        },
      },
    });
  });

  it.each([
    [undefined, 'got undefined'],
    [0.5, 'got 0.5'],
    [301, 'got 301'],
  ])('rejects maximumBatchingWindow %s, naming the event', async (window, detail) => {
    await expect(
      buildExtensions(configWith({ maximumBatchingWindow: window, ...provisioned })),
    ).rejects.toThrow(
      `functions.billing.events.0.msk (topic booking.completed): maximumBatchingWindow is required, whole seconds from 0 to 300 (${detail})`,
    );
  });

  it('puts every ESM in the poller group of custom.esm, within the API limits of a group', async () => {
    const grouped = await buildExtensions(
      configWith(
        { maximumBatchingWindow: 0, ...provisioned },
        { pollerGroupName: 'mobility-events-test' },
        3,
      ),
    );
    expect(Object.values(grouped)).toHaveLength(3);
    for (const extension of Object.values(grouped)) {
      expect(extension.Properties.ProvisionedPollerConfig).toEqual({
        MinimumPollers: 1,
        MaximumPollers: 6,
        PollerGroupName: 'mobility-events-test',
      });
    }
    await expect(
      buildExtensions(
        configWith(
          { maximumBatchingWindow: 0, provisionedPollerConfig: { minimumPollers: 1, maximumPollers: 900 } },
          { pollerGroupName: 'mobility-events-test' },
          3,
        ),
      ),
    ).rejects.toThrow(
      'custom.esm pollerGroupName "mobility-events-test": at most 100 ESMs and 2000 maximum pollers per group (now 3 ESMs, 2700 pollers)',
    );
  });

  it('requires provisioned pollers for retries, partial batch responses and destinations', async () => {
    await expect(buildExtensions(configWith({ maximumBatchingWindow: 0 }))).rejects.toThrow(
      /provisionedPollerConfig is required/,
    );
  });
});
