import { randomUUID } from 'node:crypto';
import type { Context } from 'aws-lambda';
import { dynamoDocumentClient } from '../../shared/aws-clients';
import { intFromEnv, requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { createKafkaHandler, type KafkaBatchResponse, type KafkaEvent } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { channelAdapterName, createChannel } from './channel-config';
import { DynamoDbNotificationLog } from './dynamodb-notification-log';
import { notificationsPolicy } from './notification-batch';
import { checkedLeaseMs, DEFAULT_LEASE_MS } from './send-notifications';

// Wiring only: configuration, adapters, then decode -> per partition: lease, read the log, send, record.
const env = requireEnv('NOTIFICATIONS_TABLE');
const { logger, metrics } = createObservability('notifications');
const documents = dynamoDocumentClient();
/** Time kept back from the invocation's remaining time when waiting for a lapsing lease. */
const leaseWaitMarginMs = intFromEnv('NOTIFICATION_LEASE_WAIT_MARGIN_MS', 10_000);
/** The invocation being handled: its request id holds the leases, its remaining time bounds lease waits. */
let invocation: Context | undefined;

const kafkaHandler = createKafkaHandler({
  logger,
  metrics,
  registry: schemaRegistryFromEnv(),
  policy: notificationsPolicy(
    {
      channel: createChannel(process.env, documents, env.NOTIFICATIONS_TABLE),
      log: new DynamoDbNotificationLog(documents, env.NOTIFICATIONS_TABLE),
      retry: {
        attempts: intFromEnv('CHANNEL_ATTEMPTS', 3),
        baseDelayMs: intFromEnv('CHANNEL_RETRY_BASE_MS', 200),
      },
      leaseMs: checkedLeaseMs(intFromEnv('NOTIFICATION_LEASE_MS', DEFAULT_LEASE_MS)),
      holder: () => invocation?.awsRequestId ?? randomUUID(),
      claimWaitBudgetMs: () => (invocation ? invocation.getRemainingTimeInMillis() - leaseWaitMarginMs : 0),
    },
    (result) => {
      metrics.addMetric('NotificationsSent', 'Count', result.sent);
      metrics.addMetric('NotificationsSkipped', 'Count', result.alreadySent);
    },
  ),
});
logger.info('Notifications ready', { channel: channelAdapterName(process.env) });

export const handler = (event: KafkaEvent, context?: Context): Promise<KafkaBatchResponse> => {
  invocation = context;
  return kafkaHandler(event, context);
};
