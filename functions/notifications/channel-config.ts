import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigurationError } from '../../shared/config';
import type { AwsChannelSettings } from './aws-channels';
import { OutboxChannel } from './outbox-channel';
import type { NotificationChannel } from './ports';

/**
 * CHANNEL=outbox (messages land in the notifications table, `dev` shows them) or aws (SNS for on-call
 * paging and customer push, SES for reviewer email). Default: aws when ONCALL_TOPIC_ARN is set (a deployed
 * stage), outbox otherwise (local runs). aws needs ONCALL_TOPIC_ARN,
 * CUSTOMER_TOPIC_ARN, EMAIL_FROM and REVIEWERS_EMAIL.
 */
export function createChannel(
  env: NodeJS.ProcessEnv,
  documents: DynamoDBDocumentClient,
  notificationsTable: string,
): NotificationChannel {
  const kind = channelAdapterName(env);
  if (kind === 'outbox') return new OutboxChannel(documents, notificationsTable);
  if (kind !== 'aws') throw new ConfigurationError(`CHANNEL must be outbox or aws, got "${env.CHANNEL}"`);
  const names = ['ONCALL_TOPIC_ARN', 'CUSTOMER_TOPIC_ARN', 'EMAIL_FROM', 'REVIEWERS_EMAIL'] as const;
  const missing = names.filter((name) => !env[name]);
  if (missing.length > 0) throw new ConfigurationError(`CHANNEL=aws needs ${missing.join(', ')}`);
  return lazyAwsChannels({
    oncallTopicArn: env.ONCALL_TOPIC_ARN as string,
    customerTopicArn: env.CUSTOMER_TOPIC_ARN as string,
    emailFrom: env.EMAIL_FROM as string,
    reviewersEmail: env.REVIEWERS_EMAIL as string,
  });
}

/**
 * The SNS and SES channels, with their clients imported only when CHANNEL=aws (the outbox configuration does
 * not load them). The import starts now, during the cold start; a failed import fails that send (retried by
 * sendNotifications) and is tried again.
 */
function lazyAwsChannels(settings: AwsChannelSettings): NotificationChannel {
  const load = () => import('./aws-channels').then(({ awsChannels }) => awsChannels(settings));
  let channels = load();
  // Awaited on the first send; until then a failure must not be an unhandled rejection.
  channels.catch(() => {});
  return {
    async send(message) {
      const ready = await channels.catch((error: unknown) => {
        channels = load();
        channels.catch(() => {});
        throw error;
      });
      return ready.send(message);
    },
  };
}

export function channelAdapterName(env: NodeJS.ProcessEnv): string {
  return (env.CHANNEL || (env.ONCALL_TOPIC_ARN ? 'aws' : 'outbox')).toLowerCase();
}
