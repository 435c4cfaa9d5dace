import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigurationError, intFromEnv } from '../../shared/config';
import { awsChannels } from './aws-channels';
import { OutboxChannel } from './outbox-channel';
import type { NotificationChannel } from './ports';

/**
 * CHANNEL_CONCURRENCY (10): channel calls in flight per kind (SNS PublishBatch calls of 10, SES emails, outbox puts):
 * a 100-notification batch goes out in one round of 10 PublishBatch calls.
 * CHANNEL=outbox (messages land in the notifications table, `dev` shows them) or aws (SNS for on-call
 * paging and customer push, SES for reviewer email). Default: aws when ONCALL_TOPIC_ARN is set (a deployed
 * stage), outbox otherwise (local runs). aws needs ONCALL_TOPIC_ARN,
 * CUSTOMER_TOPIC_ARN, EMAIL_FROM and REVIEWERS_EMAIL.
 *
 * The SNS and SES clients are imported statically: esbuild tree-shakes a static import down to the client and
 * the one command used, but not a module behind import(), so a lazy import put all 167 SNS and SES commands
 * into the bundle (bench/RESULTS.md "Bundles"). The outbox configuration never constructs them.
 */
export function createChannel(
  env: NodeJS.ProcessEnv,
  documents: DynamoDBDocumentClient,
  notificationsTable: string,
): NotificationChannel {
  const kind = channelAdapterName(env);
  const concurrency = intFromEnv('CHANNEL_CONCURRENCY', 10);
  if (kind === 'outbox') return new OutboxChannel(documents, notificationsTable, Date.now, concurrency);
  if (kind !== 'aws') throw new ConfigurationError(`CHANNEL must be outbox or aws, got "${env.CHANNEL}"`);
  const names = ['ONCALL_TOPIC_ARN', 'CUSTOMER_TOPIC_ARN', 'EMAIL_FROM', 'REVIEWERS_EMAIL'] as const;
  const missing = names.filter((name) => !env[name]);
  if (missing.length > 0) throw new ConfigurationError(`CHANNEL=aws needs ${missing.join(', ')}`);
  return awsChannels({
    oncallTopicArn: env.ONCALL_TOPIC_ARN as string,
    customerTopicArn: env.CUSTOMER_TOPIC_ARN as string,
    emailFrom: env.EMAIL_FROM as string,
    reviewersEmail: env.REVIEWERS_EMAIL as string,
    concurrency,
  });
}

export function channelAdapterName(env: NodeJS.ProcessEnv): string {
  return (env.CHANNEL || (env.ONCALL_TOPIC_ARN ? 'aws' : 'outbox')).toLowerCase();
}
