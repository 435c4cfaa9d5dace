// The part of the Lambda API that covers event source mappings (List, Get, Update Enabled), so
// @aws-sdk/client-lambda with an `endpoint` override drives the emulator as it drives AWS.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EsmEmulator } from '../esm/emulator';
import type { EventSourceMapping } from '../esm/mapping';

const PREFIX = '/2015-03-31/event-source-mappings';

export interface LambdaApiServer {
  url: string;
  close(): Promise<void>;
}

export async function startLambdaApi(
  emulator: EsmEmulator,
  options: { port?: number; region?: string; accountId?: string } = {},
): Promise<LambdaApiServer> {
  const region = options.region ?? process.env.AWS_REGION ?? 'eu-west-1';
  const accountId = options.accountId ?? '000000000000';
  const server: Server = createServer((request, response) => {
    handle(emulator, request, response, { region, accountId }).catch((error: Error) =>
      send(response, 500, { Type: 'Service', message: error.message }, 'ServiceException'),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

interface Account {
  region: string;
  accountId: string;
}

async function handle(
  emulator: EsmEmulator,
  request: IncomingMessage,
  response: ServerResponse,
  account: Account,
) {
  const url = new URL(request.url ?? '/', 'http://localhost');
  const path = url.pathname.replace(/\/$/, '');
  if (request.method === 'GET' && path === PREFIX) {
    const functionName = url.searchParams.get('FunctionName');
    const eventSourceArn = url.searchParams.get('EventSourceArn');
    const mappings = emulator.mappings.filter(
      (m) =>
        (!functionName || matchesFunction(m, functionName)) &&
        (!eventSourceArn || m.definition.eventSourceArn === eventSourceArn),
    );
    send(response, 200, { EventSourceMappings: mappings.map((m) => describe(m, account)) });
    return;
  }
  const uuid = path.startsWith(`${PREFIX}/`) ? decodeURIComponent(path.slice(PREFIX.length + 1)) : undefined;
  const mapping = uuid ? emulator.find(uuid) : undefined;
  if (uuid && !mapping) {
    send(
      response,
      404,
      { Type: 'User', Message: `The resource you requested does not exist. (UUID ${uuid})` },
      'ResourceNotFoundException',
    );
    return;
  }
  if (mapping && request.method === 'GET') {
    send(response, 200, describe(mapping, account));
    return;
  }
  if (mapping && request.method === 'PUT') {
    const body = JSON.parse((await readBody(request)) || '{}') as Record<string, unknown>;
    const unsupported = Object.keys(body).filter((key) => key !== 'Enabled' && key !== 'FunctionName');
    if (unsupported.length > 0) {
      send(
        response,
        400,
        { Type: 'User', message: `The local endpoint only updates Enabled, not ${unsupported.join(', ')}` },
        'InvalidParameterValueException',
      );
      return;
    }
    if (typeof body.Enabled === 'boolean') emulator.setEnabled(mapping.definition.uuid, body.Enabled);
    send(response, 202, describe(mapping, account));
    return;
  }
  send(
    response,
    404,
    { message: `Not emulated: ${request.method} ${url.pathname}` },
    'ResourceNotFoundException',
  );
}

function matchesFunction(mapping: EventSourceMapping, name: string): boolean {
  const { functionName, functionKey } = mapping.definition;
  // A name, a full ARN or a partial ARN ("123456789012:function:name"), optionally with a qualifier.
  const bare = name.includes(':function:') ? (name.split(':function:')[1]?.split(':')[0] ?? '') : name;
  return bare === functionName || bare === functionKey;
}

function describe(mapping: EventSourceMapping, account: Account) {
  const d = mapping.definition;
  return {
    UUID: d.uuid,
    StartingPosition: d.startingPosition,
    ...(d.startingPositionTimestamp === undefined
      ? {}
      : { StartingPositionTimestamp: d.startingPositionTimestamp }),
    BatchSize: d.batchSize,
    MaximumBatchingWindowInSeconds: Math.round(d.maximumBatchingWindowMs / 1000),
    EventSourceArn: d.eventSourceArn,
    FunctionArn: `arn:aws:lambda:${account.region}:${account.accountId}:function:${d.functionName}`,
    LastModified: mapping.lastModified.getTime() / 1000,
    State: mapping.state,
    StateTransitionReason: 'USER_INITIATED',
    // AWS keeps State Enabled while its pollers cannot reach the cluster and says so here.
    LastProcessingResult: mapping.lastProcessingResult,
    Topics: [d.topic],
    AmazonManagedKafkaEventSourceConfig: { ConsumerGroupId: d.consumerGroupId },
    ...(d.filterPatterns.length > 0
      ? { FilterCriteria: { Filters: d.filterPatterns.map((p) => ({ Pattern: JSON.stringify(p) })) } }
      : {}),
    ...(d.destination ? { DestinationConfig: { OnFailure: { Destination: d.destination.arn } } } : {}),
    MaximumRetryAttempts: d.maximumRetryAttempts,
    MaximumRecordAgeInSeconds: d.maximumRecordAgeInSeconds,
    BisectBatchOnFunctionError: d.bisectBatchOnFunctionError,
    FunctionResponseTypes: d.reportBatchItemFailures ? ['ReportBatchItemFailures'] : [],
  };
}

function send(response: ServerResponse, status: number, body: unknown, errorType?: string): void {
  response.writeHead(status, {
    'content-type': 'application/json',
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  response.end(JSON.stringify(body));
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
