import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ClaimResult, DeliveryReceipt, NotificationLog, NotificationMessage } from './ports';

// NotificationsTable: pk NOTIFICATION#<eventId>, sk RECIPIENT#<recipientId>; status SENDING | SENT | FAILED.
const logKey = (message: NotificationMessage) => ({
  pk: `NOTIFICATION#${message.eventId}`,
  sk: `RECIPIENT#${message.recipient.id}`,
});

function isConditionalCheckFailure(error: unknown): boolean {
  return (
    error instanceof ConditionalCheckFailedException ||
    (error instanceof Error && error.name === 'ConditionalCheckFailedException')
  );
}

export class DynamoDbNotificationLog implements NotificationLog {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async claim(message: NotificationMessage, now: number, leaseMs: number): Promise<ClaimResult> {
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: logKey(message),
          UpdateExpression:
            'SET #status = :sending, leaseUntil = :leaseUntil, claimedAt = :now, attempts = if_not_exists(attempts, :zero) + :one, ' +
            'notificationId = :notificationId, eventId = :eventId, eventType = :eventType, recipientId = :recipientId, ' +
            'recipientKind = :recipientKind, channel = :channel, template = :template, subject = :subject, body = :body',
          // New, or failed before, or claimed by a sender whose lease ran out (it crashed or timed out).
          ConditionExpression:
            'attribute_not_exists(pk) OR #status = :failed OR (#status = :sending AND leaseUntil < :now)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':sending': 'SENDING',
            ':failed': 'FAILED',
            ':leaseUntil': now + leaseMs,
            ':now': now,
            ':zero': 0,
            ':one': 1,
            ':notificationId': message.notificationId,
            ':eventId': message.eventId,
            ':eventType': message.eventType,
            ':recipientId': message.recipient.id,
            ':recipientKind': message.recipient.kind,
            ':channel': message.channel,
            ':template': message.template,
            ':subject': message.subject,
            ':body': message.body,
          },
          ReturnValues: 'UPDATED_NEW',
        }),
      );
      return { outcome: 'CLAIMED', attempt: Number(Attributes?.attempts ?? 1) };
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
    }
    // dynalite ignores ReturnValuesOnConditionCheckFailure, so read the entry that blocked the claim.
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: logKey(message), ConsistentRead: true }),
    );
    if (Item?.status === 'SENT') {
      return { outcome: 'ALREADY_SENT', ...(Item.messageId ? { messageId: String(Item.messageId) } : {}) };
    }
    return { outcome: 'IN_PROGRESS', leaseUntil: Number(Item?.leaseUntil ?? now) };
  }

  async markSent(message: NotificationMessage, receipt: DeliveryReceipt, now: number): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: logKey(message),
        UpdateExpression:
          'SET #status = :sent, sentAt = :sentAt, messageId = :messageId REMOVE leaseUntil, lastError',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':sent': 'SENT',
          ':sentAt': new Date(now).toISOString(),
          ':messageId': receipt.messageId,
        },
      }),
    );
  }

  async markFailed(message: NotificationMessage, error: string, now: number): Promise<void> {
    await this.client.send(
      new UpdateCommand({
        TableName: this.tableName,
        Key: logKey(message),
        UpdateExpression: 'SET #status = :failed, lastError = :error, failedAt = :failedAt REMOVE leaseUntil',
        // Never downgrade a SENT entry.
        ConditionExpression: '#status = :sending',
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':failed': 'FAILED',
          ':sending': 'SENDING',
          ':error': error,
          ':failedAt': new Date(now).toISOString(),
        },
      }),
    );
  }
}
