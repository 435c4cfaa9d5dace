import {
  type BulkEmailEntryResult,
  SESv2Client,
  SendBulkEmailCommand,
  type SendBulkEmailCommandOutput,
} from '@aws-sdk/client-sesv2';
import {
  PublishBatchCommand,
  type PublishBatchCommandOutput,
  type PublishBatchRequestEntry,
  SNSClient,
} from '@aws-sdk/client-sns';
import { withoutCallLog } from '../../shared/aws-clients';
import { chunk, mapBounded } from '../../shared/concurrency';
import { ConfigurationError } from '../../shared/config';
import { BatchLevelError, ServiceUnavailableError } from '../../shared/msk/errors';
import { traced } from '../../shared/observability';
import {
  type NotificationChannel,
  type NotificationMessage,
  PermanentChannelError,
  type SendOutcome,
} from './ports';
import type { ChannelKind } from './rules';

/**
 * Whole-call errors about what the call carried: the same messages fail the same way on every retry. SES's
 * MessageRejected also says "not verified" for a sender or (in the sandbox) a recipient: that one is the
 * deployment's (below).
 */
const requestErrorNames = new Set([
  'InvalidParameterException',
  'InvalidParameterValueException',
  'MessageRejected',
  'BadRequestException',
  'BatchRequestTooLongException',
]);

/**
 * Whole-call errors (and SNS entry codes) about the deployment, the account or this code (a missing topic or
 * key, no authorization, a suspended or paused account, a sender not verified, a malformed batch): no record is
 * at fault and waiting inside an invocation does not fix them. They fail the invocation (shared/msk/errors.ts:
 * batch-level, not transient); after the ESM's retries the batch goes to the on-failure destination with the
 * reason, to be redriven once fixed.
 */
const deploymentErrorNames = new Set([
  'NotFound',
  'NotFoundException',
  'AuthorizationError',
  'AuthorizationErrorException',
  'InvalidSecurity',
  'InvalidSecurityException',
  'KMSAccessDenied',
  'KMSAccessDeniedException',
  'KMSDisabled',
  'KMSDisabledException',
  'KMSInvalidState',
  'KMSInvalidStateException',
  'KMSNotFound',
  'KMSNotFoundException',
  'KMSOptInRequired',
  'AccountSuspendedException',
  'MailFromDomainNotVerifiedException',
  'SendingPausedException',
  'EmptyBatchRequestException',
  'TooManyEntriesInBatchRequestException',
  'InvalidBatchEntryIdException',
  'BatchEntryIdsNotDistinctException',
]);

/** Whole-call errors on the service's side that the SDK reports as client faults. */
const unavailableErrorNames = new Set(['KMSThrottling', 'KMSThrottlingException']);

const NOT_VERIFIED = /not verified/i;

/** The message itself: not retried, its record fails. */
const permanent = (text: string): SendOutcome => ({
  ok: false,
  error: new PermanentChannelError(text),
  permanent: true,
});
/** Not retried here; fails the invocation (batch-level). */
const deployment = (text: string, cause?: unknown): SendOutcome => ({
  ok: false,
  error: new BatchLevelError(text, { cause }),
  permanent: true,
});
/** Retried here, then inside the invocation like an outage (transient). */
const unavailable = (text: string): SendOutcome => ({
  ok: false,
  error: new ServiceUnavailableError(text),
  permanent: false,
});
/**
 * An answer that cannot say whether a message went out (no result for it, or not one result per message): sent
 * again only by the ESM's retry of a failed invocation, not in-process or by the engine's outage retries, so a
 * message that did go out is duplicated a few times at most.
 */
const ambiguous = (text: string): SendOutcome =>
  deployment(`${text} (the answer does not say if it was sent)`);

/** A whole call refused for what it carried: each message is tried again on its own (isolatingRefusedCalls). */
class CallRefusedError extends PermanentChannelError {
  override name = 'CallRefusedError';
}

