import type { Context } from 'aws-lambda';
import { dynamoDocumentClient } from '../../shared/aws-clients';
import { ConfigurationError, intFromEnv, requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { batchMetrics, decodeEvent, type KafkaBatchResponse, type KafkaEvent } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { channelAdapterName, createChannel } from './channel-config';
import { DynamoDbNotificationLog } from './dynamodb-notification-log';
import { notifyBatch } from './notification-batch';
import type { SendNotificationsDependencies } from './send-notifications';

// Wiring only: configuration, adapters, then decode -> per partition: lease, read the log, send, record.
const env = requireEnv('NOTIFICATIONS_TABLE');
const { logger, metrics } = createObservability('notifications');
const documents = dynamoDocumentClient();
const registry = schemaRegistryFromEnv();
/** Time kept back from the invocation's remaining time when waiting for a lapsing lease. */
const leaseWaitMarginMs = intFromEnv('NOTIFICATION_LEASE_WAIT_MARGIN_MS', 10_000);

const dependencies: SendNotificationsDependencies = {
  channel: createChannel(process.env, documents, env.NOTIFICATIONS_TABLE),
  log: new DynamoDbNotificationLog(documents, env.NOTIFICATIONS_TABLE),
  retry: {
    attempts: intFromEnv('CHANNEL_ATTEMPTS', 3),
    baseDelayMs: intFromEnv('CHANNEL_RETRY_BASE_MS', 200),
  },
  leaseMs: intFromEnv('NOTIFICATION_LEASE_MS', 30_000),
};
logger.info('Notifications ready', { channel: channelAdapterName(process.env) });

export const handler = async (event: KafkaEvent, context: Context): Promise<KafkaBatchResponse> => {
  logger.addContext(context);
  try {
    const outcome = await notifyBatch(
      await decodeEvent(event, { registry }),
      {
        ...dependencies,
        holder: () => context.awsRequestId,
        claimWaitBudgetMs: () => context.getRemainingTimeInMillis() - leaseWaitMarginMs,
      },
      logger,
      (error) => error instanceof ConfigurationError,
    );
    metrics.addMetric('NotificationsSent', 'Count', outcome.sent);
    metrics.addMetric('NotificationsSkipped', 'Count', outcome.alreadySent);
    for (const metric of batchMetrics(event, outcome.response))
      metrics.addMetric(metric.name, metric.unit, metric.value);
    return outcome.response;
  } finally {
    metrics.publishStoredMetrics();
  }
};
