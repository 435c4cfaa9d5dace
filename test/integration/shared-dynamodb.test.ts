import {
  BatchExecuteStatementCommand,
  BatchWriteCommand,
  type DynamoDBDocumentClient,
  PutCommand,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  batchGetAll,
  batchPutAll,
  deleteAllItems,
  insertAll,
  isConditionalCheckFailure,
} from '../../shared/dynamodb';
import { isBatchLevelError, isStoreOutage } from '../../shared/msk/errors';
import { countRequests, createTable, documentClient, localDynamoDb } from '../support/dynamodb';

let client: DynamoDBDocumentClient;

beforeAll(async () => {
  client = await documentClient();
});

async function count(tableName: string): Promise<number> {
  let total = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        Select: 'COUNT',
        ExclusiveStartKey: startKey,
        ConsistentRead: true,
      }),
    );
    total += page.Count ?? 0;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return total;
}

describe('shared DynamoDB kit against dynalite', () => {
  it('deleteAllItems empties a table over several scan pages and batches of 25', async () => {
    const table = await createTable(client, 'DemandTable');
    // 70 items of ~20 KB: more than one 1 MB scan page and three write batches.
    const padding = 'x'.repeat(20_000);
    const items = Array.from({ length: 70 }, (_, i) => ({ pk: `ZONE#${i % 7}`, sk: `HOUR#${i}`, padding }));
    for (let i = 0; i < items.length; i += 25) {
      const requests = items.slice(i, i + 25).map((Item) => ({ PutRequest: { Item } }));
      await client.send(new BatchWriteCommand({ RequestItems: { [table]: requests } }));
    }
    const firstPage = await client.send(new ScanCommand({ TableName: table, ConsistentRead: true }));
    expect(firstPage.LastEvaluatedKey).toBeDefined();

    expect(await deleteAllItems(client, table, ['pk', 'sk'])).toBe(70);
    expect(await count(table)).toBe(0);
    expect(await deleteAllItems(client, table, ['pk', 'sk'])).toBe(0);
  });

  it('isConditionalCheckFailure recognises a refused conditional write and nothing else', async () => {
    const table = await createTable(client, 'DemandTable');
    const Item = { pk: 'ZONE#z', sk: 'SUPPLY', available: 3 };
    await client.send(new PutCommand({ TableName: table, Item }));
    const refused = await client
      .send(
        new PutCommand({
          TableName: table,
          Item: { ...Item, available: 4 },
          ConditionExpression: 'attribute_not_exists(pk)',
          ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
        }),
      )
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(isConditionalCheckFailure(refused)).toBe(true);
    expect(isConditionalCheckFailure(new Error('ResourceNotFoundException'))).toBe(false);
    expect(isConditionalCheckFailure('ConditionalCheckFailedException')).toBe(false);
  });

  it('reads and writes begun in one tick share one request each, and each caller gets what is its own', async () => {
    // A client of its own, counting the operations it sends.
    const { client: low, documents, stop } = await localDynamoDb();
    const operations: string[] = [];
    low.middlewareStack.add(
      (next, context) => (args) => {
        operations.push(String(context.commandName));
        return next(args);
      },
      { step: 'initialize', name: 'countOperations' },
    );
    try {
      const table = await createTable(documents, 'IncidentsTable');
      const views = [1, 2, 3].map((n) => ({ pk: `INCIDENT#${n}`, sk: 'VIEW', outcome: `o${n}`, extra: 'x' }));
      const reviews = [1, 2].map((n) => ({ pk: `INCIDENT#${n}`, sk: 'REVIEW', status: 'OPEN' }));
      operations.length = 0;
      await Promise.all([
        batchPutAll(documents, table, ['pk', 'sk'], views),
        batchPutAll(documents, table, ['pk', 'sk'], reviews),
      ]);
      expect(operations).toEqual(['BatchWriteItemCommand']);

      operations.length = 0;
      const [readViews, readReviews] = await Promise.all([
        batchGetAll(
          documents,
          table,
          views.map(({ pk, sk }) => ({ pk, sk })),
          4,
          ['outcome'],
        ),
        batchGetAll(
          documents,
          table,
          [1, 2, 3].map((n) => ({ pk: `INCIDENT#${n}`, sk: 'REVIEW' })),
          4,
          ['status'],
        ),
      ]);
      expect(operations).toEqual(['BatchGetItemCommand']);
      const byPk = (items: Record<string, unknown>[]) =>
        [...items].sort((a, b) => String(a.pk).localeCompare(String(b.pk)));
      // Each read gets its own items; a projection shared by two reads brings the other's attributes, never `extra`.
      expect(byPk(readViews).map(({ pk, sk, outcome, extra }) => ({ pk, sk, outcome, extra }))).toEqual(
        views.map(({ pk, sk, outcome }) => ({ pk, sk, outcome, extra: undefined })),
      );
      expect(byPk(readReviews).map(({ pk, status }) => ({ pk, status }))).toEqual(
        reviews.map(({ pk, status }) => ({ pk, status })),
      );
    } finally {
      await stop();
    }
  });

  it('insertAll: conditional puts 25 a request through the stand-in; a taken key answers false, the item stays as it was', async () => {
    const table = await createTable(client, 'IncidentsTable');
    const item = (i: number, decision: string) => ({
      pk: `INCIDENT#i${i}`,
      sk: 'RESOLUTION',
      decision,
      "reviewer's note": `it's ${decision}`,
      reasons: ['SEVERITY_HIGH', 'LOW_CONFIDENCE'],
      score: { confidence: 0.5, at: [1, 2] },
    });
    const first = Array.from({ length: 30 }, (_, i) => item(i, 'CONFIRMED'));
    // A client of its own, counting the requests it sends.
    const { documents, stop } = await localDynamoDb();
    const requests = countRequests(documents);
    try {
      expect(await outcomes(insertAll(documents, table, first))).toEqual(Array(30).fill(true));
    } finally {
      await stop();
    }
    expect(Object.fromEntries(requests.byCommand)).toEqual({ BatchExecuteStatementCommand: 2 });

    // i20..i29 taken: refused, and what the first call put is what stays; i30..i39 new.
    const second = Array.from({ length: 20 }, (_, i) => item(i + 20, 'DISMISSED'));
    expect(await outcomes(insertAll(client, table, second))).toEqual([
      ...Array(10).fill(false),
      ...Array(10).fill(true),
    ]);
    const stored = await batchGetAll(
      client,
      table,
      [20, 35].map((i) => ({ pk: `INCIDENT#i${i}`, sk: 'RESOLUTION' })),
    );
    expect(stored.sort((a, b) => String(a.pk).localeCompare(String(b.pk)))).toEqual([
      item(20, 'CONFIRMED'),
      item(35, 'DISMISSED'),
    ]);
  });

  it('insertAll: an item the table refuses fails alone, as its own fault; a missing table fails as the deployment’s', async () => {
    const table = await createTable(client, 'IncidentsTable');
    const results = await insertAll(client, table, [
      { pk: 'INCIDENT#ok', sk: 'RESOLUTION' },
      { pk: 'INCIDENT#no-sort-key' },
      { pk: 'INCIDENT#ok-2', sk: 'RESOLUTION' },
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    const refused = (results[1] as PromiseRejectedResult).reason as Error;
    expect(refused.message).toMatch(/INSERT into IncidentsTable-\w+ refused: ValidationError: .*sk/);
    expect(isBatchLevelError(refused)).toBe(false);

    const [missing] = await insertAll(client, 'NoSuchTable', [{ pk: 'x', sk: 'y' }]);
    expect(isBatchLevelError((missing as PromiseRejectedResult).reason)).toBe(true);
    expect(isStoreOutage((missing as PromiseRejectedResult).reason)).toBe(false);
  });

  it('the stand-in refuses a statement it does not run, naming itself and the statement', async () => {
    const refused = await client
      .send(
        new BatchExecuteStatementCommand({
          Statements: [{ Statement: `UPDATE "IncidentsTable" SET decision = 'X' WHERE pk = 'INCIDENT#1'` }],
        }),
      )
      .catch((error: Error) => error);
    expect(refused).toMatchObject({ name: 'ValidationException' });
    expect((refused as Error).message).toContain(
      'Statements[0]: this local stand-in (local/stack/dynalite-server.ts)',
    );
  });
});

const outcomes = async (results: Promise<PromiseSettledResult<boolean>[]>) =>
  (await results).map((r) => (r.status === 'fulfilled' ? r.value : r.reason));
