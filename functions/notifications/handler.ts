import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { Context } from 'aws-lambda';
import { dynamoClient, dynamoDocumentClient } from '../../shared/aws-clients';
import { ConfigurationError, intFromEnv, requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import {
  type KafkaBatchResponse,
  type KafkaEvent,
  processKafkaEvent,
  publishBatchMetrics,
} from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { channelAdapterName, createChannel } from './channel-config';
import { DynamoDbNotificationLog } from './dynamodb-notification-log';
import { createNotificationEventProcessor } from './notification-events';

// Wiring only: configuration, adapters, then decode -> process each record idempotently -> report failures.
const env = requireEnv('NOTIFICATIONS_TABLE', 'IDEMPOTENCY_TABLE');
const { logger, metrics } = createObservability('notifications');
const documents = dynamoDocumentClient();
const registry = schemaRegistryFromEnv();

const processor = createNotificationEventProcessor({
  channel: createChannel(process.env, documents, env.NOTIFICATIONS_TABLE),
  log: new DynamoDbNotificationLog(documents, env.NOTIFICATIONS_TABLE),
  retry: {
    attempts: intFromEnv('CHANNEL_ATTEMPTS', 3),
    baseDelayMs: intFromEnv('CHANNEL_RETRY_BASE_MS', 200),
  },
  leaseMs: intFromEnv('NOTIFICATION_LEASE_MS', 30_000),
  // The shared client, so the idempotency reads and writes are traced like the function's own.
  persistenceStore: new DynamoDBPersistenceLayer({
    tableName: env.IDEMPOTENCY_TABLE,
    awsSdkV3Client: dynamoClient(),
  }),
  keyPrefix: 'notifications',
});
logger.info('Notifications ready', { channel: channelAdapterName(process.env) });

export const handler = async (event: KafkaEvent, context: Context): Promise<KafkaBatchResponse> => {
  logger.addContext(context);
  processor.registerLambdaContext(context);
  const response = await processKafkaEvent(
    event,
    { registry, logger, isFatal: (error) => error instanceof ConfigurationError },
    async (record) => {
      if (record.tombstone) return;
      const result = await processor.process({
        topic: record.topic,
        id: record.cloudEvent.id,
        time: record.cloudEvent.time,
        data: record.data,
      });
      for (const notification of result.notifications) {
        metrics.addMetric(
          notification.outcome === 'SENT' ? 'NotificationsSent' : 'NotificationsSkipped',
          'Count',
          1,
        );
      }
    },
  );
  publishBatchMetrics(metrics, event, response);
  metrics.publishStoredMetrics();
  return response;
};
