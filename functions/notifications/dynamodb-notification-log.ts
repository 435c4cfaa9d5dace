import {
  BatchGetCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { chunk, mapBounded } from '../../shared/concurrency';
import { eventKey } from '../../shared/contracts/cloudevents';
import { isConditionalCheckFailure } from '../../shared/dynamodb';
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

/** DynamoDB's limits per BatchGetItem and BatchWriteItem request. */
const GET_BATCH = 100;
const WRITE_BATCH = 25;
/** Batched requests of one call in flight at once. */
const BATCH_CONCURRENCY = 4;
/** Unprocessed keys/items (throttling) are retried this many times, with backoff, before the call fails. */
const UNPROCESSED_RETRIES = 8;

const pause = (attempt: number) => new Promise((resolve) => setTimeout(resolve, 25 * 2 ** attempt));

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
    await mapBounded(chunk([...byKey.keys()], GET_BATCH), BATCH_CONCURRENCY, async (keys) => {
      let pending: Record<string, unknown>[] = keys.map((key) => JSON.parse(key));
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > UNPROCESSED_RETRIES)
          throw new Error(`BatchGetItem left ${pending.length} keys unprocessed`);
        if (attempt > 0) await pause(attempt);
        const response = await this.client.send(
          new BatchGetCommand({
            RequestItems: {
              [this.tableName]: {
                Keys: pending,
                ConsistentRead: true,
                ProjectionExpression: 'pk, sk, #status, attempts, messageId',
                ExpressionAttributeNames: { '#status': 'status' },
              },
            },
          }),
        );
        for (const item of response.Responses?.[this.tableName] ?? []) {
          const id = byKey.get(keyText({ pk: item.pk, sk: item.sk }));
          if (id === undefined) continue;
          found.set(id, {
            status: item.status,
            attempts: Number(item.attempts ?? 0),
            ...(item.messageId ? { messageId: String(item.messageId) } : {}),
          });
        }
        pending = response.UnprocessedKeys?.[this.tableName]?.Keys ?? [];
      }
    });
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
    await mapBounded(chunk(items, WRITE_BATCH), BATCH_CONCURRENCY, async (batch) => {
      let pending = batch.map((Item) => ({ PutRequest: { Item } }));
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > UNPROCESSED_RETRIES)
          throw new Error(`BatchWriteItem left ${pending.length} items unprocessed`);
        if (attempt > 0) await pause(attempt);
        const response = await this.client.send(
          new BatchWriteCommand({ RequestItems: { [this.tableName]: pending } }),
        );
        pending = (response.UnprocessedItems?.[this.tableName] ?? []) as typeof pending;
      }
    });
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
