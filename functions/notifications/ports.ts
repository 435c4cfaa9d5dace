import type { ChannelKind, Recipient } from './rules';

/** A rendered message for one recipient. `notificationId` is deterministic per (event id, recipient). */
export interface NotificationMessage {
  notificationId: string;
  eventId: string;
  eventType: string;
  recipient: Recipient;
  channel: ChannelKind;
  template: string;
  subject: string;
  body: string;
}

export interface DeliveryReceipt {
  /** The channel's id for the message (SNS MessageId, SES MessageId, outbox key). */
  messageId: string;
}

/** Delivers a message to a person. Adapters: SNS, SES, the local outbox. */
export interface NotificationChannel {
  send(message: NotificationMessage): Promise<DeliveryReceipt>;
}

/** A channel failure that no retry can fix (bad address, rejected content): not retried in-process. */
export class PermanentChannelError extends Error {
  override name = 'PermanentChannelError';
}

export type ClaimResult =
  | { outcome: 'CLAIMED'; attempt: number }
  | { outcome: 'ALREADY_SENT'; messageId?: string }
  /** Another invocation holds a live claim (it may be sending right now): do not send, retry later. */
  | { outcome: 'IN_PROGRESS'; leaseUntil: number };

/**
 * The notification log, one entry per (event id, recipient). It is the send guard: a message is sent only
 * under a claim (a conditional write before the send) and marked SENT right after, so a retry skips what
 * was sent. A claim lapses after its lease (the sender crashed); a FAILED entry can be claimed again.
 */
export interface NotificationLog {
  claim(message: NotificationMessage, now: number, leaseMs: number): Promise<ClaimResult>;
  markSent(message: NotificationMessage, receipt: DeliveryReceipt, now: number): Promise<void>;
  markFailed(message: NotificationMessage, error: string, now: number): Promise<void>;
}
