import {
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';

/** DynamoDB's limit per BatchWriteItem request. */
const WRITE_BATCH = 25;

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
