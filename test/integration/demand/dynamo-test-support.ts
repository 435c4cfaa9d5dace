import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, type CreateTableCommandInput, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { stageTableDefinition, waitUntilTableActive } from '../../../local/provision';

/**
 * The DynamoDB stand-in for the demand and billing integration tests: the endpoint the test setup exported
 * (AWS_ENDPOINT_URL_DYNAMODB), or an in-process dynalite when the suite runs on its own.
 */
let endpoint: Promise<string> | undefined;

export function dynamoEndpoint(): Promise<string> {
  endpoint ??= (async () => {
    if (process.env.AWS_ENDPOINT_URL_DYNAMODB) return process.env.AWS_ENDPOINT_URL_DYNAMODB;
    // dynalite ships no types: load it through require with the little of its API used here.
    const dynalite = createRequire(import.meta.url)('dynalite') as (options: {
      createTableMs: number;
    }) => import('node:net').Server;
    const server = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    server.unref();
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.AWS_ENDPOINT_URL_DYNAMODB = url;
    process.env.AWS_REGION ??= 'eu-west-1';
    process.env.AWS_ACCESS_KEY_ID ??= 'test';
    process.env.AWS_SECRET_ACCESS_KEY ??= 'test';
    return url;
  })();
  return endpoint;
}

export async function documentClient(): Promise<DynamoDBDocumentClient> {
  const url = await dynamoEndpoint();
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({
      endpoint: url,
      region: process.env.AWS_REGION ?? 'eu-west-1',
      credentials: {
        accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test',
        secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
      },
    }),
    { marshallOptions: { removeUndefinedValues: true } },
  );
}

const stageTable =
  (logicalId: string) =>
  (tableName: string): CreateTableCommandInput =>
    stageTableDefinition(logicalId, tableName);

export const demandTableDefinition = stageTable('DemandTable');
export const billingTableDefinition = stageTable('BillingTable');

/** Creates a uniquely named table so test files never share state. */
export async function createUniqueTable(
  client: DynamoDBDocumentClient,
  prefix: string,
  definition: (name: string) => CreateTableCommandInput,
): Promise<string> {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateTableCommand(definition(name)));
  await waitUntilTableActive(client, name);
  return name;
}

/** Every item of a table, sorted by key, with sorted attribute names: a byte-comparable snapshot. */
export async function snapshot(client: DynamoDBDocumentClient, tableName: string): Promise<string> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({ TableName: tableName, ExclusiveStartKey: startKey, ConsistentRead: true }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  const canonical = (value: unknown): unknown => {
    if (value instanceof Set) return [...value].map(canonical).sort();
    if (Array.isArray(value)) return value.map(canonical);
    if (value && typeof value === 'object') {
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
      );
    }
    return value;
  };
  items.sort((a, b) => `${a.pk}|${a.sk}`.localeCompare(`${b.pk}|${b.sk}`));
  return JSON.stringify(items.map(canonical), null, 1);
}
