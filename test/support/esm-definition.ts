import type { EsmDefinition } from '../../local/esm/config';
import { esmUuid } from '../../local/esm/uuid';

/** An ESM definition for a test topic with AWS defaults; override what the test is about. */
export function testDefinition(topic: string, overrides: Partial<EsmDefinition> = {}): EsmDefinition {
  const consumerGroupId = overrides.consumerGroupId ?? `${topic}-group`;
  return {
    uuid: esmUuid('e2e', topic, consumerGroupId),
    logicalId: 'E2eEventSourceMapping',
    functionKey: 'e2e',
    functionName: `e2e-${topic}`,
    handler: 'inline',
    timeoutSeconds: 10,
    memorySize: 128,
    topic,
    consumerGroupId,
    eventSourceArn: 'arn:aws:kafka:eu-west-1:000000000000:cluster/e2e/0000',
    batchSize: 100,
    maximumBatchingWindowMs: 500,
    enabled: true,
    startingPosition: 'TRIM_HORIZON',
    filterPatterns: [],
    maximumRetryAttempts: -1,
    maximumRecordAgeInSeconds: -1,
    bisectBatchOnFunctionError: false,
    reportBatchItemFailures: false,
    maximumConcurrency: 6,
    ...overrides,
  };
}