/** A whole call's failure, as the outcome of each message it carried. */
function failed(error: unknown): SendOutcome {
  if (!(error instanceof Error)) return { ok: false, error: new Error(String(error)), permanent: false };
  const text = `${error.name}: ${error.message}`;
  if (deploymentErrorNames.has(error.name) || NOT_VERIFIED.test(error.message))
    return deployment(text, error);
  if (requestErrorNames.has(error.name))
    return { ok: false, error: new CallRefusedError(text), permanent: true };
  if (unavailableErrorNames.has(error.name)) return unavailable(text);
  // Throttling, 5xx, timeouts, refused connections: the SDK's error, which shared/msk/errors.ts classifies.
  return { ok: false, error, permanent: false };
}

/**
 * Sends a batch call's messages, isolating a refused call: when a call of several messages is refused as a whole
 * for what it carried, each message is sent again in a call of its own, so one bad message costs itself only
 * (ports.ts). When every one of them is refused on its own too, no message is at fault but the deployment or this
 * code: the invocation fails. (A single message refused is its record's failure: one call cannot tell.)
 */
async function isolatingRefusedCalls(
  messages: NotificationMessage[],
  call: (messages: NotificationMessage[]) => Promise<SendOutcome[]>,
): Promise<SendOutcome[]> {
  const outcomes = await call(messages);
  const refused = (outcome: SendOutcome | undefined) =>
    !outcome?.ok && outcome?.error instanceof CallRefusedError;
  if (messages.length < 2 || !outcomes.every(refused)) return outcomes;
  // All at once: the attempt stays two rounds of calls long (DEFAULT_ATTEMPT_TIMEOUT_MS), within the lease.
  const alone = (await Promise.all(messages.map((message) => call([message])))).flat();
  if (!alone.every(refused)) return alone;
  const reason = alone[0]?.ok === false ? alone[0].error.message : 'refused';
  return messages.map(() =>
    deployment(`every message of the call was refused on its own too, so none is at fault: ${reason}`),
  );
}

/** A batch API's calls: `size` messages a call, `concurrency` calls in flight, outcomes in the messages' order. */
async function sendInCalls(
  messages: NotificationMessage[],
  size: number,
  concurrency: number,
  call: (messages: NotificationMessage[]) => Promise<SendOutcome[]>,
): Promise<SendOutcome[]> {
  const calls = await mapBounded(chunk(messages, size), concurrency, (some) =>
    isolatingRefusedCalls(some, call),
  );
  return calls.flat();
}

/** SNS takes at most 10 entries per PublishBatch. */
export const SNS_BATCH = 10;

/**
 * Publishes to an SNS topic (on-call paging, or the customer-messaging topic whose subscriber resolves the
 * customer's app) with PublishBatch, 10 messages a call, `concurrency` calls in flight. Message attributes
 * carry the recipient, event and notification ids; on a FIFO topic the notification id is also the
 * deduplication id, so SNS itself drops a re-send within its 5-minute window.
 */
export class SnsChannel implements NotificationChannel {
  constructor(
    private readonly client: SNSClient,
    private readonly topicArn: string,
    private readonly concurrency = 10,
  ) {}

  send(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    return sendInCalls(messages, SNS_BATCH, this.concurrency, (some) => this.publishBatch(some));
  }

  private async publishBatch(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    const fifo = this.topicArn.endsWith('.fifo');
    const entries: PublishBatchRequestEntry[] = messages.map((message, index) => ({
      Id: String(index),
      Subject: message.subject.slice(0, 99),
      Message: message.body,
      MessageAttributes: {
        recipientId: { DataType: 'String', StringValue: message.recipient.id },
        recipientKind: { DataType: 'String', StringValue: message.recipient.kind },
        eventSource: { DataType: 'String', StringValue: message.eventSource },
        eventId: { DataType: 'String', StringValue: message.eventId },
        notificationId: { DataType: 'String', StringValue: message.notificationId },
      },
      ...(fifo
        ? { MessageGroupId: message.recipient.id, MessageDeduplicationId: message.notificationId }
        : {}),
    }));
    let response: PublishBatchCommandOutput;
    try {
      response = await this.client.send(
        new PublishBatchCommand({ TopicArn: this.topicArn, PublishBatchRequestEntries: entries }),
      );
    } catch (error) {
      return messages.map(() => failed(error));
    }
    const outcomes = new Map<string, SendOutcome>();
    for (const entry of response.Successful ?? []) {
      outcomes.set(String(entry.Id), { ok: true, receipt: { messageId: entry.MessageId ?? '' } });
    }
    for (const entry of response.Failed ?? []) {
      const text = `${entry.Code}: ${entry.Message ?? 'failed'}`;
      // The topic, its key or our authorization: the deployment's. Else SenderFault: the entry itself is wrong (it
      // fails the same way again); otherwise SNS's side: an outage.
      outcomes.set(
        String(entry.Id),
        deploymentErrorNames.has(entry.Code ?? '')
          ? deployment(text)
          : entry.SenderFault && !unavailableErrorNames.has(entry.Code ?? '')
            ? permanent(text)
            : unavailable(text),
      );
    }
    return messages.map(
      (message, index) =>
        outcomes.get(String(index)) ??
        ambiguous(`PublishBatch answered nothing for notification ${message.notificationId}`),
    );
  }
}

