import type { ChannelKind, Recipient } from './rules';

/**
 * A rendered message for one recipient. `notificationId` is deterministic per (CloudEvents source, id,
 * recipient): the log's key and the channel's deduplication id.
 */
export interface NotificationMessage {
  notificationId: string;
  eventSource: string;
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

/** What happened to one message of a `send` call. */
export type SendOutcome =
  | { ok: true; receipt: DeliveryReceipt }
  /** `permanent`: the channel will answer the same on every retry (bad address, rejected content). */
  | { ok: false; error: Error; permanent: boolean };

/**
 * Delivers messages to people. Adapters: SNS (PublishBatch, 10 a call), SES (SendBulkEmail, 50 a call), the local outbox. One outcome per
 * message, in order; a message's failure is its outcome, so one bad message never costs the others. A
 * rejection means the call as a whole failed (every message not sent, transient).
 */
export interface NotificationChannel {
  send(messages: NotificationMessage[]): Promise<SendOutcome[]>;
}

/** A channel failure that no retry can fix (bad address, rejected content): not retried in-process. */
export class PermanentChannelError extends Error {
  override name = 'PermanentChannelError';
}

/** The offsets of one partition's records in this delivery, first and last. */
export interface OffsetRange {
  first: number;
  last: number;
}

/** The lease as it was before it was taken: who held it last and for which offsets (absent: never held). */
export interface PreviousLease {
  holder?: string;
  /** The last offset of that holder's records; absent on a lease written before offsets were kept. */
  through?: number;
}

export type LeaseResult =
  | { acquired: true; leaseUntil: number; previous?: PreviousLease }
  /**
   * Another invocation holds the partition (it may be sending right now): do not send, retry later. `holder`,
   * `first` and `through`: who holds it, for which offsets (absent when the store did not say).
   */
  | { acquired: false; leaseUntil: number; holder?: string; first?: number; through?: number };

/** A lease as a refused request saw it: the holder and the first and last offsets of its records. */
export interface HeldLease {
  holder: string;
  first: number;
  through: number;
}

export type LoggedStatus = 'SENT' | 'FAILED';

export interface LogEntry {
  status: LoggedStatus;
  /** Send attempts so far, over every delivery of the event. */
  attempts: number;
  messageId?: string;
}

/** The outcome of one message in this delivery, to be written to the log. */
export type LogRecord =
  | { message: NotificationMessage; status: 'SENT'; attempts: number; messageId: string }
  | { message: NotificationMessage; status: 'FAILED'; attempts: number; error: string };

/**
 * The notification log. Two things:
 * - a lease per topic-partition, fenced by offset: it records the last offset of its holder's records, and
 *   another invocation takes it only if it lapsed, was released, or the newcomer's records all come after that
 *   offset. Two invocations that got overlapping records (a poller rebalance, a retry while a slow invocation
 *   still runs) therefore never send at once, while the next batch of the partition (which the ESM delivers
 *   only once the previous one succeeded) needs no release from the one before. A newcomer whose records
 *   overlap the holder's may take it over (takeOverLease) once the log shows every notification of the
 *   overlapping records SENT: that holder has nothing of them left to send;
 * - one entry per notification (source, event id, recipient), SENT or FAILED, read in bulk before sending
 *   and written in bulk after, so a redelivery skips what was sent.
 */
export interface NotificationLog {
  acquireLease(
    partition: string,
    holder: string,
    offsets: OffsetRange,
    now: number,
    leaseMs: number,
  ): Promise<LeaseResult>;
  /**
   * Takes the lease from `from` only if it still holds it for the same offsets (compare and swap); false if it
   * changed hands, was released or renewed for other offsets meanwhile.
   */
  takeOverLease(
    partition: string,
    from: HeldLease,
    holder: string,
    offsets: OffsetRange,
    now: number,
    leaseMs: number,
  ): Promise<boolean>;
  releaseLease(partition: string, holder: string): Promise<void>;
  entries(messages: NotificationMessage[]): Promise<Map<string, LogEntry>>;
  record(records: LogRecord[], now: number): Promise<void>;
}
