import { AsyncLocalStorage } from 'node:async_hooks';
import type { Context } from 'aws-lambda';
import { dynamoDocumentClient } from '../../shared/aws-clients';
import { requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { createKafkaHandler, type KafkaBatchResponse, type KafkaEvent } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { circuitMetricName } from './circuit-breaker';
import { DynamoDbExplanationRecords, DynamoDbReviewTasks } from './dynamodb-stores';
import { createExplainer, explainerSettingsFromEnv } from './explainer-config';
import { createIncidentBatchProcessor, DEFAULT_EXPLAIN_CONCURRENCY, incidentPolicy } from './incident-batch';
import { kafkaGenAiEventPublisher } from './kafka-genai-publisher';
import { confidenceThresholdFromEnv } from './review-policy';

// Wiring only: configuration, adapters, then decode -> the batch (read, explain, write, one produce) -> report.
const env = requireEnv('INCIDENTS_TABLE', 'IDEMPOTENCY_TABLE', 'KAFKA_BROKERS');
const { logger, metrics } = createObservability('incident-explanation');
const documents = dynamoDocumentClient();
const registry = schemaRegistryFromEnv();
const explainerSettings = explainerSettingsFromEnv();
const publisher = kafkaGenAiEventPublisher(process.env);
const explainConcurrency = Number(process.env.EXPLAIN_CONCURRENCY ?? DEFAULT_EXPLAIN_CONCURRENCY);
if (!Number.isInteger(explainConcurrency) || explainConcurrency < 1)
  throw new Error(`EXPLAIN_CONCURRENCY must be a positive integer, got ${process.env.EXPLAIN_CONCURRENCY}`);

// The explainer is shared, but it falls back while one record is explained: its warning carries that record's
// keys (explanations run concurrently, so the keys travel with the async context, not in a variable).
const recordKeys = new AsyncLocalStorage<Record<string, unknown>>();

const processor = createIncidentBatchProcessor({
  explainer: createExplainer(
    explainerSettings,
    (reason) => {
      logger.warn('Model failed; the rules answered (RULES_FALLBACK)', { ...recordKeys.getStore(), reason });
      metrics.addMetric('ExplainerFallbacks', 'Count', 1);
    },
    {
      onStateChange: (change) => {
        logger.warn('Bedrock circuit state changed', { ...change });
        metrics.addMetric(circuitMetricName(change), 'Count', 1);
      },
    },
  ),
  reviews: new DynamoDbReviewTasks(documents, env.INCIDENTS_TABLE),
  // Outcomes are stored with their views; those of earlier releases are read from their idempotency table.
  records: new DynamoDbExplanationRecords(documents, env.INCIDENTS_TABLE, env.IDEMPOTENCY_TABLE),
  publisher,
  confidenceThreshold: confidenceThresholdFromEnv(),
  explainConcurrency,
  withEvent: (event, explain) =>
    recordKeys.run(
      {
        topic: event.topic,
        partition: event.position?.partition,
        offset: event.position?.offset,
        eventId: event.id,
        eventType: event.type,
        ...(event.correlationId ? { correlationId: event.correlationId } : {}),
      },
      explain,
    ),
});
logger.info('Incident explanation ready', {
  explainer: explainerSettings.kind,
  modelId: explainerSettings.modelId,
  explainConcurrency,
});

const handleBatch = createKafkaHandler({
  logger,
  metrics,
  registry,
  // The whole batch at once; a review resolution still follows the incident's earlier records (per incident
  // in offset order, incident-batch.ts).
  policy: incidentPolicy(processor, (result) => {
    logger.info('Batch processed', {
      explained: result.explained,
      replayed: result.replayed,
      reviewsOpened: result.reviewsOpened,
      reviewsResolved: result.reviewsResolved,
      failed: result.failures.length,
    });
    if (result.reviewsOpened > 0) metrics.addMetric('ReviewsOpened', 'Count', result.reviewsOpened);
    if (result.reviewsResolved > 0) metrics.addMetric('ReviewsResolved', 'Count', result.reviewsResolved);
  }),
});
export const handler = async (event: KafkaEvent, context: Context): Promise<KafkaBatchResponse> => {
  const response = await handleBatch(event, context);
  // `serverless invoke local` (which sets IS_LOCAL) waits for open sockets before it exits; Lambda keeps the
  // connection for the next invocation.
  if (process.env.IS_LOCAL === 'true') await publisher.close();
  return response;
};
