import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { stageTableDefinition, waitUntilTableActive } from '../../../local/provision';

interface Dynalite {
  listen(port: number, host: string, callback: (error?: Error) => void): void;
  address(): AddressInfo;
  close(callback: () => void): void;
}

/**
 * The DynamoDB endpoint for integration tests: the stack's (AWS_ENDPOINT_URL_DYNAMODB from the vitest
 * global setup) when there is one, otherwise an in-process dynalite on 127.0.0.1 started for this file.
 */
export async function localDynamoDb(): Promise<{
  client: DynamoDBClient;
  documents: DynamoDBDocumentClient;
  /** What a handler's environment needs to reach this DynamoDB (region, credentials, endpoint). */
  env: Record<string, string>;
  stop: () => Promise<void>;
}> {
  let stop = async () => {};
  let endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB;
  if (!endpoint) {
    // dynalite ships no types; load it through require with the little of its API used here.
    const dynalite = createRequire(import.meta.url)('dynalite') as (options: {
      createTableMs: number;
    }) => Dynalite;
    const server = dynalite({ createTableMs: 0 });
    await new Promise<void>((resolve, reject) =>
      server.listen(0, '127.0.0.1', (error) => (error ? reject(error) : resolve())),
    );
    endpoint = `http://127.0.0.1:${server.address().port}`;
    stop = () => new Promise<void>((resolve) => server.close(resolve));
  }
  const env = {
    AWS_REGION: process.env.AWS_REGION ?? 'eu-west-1',
    AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID ?? 'local',
    AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    AWS_ENDPOINT_URL_DYNAMODB: endpoint,
  };
  const client = new DynamoDBClient({
    endpoint,
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
      await stop();
    },
  };
}

/** Creates a table with a unique name: `pk`/`sk` (read models) or `id` (Powertools idempotency). */
/** A uniquely named copy of one of serverless.yml's tables (IncidentsTable, NotificationsIdempotencyTable, ...). */
export async function createTable(client: DynamoDBClient, logicalId: string): Promise<string> {
  const name = `${logicalId}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  await client.send(new CreateTableCommand(stageTableDefinition(logicalId, name)));
  await waitUntilTableActive(client, name);
  return name;
}

/** Enough of a Lambda context for Powertools' registerLambdaContext. */
export function lambdaContext(functionName: string, remainingMs = 60_000) {
  const deadline = Date.now() + remainingMs;
  return {
    callbackWaitsForEmptyEventLoop: false,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:000000000000:function:${functionName}`,
    memoryLimitInMB: '512',
    awsRequestId: `req-${Math.random().toString(36).slice(2)}`,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: 'local',
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => {},
    fail: () => {},
    succeed: () => {},
  };
}
