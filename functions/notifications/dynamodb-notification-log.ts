import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { eventKey } from '../../shared/contracts/cloudevents';
import { batchGetAll, batchPutAll, isConditionalCheckFailure } from '../../shared/dynamodb';
import type {
  HeldLease,
  LeaseResult,
  LogEntry,
  LogRecord,
  NotificationLog,
  NotificationMessage,
  OffsetRange,
} from './ports';

// NotificationsTable:
//   notification entries: pk NOTIFICATION#["<ce source>","<ce id>"], sk RECIPIENT#<recipientId>; SENT | FAILED
//   partition leases:     pk LEASE#<topic>-<partition>, sk LEASE; holder, leaseUntil, fromOffset and through (the
//                         first and last offsets of its holder's records)
/** The key of a notification's log entry: the event's CloudEvents source and id (eventKey: JSON, no separator clash). */
export function notificationLogKey(eventSource: string, eventId: string, recipientId: string) {
  return {
    pk: `NOTIFICATION#${eventKey({ source: eventSource, id: eventId })}`,
    sk: `RECIPIENT#${recipientId}`,
  };
}

const entryKey = (message: NotificationMessage) =>
  notificationLogKey(message.eventSource, message.eventId, message.recipient.id);
const leaseKey = (partition: string) => ({ pk: `LEASE#${partition}`, sk: 'LEASE' });

const ENTRY_KEY = ['pk', 'sk'];
/** Batched requests of one call in flight at once. */
const BATCH_CONCURRENCY = 4;

export class DynamoDbNotificationLog implements NotificationLog {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async acquireLease(
    partition: string,
    holder: string,
    offsets: OffsetRange,
    now: number,
    leaseMs: number,
  ): Promise<LeaseResult> {
    try {
      const { Attributes: previous } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: leaseKey(partition),
          ...held(holder, offsets, now, leaseMs),
          // Free or released, lapsed (its holder crashed or timed out), already ours, or held for offsets that
          // all come before ours: the ESM delivers a partition's later offsets only once the earlier ones
          // succeeded, so that holder is done with them (a lease without `through`, from before it was kept,
          // is only released or lapsed).
          ConditionExpression:
            'attribute_not_exists(pk) OR leaseUntil < :now OR holder = :holder OR through < :first',
          // Who held it before, at no extra request: the caller decides from it whether its log read is current.
          ReturnValues: 'ALL_OLD',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      );
      return {
        acquired: true,
        leaseUntil: now + leaseMs,
        ...(previous
          ? {
              previous: {
                ...(previous.holder !== undefined ? { holder: String(previous.holder) } : {}),
                ...(previous.through !== undefined ? { through: Number(previous.through) } : {}),
              },
            }
          : {}),
      };
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      // The error carries the blocking item in wire format (lib-dynamodb does not unmarshall errors); dynalite
      // ignores ReturnValuesOnConditionCheckFailure, so then read it.
      const returned = error.Item as Record<string, { S?: string; N?: string }> | undefined;
      if (returned?.leaseUntil?.N !== undefined) {
        return refused(
          returned.leaseUntil.N,
          returned.holder?.S,
          returned.fromOffset?.N,
          returned.through?.N,
        );
      }
      const held = (
        await this.client.send(
          new GetCommand({ TableName: this.tableName, Key: leaseKey(partition), ConsistentRead: true }),
        )
      ).Item;
      return refused(held?.leaseUntil ?? now, held?.holder, held?.fromOffset, held?.through);
    }
  }

  async takeOverLease(
    partition: string,
    from: HeldLease,
    holder: string,
    offsets: OffsetRange,
    now: number,
    leaseMs: number,
  ): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: leaseKey(partition),
          ...held(holder, offsets, now, leaseMs, { ':from': from.holder, ':through': from.through }),
          ConditionExpression: 'holder = :from AND through = :through',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return false;
      throw error;
    }
  }

  async releaseLease(partition: string, holder: string): Promise<void> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: leaseKey(partition),
          UpdateExpression: 'SET leaseUntil = :zero REMOVE holder',
          ConditionExpression: 'holder = :holder',
          ExpressionAttributeValues: { ':holder': holder, ':zero': 0 },
        }),
      );
    } catch (error) {
      // Not ours any more (it lapsed and another invocation took it): nothing to release.
      if (!isConditionalCheckFailure(error)) throw error;
    }
  }

  async entries(messages: NotificationMessage[]): Promise<Map<string, LogEntry>> {
    const byKey = new Map(messages.map((message) => [keyText(entryKey(message)), message.notificationId]));
    const found = new Map<string, LogEntry>();
    // Partitions of one invocation read at once: their reads share requests (shared/dynamodb.ts).
    const items = await batchGetAll(
      this.client,
      this.tableName,
      [...byKey.keys()].map((key) => JSON.parse(key)),
      BATCH_CONCURRENCY,
      ['status', 'attempts', 'messageId'],
    );
    for (const item of items) {
      const id = byKey.get(keyText({ pk: item.pk, sk: item.sk }));
      if (id === undefined) continue;
      found.set(id, {
        status: item.status as LogEntry['status'],
        attempts: Number(item.attempts ?? 0),
        ...(item.messageId ? { messageId: String(item.messageId) } : {}),
      });
    }
    return found;
  }

  async record(records: LogRecord[], now: number): Promise<void> {
    const at = new Date(now).toISOString();
    const items = records.map(({ message, ...outcome }) => ({
      ...entryKey(message),
      notificationId: message.notificationId,
      eventSource: message.eventSource,
      eventId: message.eventId,
      eventType: message.eventType,
      recipientId: message.recipient.id,
      recipientKind: message.recipient.kind,
      channel: message.channel,
      template: message.template,
      subject: message.subject,
      body: message.body,
      status: outcome.status,
      attempts: outcome.attempts,
      ...(outcome.status === 'SENT'
        ? { messageId: outcome.messageId, sentAt: at }
        : { lastError: outcome.error, failedAt: at }),
    }));
    await batchPutAll(this.client, this.tableName, ENTRY_KEY, items, BATCH_CONCURRENCY);
  }
}

/** The lease held by `holder` for `offsets` until now + leaseMs; `values`: those its condition uses besides. */
function held(
  holder: string,
  offsets: OffsetRange,
  now: number,
  leaseMs: number,
  values: Record<string, unknown> = {},
) {
  return {
    UpdateExpression:
      'SET holder = :holder, leaseUntil = :leaseUntil, acquiredAt = :now, fromOffset = :first, through = :last',
    ExpressionAttributeValues: {
      ':holder': holder,
      ':leaseUntil': now + leaseMs,
      ':now': now,
      ':first': offsets.first,
      ':last': offsets.last,
      ...values,
    },
  };
}

function refused(leaseUntil: unknown, holder: unknown, first: unknown, through: unknown): LeaseResult {
  const offset = (value: unknown) =>
    value !== undefined && Number.isFinite(Number(value)) ? Number(value) : undefined;
  const [from, last] = [offset(first), offset(through)];
  return {
    acquired: false,
    leaseUntil: Number(leaseUntil),
    ...(typeof holder === 'string' ? { holder } : {}),
    ...(from !== undefined ? { first: from } : {}),
    ...(last !== undefined ? { through: last } : {}),
  };
}

function keyText(key: { pk: unknown; sk: unknown }): string {
  return JSON.stringify({ pk: key.pk, sk: key.sk });
}
