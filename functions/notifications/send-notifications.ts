import { createHash } from 'node:crypto';
import {
  type DeliveryReceipt,
  type NotificationChannel,
  type NotificationLog,
  type NotificationMessage,
  PermanentChannelError,
} from './ports';
import { type ConsumedEvent, decideNotifications } from './rules';
import { render } from './templates';

export interface RetryPolicy {
  /** Attempts per message within one invocation, including the first. */
  attempts: number;
  baseDelayMs: number;
}

export interface SendNotificationsDependencies {
  channel: NotificationChannel;
  log: NotificationLog;
  retry?: RetryPolicy;
  /** How long a claim protects a send in progress; must exceed a send with all its in-process retries. */
  leaseMs?: number;
  /**
   * How long this invocation may still wait for another sender's claim to lapse (its remaining time minus a
   * safety margin); 0 or less: do not wait. Defaults to no waiting.
   */
  claimWaitBudgetMs?: () => number;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type NotificationOutcome = 'SENT' | 'ALREADY_SENT';

export interface EventNotificationResult {
  eventId: string;
  notifications: {
    notificationId: string;
    recipientId: string;
    outcome: NotificationOutcome;
    attempts?: number;
  }[];
}

/** Raised when a message could not be delivered; the record goes to the failure path (batch item failure). */
export class NotificationDeliveryError extends Error {
  override name = 'NotificationDeliveryError';
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 200 };
export const DEFAULT_LEASE_MS = 30_000;
/** Bounds the waits for one claim: a lease is not renewed, so one wait normally suffices (more: clock skew). */
const MAX_CLAIM_WAITS = 3;

/** Deterministic per (event id, recipient): the idempotency key and the channel's deduplication id. */
export function notificationId(eventId: string, recipientId: string): string {
  return createHash('sha256').update(`${eventId}\u0000${recipientId}`).digest('hex').slice(0, 32);
}

/**
 * Sends what the rules decide for one event, each (event id, recipient) at most once as far as the log can
 * tell: claim in the log, send (retrying transient failures with backoff), mark sent. A message that keeps
 * failing is marked FAILED and the event fails, so the batch reports it; messages already sent for this
 * event stay SENT and are skipped when the event comes back.
 *
 * A claim held by another sender is most often one a crashed or timed-out invocation left behind: failing the
 * record at once would use up the ESM's retries long before the lease ends and send it to the on-failure
 * destination. So when the lease ends within `claimWaitBudgetMs`, wait for it and claim again; otherwise fail
 * the record as before, to be retried later. Delivery to the channel stays at least once: a sender that died
 * after the channel accepted the message but before `markSent` is sent again once its lease lapses (the
 * notification id is the channel's deduplication id), and so is one still sending after its lease.
 */
export async function sendNotifications(
  event: ConsumedEvent,
  dependencies: SendNotificationsDependencies,
): Promise<EventNotificationResult> {
  const clock = dependencies.clock ?? Date.now;
  const sleep =
    dependencies.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const retry = dependencies.retry ?? DEFAULT_RETRY;
  const leaseMs = dependencies.leaseMs ?? DEFAULT_LEASE_MS;
  const claimWaitBudgetMs = dependencies.claimWaitBudgetMs ?? (() => 0);

  const result: EventNotificationResult = { eventId: event.id, notifications: [] };
  for (const intent of decideNotifications(event)) {
    const rendered = render(intent.template, intent.values);
    const message: NotificationMessage = {
      notificationId: notificationId(event.id, intent.recipient.id),
      eventId: event.id,
      eventType: event.topic,
      recipient: intent.recipient,
      channel: intent.channel,
      template: intent.template,
      ...rendered,
    };
    let claim = await dependencies.log.claim(message, clock(), leaseMs);
    for (let waits = 0; claim.outcome === 'IN_PROGRESS' && waits < MAX_CLAIM_WAITS; waits++) {
      // The log takes a claim over once `leaseUntil < now`, hence the extra millisecond.
      const waitMs = Math.max(claim.leaseUntil - clock() + 1, 1);
      if (waitMs > claimWaitBudgetMs()) break;
      await sleep(waitMs);
      claim = await dependencies.log.claim(message, clock(), leaseMs);
    }
    if (claim.outcome === 'ALREADY_SENT') {
      result.notifications.push({
        notificationId: message.notificationId,
        recipientId: intent.recipient.id,
        outcome: 'ALREADY_SENT',
      });
      continue;
    }
    if (claim.outcome === 'IN_PROGRESS') {
      throw new NotificationDeliveryError(
        `Notification ${message.notificationId} is being sent by another invocation (claim until ${new Date(claim.leaseUntil).toISOString()})`,
      );
    }
    const { receipt, attempts } = await sendWithRetry(dependencies.channel, message, retry, sleep).catch(
      async (error: unknown) => {
        const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
        const failure = `Notification ${message.notificationId} (${event.topic} ${event.id} -> ${intent.recipient.id}) failed: ${reason}`;
        // The delivery failure is what the record fails with; a log write that fails too is attached, not
        // thrown instead (the claim then lapses with its lease, and the retry claims again).
        await dependencies.log
          .markFailed(message, reason.slice(0, 1000), clock())
          .catch((markError: unknown) => {
            throw new NotificationDeliveryError(`${failure}; marking it FAILED failed too`, {
              cause: markError,
            });
          });
        throw new NotificationDeliveryError(failure, { cause: error });
      },
    );
    await dependencies.log.markSent(message, receipt, clock());
    result.notifications.push({
      notificationId: message.notificationId,
      recipientId: intent.recipient.id,
      outcome: 'SENT',
      attempts,
    });
  }
  return result;
}

async function sendWithRetry(
  channel: NotificationChannel,
  message: NotificationMessage,
  retry: RetryPolicy,
  sleep: (ms: number) => Promise<void>,
): Promise<{ receipt: DeliveryReceipt; attempts: number }> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return { receipt: await channel.send(message), attempts: attempt };
    } catch (error) {
      if (error instanceof PermanentChannelError || attempt >= retry.attempts) throw error;
      await sleep(retry.baseDelayMs * 2 ** (attempt - 1));
    }
  }
}
