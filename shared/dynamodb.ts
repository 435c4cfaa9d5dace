import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { chunk, mapBounded } from './concurrency';

/** DynamoDB's limit per BatchWriteItem request. */
export const WRITE_BATCH = 25;

/**
 * A conditional write or check that DynamoDB refused: the expected outcome of a fence or a claim, not a fault.
 * Matched by name because the document client and the low-level client both raise it under that name; with
 * ReturnValuesOnConditionCheckFailure the refused item rides along as `Item`.
 */
export function isConditionalCheckFailure(
  error: unknown,
): error is Error & { Item?: Record<string, unknown> } {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/**
 * Scans a table (consistent reads, keys only) and deletes every item in batches of 25, resending the unprocessed
 * ones. The first step of a read-model rebuild; returns how many items it deleted.
 */
export async function deleteAllItems(
  client: DynamoDBDocumentClient,
  tableName: string,
  keyAttributes: readonly string[],
): Promise<number> {
  let deleted = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ProjectionExpression: keyAttributes.map((_, i) => `#k${i}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(keyAttributes.map((name, i) => [`#k${i}`, name])),
        ExclusiveStartKey: startKey,
        ConsistentRead: true,
      }),
    );
    const keys = page.Items ?? [];
    for (let i = 0; i < keys.length; i += WRITE_BATCH) {
      let requests: unknown[] | undefined = keys
        .slice(i, i + WRITE_BATCH)
        .map((key) => ({ DeleteRequest: { Key: key } }));
      while (requests && requests.length > 0) {
        const result: BatchWriteCommandOutput = await client.send(
          new BatchWriteCommand({ RequestItems: { [tableName]: requests as never } }),
        );
        requests = result.UnprocessedItems?.[tableName];
      }
    }
    deleted += keys.length;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}

/** DynamoDB's limit per BatchGetItem request. */
const GET_BATCH = 100;
/** A batch request's unprocessed keys or items (throttling) are resent this many times, with backoff. */
const UNPROCESSED_ATTEMPTS = 8;

const unprocessedBackoff = (attempt: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.min(25 * 2 ** attempt, 1_000)));

/**
 * What DynamoDB's keeping part of a batch request back means: capacity. Named like throttling so it is
 * classified as an outage (retried inside the invocation), not as a record's fault.
 */
function stillUnprocessed(count: number): Error {
  const error = new Error(
    `${count} keys or items of a batch request still unprocessed after ${UNPROCESSED_ATTEMPTS} attempts`,
  );
  error.name = 'ProvisionedThroughputExceededException';
  return error;
}

/**
 * Reads `keys` of one table with consistent BatchGetItem requests of 100 keys, `concurrency` requests in
 * flight, resending unprocessed keys with backoff. Items come back in no particular order; with `attributes`,
 * only those (a projection: fewer bytes to send and to unmarshal).
 */
export async function batchGetAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  concurrency = 4,
  attributes?: readonly string[],
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  const projection = attributes
    ? {
        ProjectionExpression: attributes.map((_, i) => `#a${i}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(attributes.map((name, i) => [`#a${i}`, name])),
      }
    : {};
  await mapBounded(chunk(keys, GET_BATCH), concurrency, async (part) => {
    let pending: Record<string, unknown>[] | undefined = part;
    for (let attempt = 1; pending && pending.length > 0; attempt++) {
      if (attempt > UNPROCESSED_ATTEMPTS) throw stillUnprocessed(pending.length);
      if (attempt > 1) await unprocessedBackoff(attempt);
      const result: BatchGetCommandOutput = await client.send(
        new BatchGetCommand({
          RequestItems: { [tableName]: { Keys: pending, ConsistentRead: true, ...projection } },
        }),
      );
      items.push(...(result.Responses?.[tableName] ?? []));
      pending = result.UnprocessedKeys?.[tableName]?.Keys;
    }
  });
  return items;
}

/**
 * Puts `items` into one table with BatchWriteItem requests of 25 (no two with the same key), `concurrency`
 * requests in flight, resending unprocessed items with backoff. Unconditional: for writes that are right
 * whoever wrote first.
 */
export async function batchPutAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  items: readonly Record<string, unknown>[],
  concurrency = 4,
): Promise<void> {
  await mapBounded(chunk(items, WRITE_BATCH), concurrency, async (part) => {
    let pending: Record<string, unknown>[] | undefined = part.map((Item) => ({ PutRequest: { Item } }));
    for (let attempt = 1; pending && pending.length > 0; attempt++) {
      if (attempt > UNPROCESSED_ATTEMPTS) throw stillUnprocessed(pending.length);
      if (attempt > 1) await unprocessedBackoff(attempt);
      const result: BatchWriteCommandOutput = await client.send(
        new BatchWriteCommand({ RequestItems: { [tableName]: pending as never } }),
      );
      pending = result.UnprocessedItems?.[tableName] as Record<string, unknown>[] | undefined;
    }
  });
}