/** SES takes at most 50 entries per SendBulkEmail. */
const SES_BATCH = 50;

/**
 * SendBulkEmail sends one template to many destinations; an inline template (nothing stored in SES) whose
 * subject and text are the message the function already rendered makes it send distinct messages. `{{name}}` is
 * the placeholder an inline template supports (simple substitution only), and SES does not HTML-escape values.
 */
const PASS_THROUGH_TEMPLATE = { Subject: '{{subject}}', Text: '{{body}}' };
/** Default data too: SES v1's bulk call required it; empty values, which no entry uses (each carries its own). */
const DEFAULT_TEMPLATE_DATA = JSON.stringify({ subject: '', body: '' });

/** Entry statuses (the SDK's BulkEmailStatus) of the email itself: the same email fails the same way again. */
const rejectedStatuses = new Set(['MESSAGE_REJECTED', 'INVALID_PARAMETER']);

/**
 * Entry statuses of the deployment or the account (sender, configuration set, pool, a suspended or paused account,
 * the daily quota): waiting inside an invocation does not fix them, an operator or the next day does. They fail
 * the invocation, as the same whole-call errors do; no record is at fault.
 */
const deploymentStatuses = new Set([
  'MAIL_FROM_DOMAIN_NOT_VERIFIED',
  'CONFIGURATION_SET_NOT_FOUND',
  'TEMPLATE_NOT_FOUND',
  'INVALID_SENDING_POOL_NAME',
  'ACCOUNT_SUSPENDED',
  'ACCOUNT_SENDING_PAUSED',
  'CONFIGURATION_SET_SENDING_PAUSED',
  'ACCOUNT_DAILY_QUOTA_EXCEEDED',
]);

/** One entry's result. Throttling, TRANSIENT_FAILURE, FAILED and statuses not known here: SES's side, an outage. */
function entryOutcome(message: NotificationMessage, result: BulkEmailEntryResult | undefined): SendOutcome {
  if (!result?.Status) {
    return ambiguous(`SendBulkEmail answered no status for notification ${message.notificationId}`);
  }
  if (result.Status === 'SUCCESS') {
    return { ok: true, receipt: { messageId: result.MessageId ?? message.notificationId } };
  }
  const text = `${result.Status}: ${result.Error ?? 'no reason given'}`;
  if (deploymentStatuses.has(result.Status) || NOT_VERIFIED.test(result.Error ?? '')) return deployment(text);
  if (rejectedStatuses.has(result.Status)) return permanent(text);
  return unavailable(text);
}

/**
 * Sends emails through SES v2 to a fixed mailbox (the reviewers' list) with SendBulkEmail: 50 messages a call,
 * `concurrency` calls in flight, a status per message. Each entry carries its rendered subject and body as the
 * data of a pass-through inline template, and its X-Notification-Id header. SES has no deduplication id: in
 * the crash window after a send and before the log says SENT (see README), a re-send after the lease arrives
 * twice; the header lets a reader or mail rule spot the duplicate.
 */
export class SesChannel implements NotificationChannel {
  constructor(
    private readonly client: SESv2Client,
    private readonly from: string,
    private readonly to: string,
    private readonly concurrency = 10,
  ) {}

  send(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    return sendInCalls(messages, SES_BATCH, this.concurrency, (some) => this.sendBulk(some));
  }

