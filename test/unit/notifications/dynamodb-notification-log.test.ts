// The DynamoDB adapter's refused lease as DynamoDB answers it: the blocking item in the error, in wire format
// (ReturnValuesOnConditionCheckFailure), which dynalite never returns (its integration test reads the item back).
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { DynamoDbNotificationLog } from '../../../functions/notifications/dynamodb-notification-log';

/** A client whose every request is refused by the condition, with `item` attached as DynamoDB sends it. */
function refusingClient(item: Record<string, unknown>) {
  const sent: unknown[] = [];
  const client = {
    send: async (command: unknown) => {
      sent.push(command);
      throw Object.assign(new Error('The conditional request failed'), {
        name: 'ConditionalCheckFailedException',
        Item: item,
      });
    },
  };
  return { client: client as unknown as DynamoDBDocumentClient, sent };
}

describe('DynamoDbNotificationLog, a lease refused by DynamoDB', () => {
  it('names the holder and its offsets from the item returned with the refusal, with no second request', async () => {
    const { client, sent } = refusingClient({
      pk: { S: 'LEASE#topic-0' },
      sk: { S: 'LEASE' },
      holder: { S: 'req-1' },
      leaseUntil: { N: '31000' },
      fromOffset: { N: '100' },
      through: { N: '199' },
    });
    const log = new DynamoDbNotificationLog(client, 'notifications');
    expect(await log.acquireLease('topic-0', 'req-2', { first: 150, last: 260 }, 2_000, 30_000)).toEqual({
      acquired: false,
      leaseUntil: 31_000,
      holder: 'req-1',
      first: 100,
      through: 199,
    });
    expect(sent).toHaveLength(1);
  });

  it('a lease written before it kept its offsets: refused without them, so it is never taken over', async () => {
    const { client } = refusingClient({ holder: { S: 'old' }, leaseUntil: { N: '31000' } });
    const log = new DynamoDbNotificationLog(client, 'notifications');
    expect(await log.acquireLease('topic-0', 'req-2', { first: 0, last: 9 }, 2_000, 30_000)).toEqual({
      acquired: false,
      leaseUntil: 31_000,
      holder: 'old',
    });
  });
});
