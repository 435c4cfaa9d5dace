import { createHash, randomUUID } from 'node:crypto';
import { ConfigurationError } from '../../shared/config';
import { ServiceUnavailableError } from '../../shared/msk/errors';
import type {
  DeliveryReceipt,
  HeldLease,
  LeaseResult,
  LogEntry,
  LogRecord,
  NotificationChannel,
  NotificationLog,
  NotificationMessage,
  OffsetRange,
  PreviousLease,
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
  /** How long a partition's lease protects its sends; a send attempt is started only if it ends within it. */
  leaseMs?: number;
  /** The longest one channel attempt can take (the SDK's connection + request timeouts). */
  attemptTimeoutMs?: number;
  /**
   * How long this invocation may still wait for another holder's lease to lapse (its remaining time minus a
   * safety margin); 0 or less: do not wait. Defaults to no waiting.
   */
  claimWaitBudgetMs?: () => number;
  /** Who holds the lease; one per invocation (default: a random id). */
  holder?: () => string;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export type NotificationOutcome = 'SENT' | 'ALREADY_SENT' | 'FAILED';

export interface PartitionNotificationResult {
  notifications: {
    notificationId: string;
    /** Index of the event in the partition's list. */
    index: number;
    recipientId: string;
    outcome: NotificationOutcome;
    /** Send attempts in this delivery. */
    attempts?: number;
  }[];
  /** The first event that failed: it and every later event of the partition are to be reported. */
  failure?: { index: number; error: Error };
  /** The partition's lease is still this invocation's: it succeeded, and the next batch takes the lease over. */
  leaseKept?: true;
}

/** Raised when a message could not be delivered; the record goes to the failure path (batch item failure). */
export class NotificationDeliveryError extends Error {
  override name = 'NotificationDeliveryError';
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 200 };
export const DEFAULT_LEASE_MS = 30_000;

/**
 * Two rounds of the SNS/SES clients' connection (2 s) plus request (5 s) timeouts: a call refused as a whole, then
 * its messages alone, at once (aws-channels.ts).
 */
export const DEFAULT_ATTEMPT_TIMEOUT_MS = 14_000;
/**
 * A lease the sends fit in: no attempt starts that could outlast it, so one no longer than an attempt would send
 * nothing, ever (each batch an outage until the invocation gives up). Refused at start-up instead.
 */
export function checkedLeaseMs(leaseMs: number): number {
  if (leaseMs <= DEFAULT_ATTEMPT_TIMEOUT_MS)
    throw new ConfigurationError(
      `NOTIFICATION_LEASE_MS must be longer than one send attempt (${DEFAULT_ATTEMPT_TIMEOUT_MS} ms), got ${leaseMs}`,
    );
  return leaseMs;
}

/** Bounds the waits for one lease: a lease is not renewed, so one wait normally suffices (more: clock skew). */
const MAX_LEASE_WAITS = 3;

/** Deterministic per (CloudEvents source, id, recipient): the log key and the channel's deduplication id. */
export function notificationId(eventSource: string, eventId: string, recipientId: string): string {
  return createHash('sha256')
    .update(`${eventSource}\u0000${eventId}\u0000${recipientId}`)
    .digest('hex')
    .slice(0, 32);
}

/** One topic-partition of a delivery: its key (`<topic>-<partition>`) and the offsets of the events given. */
export interface DeliveredPartition extends OffsetRange {
  key: string;
}

/**
 * Sends what the rules decide for the events of one topic-partition (in offset order; `null` is a record
 * without an event, a tombstone), each notification at most once as far as the log can tell:
 *
 * 1. take the partition's lease (one conditional write; none when no event of the batch notifies anyone) and,
 *    at the same time, read the log entries of every notification of the batch (batched reads);
 * 2. drop those already SENT and send the rest at once (the channel batches and bounds its concurrency),
 *    retrying transient failures with backoff, never starting an attempt that could outlast the lease;
 * 3. write SENT or FAILED for each (batched writes). The lease is released only when the partition failed
 *    (its redelivery starts inside this one's offsets); otherwise the next batch takes it by its offsets.
 *
 * Three sequential round trips to the log's store on a first delivery, plus the sends (one more, the release,
 * when something failed). The read made beside the lease request is used only when the lease tells no one
 * else can have logged a send of these records since: it was never held, was ours, or its last holder's
 * offsets all come before ours (the ESM delivers ours only once those succeeded, their log written). After a
 * holder that released the lease (it failed), let it lapse (it crashed) or had to be waited for, the log is
 * read again once the lease is ours: one round trip more, on those redeliveries only.
 *
 * Order: the first event whose rules fail or whose message was not sent is the partition's failure; it and
 * the later events are reported and come back, while the later events' messages that were sent are logged
 * SENT and skipped then. Delivery to the channel stays at least once in one window: a crash (or timeout)
 * after the channel accepted a message and before step 3 leaves no SENT entry, so the redelivery sends it
 * again once the lease lapses (with the same notification id, the channel's deduplication id).
 *
 * A lease held by another invocation whose offsets overlap: if the log says every notification of the batch
 * was sent (the same records again after a success, e.g. a lost commit), there is nothing to guard and the
 * batch is done. If the batch holds all the records the lease covers (from its first offset to its `through`)
 * and the log says so of their notifications, the holder has nothing left to send and the batch takes the lease
 * over from it (the ESM's retry, with more records, of an invocation that timed out after its log write).
 * Otherwise it is most often a lease a crashed invocation left behind: failing at once would use up the ESM's
 * retries long before it ends. So when it ends within `claimWaitBudgetMs`, wait for it and take it; otherwise
 * fail the partition, to be retried later.
 */
export async function notifyPartition(
  partition: DeliveredPartition,
  events: readonly (ConsumedEvent | null)[],
  dependencies: SendNotificationsDependencies,
): Promise<PartitionNotificationResult> {
  const clock = dependencies.clock ?? Date.now;
  const sleep =
    dependencies.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const leaseMs = dependencies.leaseMs ?? DEFAULT_LEASE_MS;
  const { log } = dependencies;

  const result: PartitionNotificationResult = { notifications: [] };
  const planned: { index: number; message: NotificationMessage }[] = [];
  for (const [index, event] of events.entries()) {
    if (event === null) continue;
    try {
      for (const intent of decideNotifications(event)) {
        planned.push({
          index,
          message: { ...toMessage(event, intent), ...render(intent.template, intent.values) },
        });
      }
    } catch (error) {
      result.failure = { index, error: asError(error) };
      break;
    }
  }
  const first = planned[0];
  if (!first) return result;

  // One message per notification id: the same event twice in a batch (a producer's retry) sends once.
  const unique = new Map<string, NotificationMessage>();
  for (const { message } of planned)
    if (!unique.has(message.notificationId)) unique.set(message.notificationId, message);
  const messages = [...unique.values()];

  const holder = dependencies.holder?.() ?? randomUUID();
  const reading = log.entries(messages);
  // Its rejection is handled where it is awaited, below; this keeps a failed lease request from leaving it unhandled.
  reading.catch(() => undefined);
  let lease = await log.acquireLease(partition.key, holder, partition, clock(), leaseMs);
  let takenOver = false;
  if (!lease.acquired) {
    const logged = await reading;
    // The same records again while the batch that sent them still holds the lease (its commit was lost, or
    // the whole batch was retried): nothing left to send, so nothing for the lease to guard.
    if (allSent(messages, logged)) return report(result, planned, new Map());
    // Its records plus newer ones (its invocation timed out or crashed after logging, and the ESM's retry brought
    // more): once every notification of the records it holds is SENT, it has nothing of them left to send, and
    // the lease is taken from it now instead of waited for. Only when this batch holds all of them (it starts at
    // or before the holder's first offset): of records before ours, the holder may still be sending one whose
    // event comes again later in our batch (a producer's duplicate).
    const held = heldLease(lease);
    const now = clock();
    if (
      held &&
      partition.first <= held.first &&
      allSent(messagesThrough(planned, partition.first, held.through), logged)
    ) {
      if (await log.takeOverLease(partition.key, held, holder, partition, now, leaseMs)) {
        lease = { acquired: true, leaseUntil: now + leaseMs };
        takenOver = true;
      } else {
        // It changed hands or was released meanwhile: ask again rather than wait out what was refused.
        lease = await log.acquireLease(partition.key, holder, partition, clock(), leaseMs);
      }
    }
  }
  // The read beside the lease request may predate the SENT entries of a holder that released the lease or let it
  // lapse after it was started; it is current only when no other holder can have sent our records' notifications
  // since: the lease was never held, was ours, or was held for earlier offsets only (those were done, logged
  // included, before the ESM delivered ours). After a takeover it is read again as well (one round trip on that
  // path only): the holder it was taken from is not the only one that may have logged since the read.
  const read =
    lease.acquired && !takenOver && readIsCurrent(lease.previous, holder, partition) ? reading : undefined;
  for (let waits = 0; !lease.acquired && waits < MAX_LEASE_WAITS; waits++) {
    // The log hands a lease over once `leaseUntil < now`, hence the extra millisecond.
    const waitMs = Math.max(lease.leaseUntil - clock() + 1, 1);
    if (waitMs > (dependencies.claimWaitBudgetMs?.() ?? 0)) break;
    await sleep(waitMs);
    lease = await log.acquireLease(partition.key, holder, partition, clock(), leaseMs);
  }
  if (!lease.acquired) {
    return failFrom(
      result,
      first.index,
      new NotificationDeliveryError(
        `Partition ${partition.key} is being sent by another invocation (lease until ${new Date(lease.leaseUntil).toISOString()})`,
      ),
    );
  }

  try {
    // Read again after taking the lease when the first read may be stale (a holder waited for, released or lapsed).
    const logged = await (read ?? log.entries(messages));
    const toSend = messages.filter((message) => logged.get(message.notificationId)?.status !== 'SENT');
    const delivered = await deliver(toSend, dependencies, clock, sleep, lease.leaseUntil);
    const records: LogRecord[] = toSend.map((message) => {
      const outcome = delivered.get(message.notificationId) as Delivery;
      const attempts = (logged.get(message.notificationId)?.attempts ?? 0) + outcome.attempts;
      return outcome.receipt
        ? { message, status: 'SENT', attempts, messageId: outcome.receipt.messageId }
        : { message, status: 'FAILED', attempts, error: describe(outcome.error).slice(0, 1000) };
    });
    await log.record(records, clock());
    report(result, planned, delivered);
  } catch (error) {
    // The log could not be read or written: nothing of the partition counts as done. The release is tried
    // anyway; if it fails too, the lease lapses by itself.
    await log.releaseLease(partition.key, holder).catch(() => undefined);
    throw error;
  }
  // A failure is redelivered from inside this lease's offsets: release it, or the redelivery waits it out. The
  // result stands if the release fails: the lease then lapses by itself.
  if (result.failure) await log.releaseLease(partition.key, holder).catch(() => undefined);
  else result.leaseKept = true;
  return result;
}

function readIsCurrent(previous: PreviousLease | undefined, holder: string, offsets: OffsetRange): boolean {
  return (
    previous === undefined ||
    previous.holder === holder ||
    (previous.through !== undefined && previous.through < offsets.first)
  );
}

function heldLease(lease: LeaseResult): HeldLease | undefined {
  if (lease.acquired || lease.holder === undefined) return undefined;
  if (lease.first === undefined || lease.through === undefined) return undefined;
  return { holder: lease.holder, first: lease.first, through: lease.through };
}

/**
 * The messages of the events at offsets up to `through`. Offsets grow by at least one per record, so those events
 * are among the first `through - first + 1`: the set may hold some later events' messages too, never fewer.
 */
function messagesThrough(
  planned: { index: number; message: NotificationMessage }[],
  first: number,
  through: number,
): NotificationMessage[] {
  return planned.filter(({ index }) => first + index <= through).map(({ message }) => message);
}

function allSent(messages: NotificationMessage[], logged: Map<string, LogEntry>): boolean {
  return messages.every((message) => logged.get(message.notificationId)?.status === 'SENT');
}

/** Each planned notification's outcome in the result: delivered now, or (not in `delivered`) sent before. */
function report(
  result: PartitionNotificationResult,
  planned: { index: number; message: NotificationMessage }[],
  delivered: Map<string, Delivery>,
): PartitionNotificationResult {
  const reported = new Set<string>();
  for (const { index, message } of planned) {
    const outcome = reported.has(message.notificationId) ? undefined : delivered.get(message.notificationId);
    reported.add(message.notificationId);
    const entry = { notificationId: message.notificationId, index, recipientId: message.recipient.id };
    if (!outcome) {
      result.notifications.push({ ...entry, outcome: 'ALREADY_SENT' });
      continue;
    }
    result.notifications.push({
      ...entry,
      outcome: outcome.receipt ? 'SENT' : 'FAILED',
      attempts: outcome.attempts,
    });
    if (!outcome.receipt) {
      failFrom(
        result,
        index,
        new NotificationDeliveryError(
          `Notification ${message.notificationId} (${message.eventType} ${message.eventId} -> ${message.recipient.id}) failed: ${describe(outcome.error)}`,
          { cause: outcome.error },
        ),
      );
    }
  }
  return result;
}

function toMessage(
  event: ConsumedEvent,
  intent: ReturnType<typeof decideNotifications>[number],
): Omit<NotificationMessage, 'subject' | 'body'> {
  return {
    notificationId: notificationId(event.source, event.id, intent.recipient.id),
    eventSource: event.source,
    eventId: event.id,
    eventType: event.topic,
    recipient: intent.recipient,
    channel: intent.channel,
    template: intent.template,
  };
}

function failFrom(result: PartitionNotificationResult, index: number, error: Error) {
  if (!result.failure || index < result.failure.index) result.failure = { index, error };
  return result;
}

interface Delivery {
  receipt?: DeliveryReceipt;
  error?: Error;
  attempts: number;
}

/** Sends all, then again those that failed transiently (backoff between rounds), up to `retry.attempts`. */
async function deliver(
  messages: NotificationMessage[],
  dependencies: SendNotificationsDependencies,
  clock: () => number,
  sleep: (ms: number) => Promise<void>,
  leaseUntil: number,
): Promise<Map<string, Delivery>> {
  const retry = dependencies.retry ?? DEFAULT_RETRY;
  const attemptTimeoutMs = dependencies.attemptTimeoutMs ?? DEFAULT_ATTEMPT_TIMEOUT_MS;
  const delivered = new Map<string, Delivery>();
  /** Each pending message's last transient failure. */
  const lastError = new Map<string, Error>();
  let pending = messages;
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (clock() + attemptTimeoutMs > leaseUntil) {
      // Another invocation may take the lease over before this attempt ends: it would send too. The message keeps
      // its last failure's kind; with none (no send could start: the lease and the log took the time), an outage.
      for (const message of pending) {
        const error = new NotificationDeliveryError(
          'not sent: the lease would end before the send could finish',
          {
            cause:
              lastError.get(message.notificationId) ??
              new ServiceUnavailableError('the lease ran out before a send could start'),
          },
        );
        delivered.set(message.notificationId, { error, attempts: attempt - 1 });
      }
      break;
    }
    const outcomes = await dependencies.channel
      .send(pending)
      .catch((error: unknown) =>
        pending.map(() => ({ ok: false as const, error: asError(error), permanent: false })),
      );
    const again: NotificationMessage[] = [];
    for (const [index, message] of pending.entries()) {
      const outcome = outcomes[index];
      if (outcome?.ok) delivered.set(message.notificationId, { receipt: outcome.receipt, attempts: attempt });
      else if (outcome && !outcome.permanent && attempt < retry.attempts) {
        lastError.set(message.notificationId, outcome.error);
        again.push(message);
      } else {
        const error = outcome ? outcome.error : new Error('the channel returned no outcome for this message');
        delivered.set(message.notificationId, { error, attempts: attempt });
      }
    }
    pending = again;
    if (pending.length > 0) await sleep(retry.baseDelayMs * 2 ** (attempt - 1));
  }
  return delivered;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
