import { SESv2Client, SendEmailCommand } from '@aws-sdk/client-sesv2';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { traced } from '../../shared/observability';
import {
  type DeliveryReceipt,
  type NotificationChannel,
  type NotificationMessage,
  PermanentChannelError,
} from './ports';
import type { ChannelKind } from './rules';

/** Client errors SNS/SES will answer the same way on every retry. */
const permanentErrorNames = new Set([
  'InvalidParameterException',
  'InvalidParameterValueException',
  'NotFoundException',
  'AuthorizationErrorException',
  'MessageRejected',
  'BadRequestException',
  'AccountSuspendedException',
  'MailFromDomainNotVerifiedException',
]);

function classify(error: unknown): never {
  if (error instanceof Error && permanentErrorNames.has(error.name)) {
    throw new PermanentChannelError(`${error.name}: ${error.message}`);
  }
  throw error;
}

/**
 * Publishes to an SNS topic (on-call paging, or the customer-messaging topic whose subscriber resolves the
 * customer's app). Message attributes carry the recipient, event and notification ids; on a FIFO topic the
 * notification id is also the deduplication id, so SNS itself drops a re-send within its 5-minute window.
 */
export class SnsChannel implements NotificationChannel {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
  ) {}

  async send(message: NotificationMessage): Promise<DeliveryReceipt> {
    const fifo = this.topicArn.endsWith('.fifo');
    try {
      const response = await this.client.send(
        new PublishCommand({
          TopicArn: this.topicArn,
          Subject: message.subject.slice(0, 99),
          Message: message.body,
          MessageAttributes: {
            recipientId: { DataType: 'String', StringValue: message.recipient.id },
            recipientKind: { DataType: 'String', StringValue: message.recipient.kind },
            eventId: { DataType: 'String', StringValue: message.eventId },
            notificationId: { DataType: 'String', StringValue: message.notificationId },
          },
          ...(fifo
            ? { MessageGroupId: message.recipient.id, MessageDeduplicationId: message.notificationId }
            : {}),
        }),
      );
      return { messageId: response.MessageId ?? message.notificationId };
    } catch (error) {
      return classify(error);
    }
  }
}

/**
 * Sends an email through SES v2 to a fixed mailbox (the reviewers' list). SES has no deduplication id: in
 * the crash window after a send and before the log marks it SENT (see README), a re-send after the claim
 * lease arrives twice; the X-Notification-Id header lets a reader or mail rule spot the duplicate.
 */
export class SesChannel implements NotificationChannel {
  constructor(
    private readonly client: SESv2Client,
    private readonly from: string,
    private readonly to: string,
  ) {}

  async send(message: NotificationMessage): Promise<DeliveryReceipt> {
    try {
      const response = await this.client.send(
        new SendEmailCommand({
          FromEmailAddress: this.from,
          Destination: { ToAddresses: [this.to] },
          Content: {
            Simple: {
              Subject: { Data: message.subject, Charset: 'UTF-8' },
              Body: { Text: { Data: message.body, Charset: 'UTF-8' } },
              Headers: [{ Name: 'X-Notification-Id', Value: message.notificationId }],
            },
          },
        }),
      );
      return { messageId: response.MessageId ?? message.notificationId };
    } catch (error) {
      return classify(error);
    }
  }
}

/** Sends each message through the adapter for its channel kind (PAGER, EMAIL, PUSH). */
export class RoutingChannel implements NotificationChannel {
  constructor(private readonly routes: Record<ChannelKind, NotificationChannel>) {}

  send(message: NotificationMessage): Promise<DeliveryReceipt> {
    return this.routes[message.channel].send(message);
  }
}

export interface AwsChannelSettings {
  oncallTopicArn: string;
  customerTopicArn: string;
  emailFrom: string;
  reviewersEmail: string;
}

/**
 * The SNS and SES clients make one attempt per send: sendNotifications retries (with backoff, logged in the
 * notification log), so SDK retries would multiply the attempts. Each attempt is bounded, so a send with all
 * its retries (3 x 5 s + backoff) stays within the notification log's claim lease (30 s).
 */
const oneBoundedAttempt = {
  maxAttempts: 1,
  requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 },
};

export function awsChannels(
  settings: AwsChannelSettings,
  sns = traced(new SNSClient(oneBoundedAttempt)),
  ses = traced(new SESv2Client(oneBoundedAttempt)),
) {
  return new RoutingChannel({
    PAGER: new SnsChannel(sns, settings.oncallTopicArn),
    PUSH: new SnsChannel(sns, settings.customerTopicArn),
    EMAIL: new SesChannel(ses, settings.emailFrom, settings.reviewersEmail),
  });
}
