import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mapBounded } from '../../shared/concurrency';
import type { NotificationChannel, NotificationMessage, SendOutcome } from './ports';

/** Partition of the outbox items in the notifications table (local runs only, so one partition is fine). */
export const OUTBOX_PARTITION = 'OUTBOX';

export interface OutboxEntry extends NotificationMessage {
  deliveredAt: string;
}

/**
 * The local channel: "delivers" a message by writing it to the notifications table, where `dev` shows it
 * (`listOutbox`). Keyed by notification id with a conditional write, so a repeated delivery is a no-op.
 */
export class OutboxChannel implements NotificationChannel {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    private readonly clock: () => number = Date.now,
    private readonly concurrency = 8,
  ) {}

  send(messages: NotificationMessage[]): Promise<SendOutcome[]> {
    return mapBounded(messages, this.concurrency, async (message): Promise<SendOutcome> => {
      try {
        return { ok: true, receipt: await this.deliver(message) };
      } catch (error) {
        return {
          ok: false,
          error: error instanceof Error ? error : new Error(String(error)),
          permanent: false,
        };
      }
    });
  }

  private async deliver(message: NotificationMessage) {
    const messageId = `outbox:${message.notificationId}`;
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: {
            pk: OUTBOX_PARTITION,
            sk: `MESSAGE#${message.notificationId}`,
            ...message,
            deliveredAt: new Date(this.clock()).toISOString(),
          },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      const duplicate =
        error instanceof ConditionalCheckFailedException ||
        (error instanceof Error && error.name === 'ConditionalCheckFailedException');
      if (!duplicate) throw error;
    }
    return { messageId };
  }
}

/** Everything in the outbox, oldest first: what `dev` prints. */
export async function listOutbox(client: DynamoDBDocumentClient, tableName: string): Promise<OutboxEntry[]> {
  const entries: OutboxEntry[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': OUTBOX_PARTITION },
        ...(startKey ? { ExclusiveStartKey: startKey } : {}),
      }),
    );
    for (const item of page.Items ?? []) {
      const { pk: _pk, sk: _sk, ...entry } = item;
      entries.push(entry as OutboxEntry);
    }
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return entries.sort((a, b) => a.deliveredAt.localeCompare(b.deliveredAt));
}
