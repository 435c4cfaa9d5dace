import { describe, expect, it } from 'vitest';
import {
  esmDefinitionsFrom,
  mskEventLogicalId,
  type ResolvedServerlessConfig,
} from '../../../local/esm/config';

const arn = 'arn:aws:kafka:eu-west-1:000000000000:cluster/mobility-events-local/0000';

function config(extension: Record<string, unknown>): ResolvedServerlessConfig {
  return {
    service: 'svc',
    provider: { stage: 'local', timeout: 60, memorySize: 512 },
    functions: {
      billing: {
        handler: 'functions/billing/handler.handler',
        name: 'svc-local-billing',
        events: [{ msk: { arn, topic: 'payment.failed', consumerGroupId: 'g1', batchSize: 100 } }],
      },
    },
    resources: {
      Resources: {
        FailedRecordsBucket: {
          Type: 'AWS::S3::Bucket',
          // biome-ignore lint/suspicious/noTemplateCurlyInString: a CloudFormation Fn::Sub placeholder
          Properties: { BucketName: { 'Fn::Sub': 'svc-local-failed-records-${AWS::AccountId}' } },
        },
      },
      extensions: { [mskEventLogicalId('billing', arn, 'payment.failed')]: { Properties: extension } },
    },
  };
}

describe('esmDefinitionsFrom', () => {
  it('merges the msk event with its resources.extensions properties', () => {
    const [esm] = esmDefinitionsFrom(
      config({
        MaximumRetryAttempts: 3,
        MaximumRecordAgeInSeconds: 21600,
        BisectBatchOnFunctionError: true,
        FunctionResponseTypes: ['ReportBatchItemFailures'],
        DestinationConfig: { OnFailure: { Destination: { 'Fn::GetAtt': ['FailedRecordsBucket', 'Arn'] } } },
      }),
    );
    expect(esm).toMatchObject({
      logicalId: 'BillingEventSourceMappingMSKMobilityeventslocalPaymentfailed',
      functionName: 'svc-local-billing',
      timeoutSeconds: 60,
      batchSize: 100,
      maximumBatchingWindowMs: 500,
      startingPosition: 'TRIM_HORIZON',
      maximumRetryAttempts: 3,
      bisectBatchOnFunctionError: true,
      reportBatchItemFailures: true,
      destination: { type: 's3', bucket: 'svc-local-failed-records-000000000000' },
    });
  });

  it('caps infinite retries at 10 when a destination is set, and defaults to infinite otherwise', () => {
    const destination = { DestinationConfig: { OnFailure: { Destination: 'kafka://dead-letters' } } };
    expect(esmDefinitionsFrom(config(destination))[0]?.maximumRetryAttempts).toBe(10);
    expect(esmDefinitionsFrom(config({}))[0]).toMatchObject({
      maximumRetryAttempts: -1,
      reportBatchItemFailures: false,
    });
  });

  it('refuses what Lambda refuses: a record age outside -1 or 60..604800, a Kafka destination that is the source topic', () => {
    for (const age of [0, 59, 604_801]) {
      expect(() => esmDefinitionsFrom(config({ MaximumRecordAgeInSeconds: age }))).toThrow(
        `billing (topic payment.failed): MaximumRecordAgeInSeconds must be -1 or 60..604800, got ${age}`,
      );
    }
    expect(esmDefinitionsFrom(config({ MaximumRecordAgeInSeconds: 60 }))[0]?.maximumRecordAgeInSeconds).toBe(
      60,
    );
    const loop = { DestinationConfig: { OnFailure: { Destination: 'kafka://payment.failed' } } };
    expect(() => esmDefinitionsFrom(config(loop))).toThrow(
      'billing (topic payment.failed): the on-failure destination is the source topic; Lambda refuses that loop',
    );
  });

  it('keeps no more batches in flight than maximumPollers x 5, nor than the function has environments', () => {
    const withPollers = config({});
    const msk = withPollers.functions?.billing?.events?.[0]?.msk;
    if (!msk) throw new Error('fixture has no msk event');
    msk.provisionedPollerConfig = { maximumPollers: 6 };
    expect(esmDefinitionsFrom(withPollers)[0]?.maximumConcurrency).toBe(30);
    expect(esmDefinitionsFrom(withPollers, { instances: 2 })[0]?.maximumConcurrency).toBe(2);
    expect(esmDefinitionsFrom(withPollers, { instances: 64 })[0]?.maximumConcurrency).toBe(30);
    expect(
      esmDefinitionsFrom(withPollers, { instances: 2, maximumConcurrency: 8 })[0]?.maximumConcurrency,
    ).toBe(8);
  });
});
