import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { describe, expect, it } from 'vitest';
import { batchGetAll, batchPutAll } from '../../../shared/dynamodb';
import { isStoreOutage } from '../../../shared/msk/errors';

// DynamoDB may answer a batch request with part of it unprocessed (capacity); dynalite never does, so the resend
// path is driven here by a client that holds back what it is told to.
type Input = { RequestItems: Record<string, { Keys?: unknown[] } | unknown[]> };

function holdingBack(table: string, heldPerRequest: number[]) {
  const sent: number[] = [];
  const stored: unknown[] = [];
  const client = {
    send: async (command: { input: Input }) => {
      const request = command.input.RequestItems[table];
      const hold = heldPerRequest[sent.length] ?? 0;
      if (Array.isArray(request)) {
        sent.push(request.length);
        stored.push(...request.slice(hold));
        return { UnprocessedItems: hold > 0 ? { [table]: request.slice(0, hold) } : {} };
      }
      const keys = (request as { Keys: unknown[] }).Keys;
      sent.push(keys.length);
      return {
        Responses: { [table]: keys.slice(hold) },
        UnprocessedKeys: hold > 0 ? { [table]: { Keys: keys.slice(0, hold) } } : {},
      };
    },
  } as unknown as DynamoDBDocumentClient;
  return { client, sent, stored };
}

const keys = (n: number) => Array.from({ length: n }, (_, i) => ({ pk: `k${i}` }));

describe('batchGetAll and batchPutAll resend what DynamoDB left unprocessed', () => {
  it('reads every key, resending the unprocessed ones', async () => {
    const { client, sent } = holdingBack('T', [3, 1]);
    const items = await batchGetAll(client, 'T', keys(10), 1);
    expect(sent).toEqual([10, 3, 1]);
    expect(items.map((item) => item.pk).sort()).toEqual(
      keys(10)
        .map((k) => k.pk)
        .sort(),
    );
  });

  it('writes every item, resending the unprocessed ones', async () => {
    const { client, sent, stored } = holdingBack('T', [5, 2]);
    await batchPutAll(client, 'T', keys(20), 1);
    expect(sent).toEqual([20, 5, 2]);
    expect(stored).toHaveLength(20);
  });

  it('gives up after its attempts with an error classified as an outage (retried, never a record failure)', async () => {
    const { client, sent } = holdingBack('T', Array(20).fill(1));
    const failure = await batchPutAll(client, 'T', keys(2), 1).catch((error: unknown) => error);
    expect(sent).toHaveLength(8);
    expect(String(failure)).toContain('still unprocessed after 8 attempts');
    expect(isStoreOutage(failure)).toBe(true);
  });
});
