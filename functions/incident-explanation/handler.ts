import { AsyncLocalStorage } from 'node:async_hooks';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { Context } from 'aws-lambda';
import { dynamoClient, dynamoDocumentClient } from '../../shared/aws-clients';
import { requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import {
  createKafkaHandler,
  type KafkaBatchResponse,
  type KafkaEvent,
  type RecordLogger,
} from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { circuitMetricName } from './circuit-breaker';
import { DynamoDbIncidentViewStore, DynamoDbReviewTasks } from './dynamodb-stores';
import { createExplainer, explainerSettingsFromEnv } from './explainer-config';
import { createIncidentEventProcessor } from './incident-events';
import { kafkaGenAiEventPublisher } from './kafka-genai-publisher';
import { confidenceThresholdFromEnv } from './review-policy';

// Wiring only: configuration, adapters, then decode -> process each record idempotently -> report failures.
const env = requireEnv('INCIDENTS_TABLE', 'IDEMPOTENCY_TABLE', 'KAFKA_BROKERS');
const { logger, metrics } = createObservability('incident-explanation');
const documents = dynamoDocumentClient();
const registry = schemaRegistryFromEnv();
const explainerSettings = explainerSettingsFromEnv();
const publisher = kafkaGenAiEventPublisher(process.env);

// The explainer is shared, but it falls back while one record is processed: its warning goes to that record's
// logger (partitions run concurrently, so the logger travels with the async context, not in a variable).
const recordLog = new AsyncLocalStorage<RecordLogger>();

const processor = createIncidentEventProcessor({
  explainer: createExplainer(
    explainerSettings,
    (reason) => {
      (recordLog.getStore() ?? logger).warn('Model failed; the rules answered (RULES_FALLBACK)', { reason });
      metrics.addMetric('ExplainerFallbacks', 'Count', 1);
    },
    {
      onStateChange: (change) => {
        logger.warn('Bedrock circuit state changed', { ...change });
        metrics.addMetric(circuitMetricName(change), 'Count', 1);
      },
    },
  ),
  views: new DynamoDbIncidentViewStore(documents, env.INCIDENTS_TABLE),
  reviews: new DynamoDbReviewTasks(documents, env.INCIDENTS_TABLE),
  publisher,
  // The shared client, so the idempotency reads and writes are traced like the function's own.
  persistenceStore: new DynamoDBPersistenceLayer({
    tableName: env.IDEMPOTENCY_TABLE,
    awsSdkV3Client: dynamoClient(),
  }),
  keyPrefix: 'incident-explanation',
  confidenceThreshold: confidenceThresholdFromEnv(),
});
logger.info('Incident explanation ready', {
  explainer: explainerSettings.kind,
  modelId: explainerSettings.modelId,
});

const handleBatch = createKafkaHandler({
  logger,
  metrics,
  registry,
  idempotency: processor,
  // In order, one record at a time: a review resolution must follow the incident it resolves.
  policy: {
    kind: 'stop',
    handle: async (record, log) => {
      if (record.tombstone) return;
      const result = await recordLog.run(log, () =>
        processor.process({
          topic: record.topic,
          id: record.cloudEvent.id,
          time: record.cloudEvent.time,
          ...(record.cloudEvent.correlationId ? { correlationId: record.cloudEvent.correlationId } : {}),
          ...(record.cloudEvent.traceparent ? { traceparent: record.cloudEvent.traceparent } : {}),
          data: record.data,
        }),
      );
      log.info('Record processed', result);
      if (result.kind === 'explained' && result.reviewOpened) metrics.addMetric('ReviewsOpened', 'Count', 1);
      if (result.kind === 'review-resolved') metrics.addMetric('ReviewsResolved', 'Count', 1);
    },
  },
});

export const handler = async (event: KafkaEvent, context: Context): Promise<KafkaBatchResponse> => {
  const response = await handleBatch(event, context);
  // `serverless invoke local` (which sets IS_LOCAL) waits for open sockets before it exits; Lambda keeps the
  // connection for the next invocation.
  if (process.env.IS_LOCAL === 'true') await publisher.close();
  return response;
};
