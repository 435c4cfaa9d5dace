// DynamoDB for tests: the stack's dynalite (AWS_ENDPOINT_URL_DYNAMODB from the vitest global setup), or an
// in-process dynalite when a file runs on its own; uniquely named copies of serverless.yml's tables, so test files
// never share state; every item of a table, and a byte-comparable snapshot of it.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { stageTableDefinition, waitUntilTableActive } from '../../local/provision';
import { dynaliteServer } from '../../local/stack/dynalite-server';

let endpoint: Promise<string> | undefined;

/** The endpoint the test setup exported, or an in-process dynalite (once per process) when there is none. */
export function dynamoEndpoint(): Promise<string> {
  endpoint ??= (async () => {
    if (process.env.AWS_ENDPOINT_URL_DYNAMODB) return process.env.AWS_ENDPOINT_URL_DYNAMODB;
    const server = dynaliteServer({ createTableMs: 0 });
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

/** A client and a document client on the test DynamoDB, and the environment a handler needs to reach it. */
export async function localDynamoDb(): Promise<{
  client: DynamoDBClient;
  documents: DynamoDBDocumentClient;
  /** What a handler's environment needs to reach this DynamoDB (region, credentials, endpoint). */
  env: Record<string, string>;
  stop: () => Promise<void>;
}> {
  const url = await dynamoEndpoint();
  const env = {
    AWS_REGION: process.env.AWS_REGION ?? 'eu-west-1',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    AWS_ENDPOINT_URL_DYNAMODB: url,
  };
  const client = new DynamoDBClient({
    endpoint: url,
    region: env.AWS_REGION,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
  });
  const documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  return {
    client,
    documents,
    env,
    stop: async () => {
      client.destroy();
    },
  };
}

let counters = 0;

/**
 * Counts the HTTP requests a client sends (each attempt, retries included), in all and per command: what the
 * request-count tests assert on. Returns the live counter.
 */
export function countRequests(client: Pick<DynamoDBDocumentClient, 'middlewareStack'>): {
  count: number;
  byCommand: Map<string, number>;
} {
  const counter = { count: 0, byCommand: new Map<string, number>() };
  client.middlewareStack.add(
    (next, context) => async (args) => {
      counter.count++;
      const name = String(context.commandName);
      counter.byCommand.set(name, (counter.byCommand.get(name) ?? 0) + 1);
      return next(args);
    },
    { step: 'finalizeRequest', name: `countRequests${++counters}` },
  );
  return counter;
}

/** A document client on the test DynamoDB. */
export async function documentClient(): Promise<DynamoDBDocumentClient> {
  return (await localDynamoDb()).documents;
}

/** A uniquely named copy of one of serverless.yml's tables (IncidentsTable, BillingTable, ...): its name. */
export async function createTable(client: Pick<DynamoDBClient, 'send'>, logicalId: string): Promise<string> {
  const name = `${logicalId}-${randomUUID().slice(0, 8)}`;
  await client.send(new CreateTableCommand(stageTableDefinition(logicalId, name)));
  await waitUntilTableActive(client, name);
  return name;
}

/**
 * An incident's view as IncidentsTable holds it (`INCIDENT#<id>` / `VIEW`), without the key and the outcome stored
 * in the same item: a consistent GetItem.
 */
export async function incidentView(
  documents: Pick<DynamoDBDocumentClient, 'send'>,
  tableName: string,
  incidentId: string,
): Promise<Record<string, unknown> | undefined> {
  const { Item } = await documents.send(
    new GetCommand({
      TableName: tableName,
      Key: { pk: `INCIDENT#${incidentId}`, sk: 'VIEW' },
      ConsistentRead: true,
    }),
  );
  if (!Item) return undefined;
  const { pk: _pk, sk: _sk, outcome: _outcome, validation: _validation, ...view } = Item;
  return view;
}

/** Every item of a table, page by page, read consistently. */
export async function scanAll(
  documents: DynamoDBDocumentClient,
  tableName: string,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await documents.send(
      new ScanCommand({ TableName: tableName, ExclusiveStartKey: startKey, ConsistentRead: true }),
    );
    items.push(...((page.Items ?? []) as Record<string, unknown>[]));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Every item of a table, sorted by key, with sorted attribute names: a byte-comparable snapshot. */
export async function snapshot(documents: DynamoDBDocumentClient, tableName: string): Promise<string> {
  const items = await scanAll(documents, tableName);
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
