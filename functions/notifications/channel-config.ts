import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ConfigurationError, intFromEnv } from '../../shared/config';
import { awsChannels } from './aws-channels';
import { OutboxChannel } from './outbox-channel';
import type { NotificationChannel } from './ports';
import type { ChannelKind } from './rules';

/** Channel calls in flight per kind (CHANNEL_CONCURRENCY): see below. */
export const DEFAULT_CHANNEL_CONCURRENCY = 20;

/**
 * CHANNEL_CONCURRENCY (20): channel calls in flight per kind (SNS PublishBatch calls of 10, SES emails, outbox puts):
 * a partition's notifications of a full batch (200, one per record and kind) go out in one round of 20 PublishBatch
 * calls, which is what bounds a send attempt (DEFAULT_ATTEMPT_TIMEOUT_MS) within the lease; a deploy test keeps the
 * batch size within SNS_BATCH x this.
 * CHANNEL=outbox (messages land in the notifications table, `dev` shows them) or aws (SNS for on-call
 * paging and customer push, SES for reviewer email). Default: aws when a channel's variable is set (a deployed
 * stage), outbox otherwise (local runs). aws serves the kinds configured (CHANNEL_ENV: ONCALL_TOPIC_ARN for
 * PAGER, CUSTOMER_TOPIC_ARN for PUSH, EMAIL_FROM with REVIEWERS_EMAIL for EMAIL) and needs at least one.
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
  const concurrency = intFromEnv('CHANNEL_CONCURRENCY', DEFAULT_CHANNEL_CONCURRENCY);
  if (kind === 'outbox') return new OutboxChannel(documents, notificationsTable, Date.now, concurrency);
  if (kind !== 'aws') throw new ConfigurationError(`CHANNEL must be outbox or aws, got "${env.CHANNEL}"`);
  const configured = channelsConfigured(env);
  if (configured.length === 0)
    throw new ConfigurationError(
      `CHANNEL=aws needs a channel: ${Object.values(CHANNEL_ENV)
        .map((names) => names.join(' with '))
        .join(', or ')}`,
    );
  return awsChannels({
    ...(configured.includes('PAGER') && { oncallTopicArn: env.ONCALL_TOPIC_ARN }),
    ...(configured.includes('PUSH') && { customerTopicArn: env.CUSTOMER_TOPIC_ARN }),
    ...(configured.includes('EMAIL') && {
      email: { from: env.EMAIL_FROM as string, reviewers: env.REVIEWERS_EMAIL as string },
    }),
    concurrency,
  });
}

/** What configures each channel kind in a deployed function's environment. */
export const CHANNEL_ENV: Record<ChannelKind, readonly string[]> = {
  PAGER: ['ONCALL_TOPIC_ARN'],
  PUSH: ['CUSTOMER_TOPIC_ARN'],
  EMAIL: ['EMAIL_FROM', 'REVIEWERS_EMAIL'],
};

/** The channel kinds whose variables are all set; one set without the others of its kind is an error. */
export function channelsConfigured(env: NodeJS.ProcessEnv): ChannelKind[] {
  const kinds: ChannelKind[] = [];
  for (const [kind, names] of Object.entries(CHANNEL_ENV) as Array<[ChannelKind, readonly string[]]>) {
    const missing = names.filter((name) => !env[name]);
    if (missing.length === 0) kinds.push(kind);
    else if (missing.length < names.length)
      throw new ConfigurationError(
        `${kind} needs ${names.join(' and ')}: ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set`,
      );
  }
  return kinds;
}

export function channelAdapterName(env: NodeJS.ProcessEnv): string {
  const deployed = Object.values(CHANNEL_ENV).some((names) => names.some((name) => env[name]));
  return (env.CHANNEL || (deployed ? 'aws' : 'outbox')).toLowerCase();
}