  private async sendBulk(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    let response: SendBulkEmailCommandOutput;
    try {
      response = await this.client.send(
        new SendBulkEmailCommand({
          FromEmailAddress: this.from,
          DefaultContent: {
            Template: { TemplateContent: PASS_THROUGH_TEMPLATE, TemplateData: DEFAULT_TEMPLATE_DATA },
          },
          BulkEmailEntries: messages.map((message) => ({
            Destination: { ToAddresses: [this.to] },
            ReplacementEmailContent: {
              ReplacementTemplate: {
                ReplacementTemplateData: JSON.stringify({ subject: message.subject, body: message.body }),
              },
            },
            ReplacementHeaders: [{ Name: 'X-Notification-Id', Value: message.notificationId }],
          })),
        }),
      );
    } catch (error) {
      return messages.map(() => failed(error));
    }
    // One result per entry, in the entries' order. An answer of another length cannot say which email each
    // result is for: none is taken as sent.
    const results = response.BulkEmailEntryResults ?? [];
    if (results.length !== messages.length) {
      const text = `SendBulkEmail answered ${results.length} results for ${messages.length} emails`;
      return messages.map(() => ambiguous(text));
    }
    return messages.map((message, index) => entryOutcome(message, results[index]));
  }
}

/**
 * Sends each message through the adapter for its channel kind (PAGER, EMAIL, PUSH), the kinds at once. A
 * deployment serves the kinds it is configured for (oncall-paging PAGER alone); a message of another kind fails
 * with a ConfigurationError: the deployment's wiring is wrong, not the record, so the invocation fails as a whole
 * and the ESM retries it (README "Failures") rather than the record failing alone.
 */
export class RoutingChannel implements NotificationChannel {
  constructor(private readonly routes: Partial<Record<ChannelKind, NotificationChannel>>) {}

  async send(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    const byKind = new Map<ChannelKind, number[]>();
    for (const [index, message] of messages.entries()) {
      byKind.set(message.channel, [...(byKind.get(message.channel) ?? []), index]);
    }
    const outcomes = new Array<SendOutcome>(messages.length);
    await Promise.all(
      [...byKind].map(async ([kind, indexes]) => {
        const route = this.routes[kind];
        const sent = route
          ? await route.send(indexes.map((index) => messages[index] as NotificationMessage))
          : indexes.map(() => unserved(kind, Object.keys(this.routes)));
        for (const [position, index] of indexes.entries()) outcomes[index] = sent[position] as SendOutcome;
      }),
    );
    return outcomes;
  }
}

function unserved(kind: ChannelKind, served: string[]): SendOutcome {
  return {
    ok: false,
    error: new ConfigurationError(
      `no ${kind} channel in this function (it sends ${served.join(', ') || 'nothing'}): its ESMs consume a topic another function should`,
    ),
    permanent: true,
  };
}

export interface AwsChannelSettings {
  /** The channels this function sends on; absent ones are not served. */
  oncallTopicArn?: string;
  customerTopicArn?: string;
  email?: { from: string; reviewers: string };
  /** Calls in flight per channel kind (SNS PublishBatch calls of 10, SES SendBulkEmail calls of 50). */
  concurrency?: number;
}

/**
 * The SNS and SES clients make one attempt per call: notifyPartition retries (with backoff, logged in the
 * notification log), so SDK retries would multiply the attempts. Each call is bounded (2 s to connect, 5 s to
 * answer), an attempt to two rounds of calls (a refused call, then its messages alone: DEFAULT_ATTEMPT_TIMEOUT_MS),
 * so notifyPartition can start only attempts that end within its lease.
 */
const oneBoundedAttempt = {
  maxAttempts: 1,
  requestHandler: { connectionTimeout: 2_000, requestTimeout: 5_000 },
};

export function awsChannels(
  settings: AwsChannelSettings,
  sns = traced(withoutCallLog(new SNSClient(oneBoundedAttempt))),
  ses = traced(withoutCallLog(new SESv2Client(oneBoundedAttempt))),
) {
  const { oncallTopicArn, customerTopicArn, email, concurrency } = settings;
  return new RoutingChannel({
    ...(oncallTopicArn && { PAGER: new SnsChannel(sns, oncallTopicArn, concurrency) }),
    ...(customerTopicArn && { PUSH: new SnsChannel(sns, customerTopicArn, concurrency) }),
    ...(email && { EMAIL: new SesChannel(ses, email.from, email.reviewers, concurrency) }),
  });
}
