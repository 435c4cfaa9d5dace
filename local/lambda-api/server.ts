// The part of the Lambda API that covers event source mappings (List, Get, Update Enabled) and Invoke
// (RequestResponse), so @aws-sdk/client-lambda with an `endpoint` override drives the emulator as it drives AWS.
// It answers only requests addressed to 127.0.0.1 or localhost on its own port (a web page in the developer's
// browser could otherwise reach it through DNS rebinding) and reads bounded bodies.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { MAX_PAYLOAD_BYTES } from '../esm/batcher';
import type { EsmEmulator } from '../esm/emulator';
import type { EventSourceMapping, MappingState } from '../esm/mapping';

const PREFIX = '/2015-03-31/event-source-mappings';
const INVOKE = /^\/2015-03-31\/functions\/([^/]+)\/invocations$/;

/** An UpdateEventSourceMapping body is a few hundred bytes. */
export const MAX_UPDATE_BYTES = 64 * 1024;

class BodyTooLarge extends Error {
  constructor(readonly limit: number) {
    super(`Request must be smaller than ${limit} bytes`);
  }
}

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
  let allowedHosts = new Set<string>();
  const server: Server = createServer((request, response) => {
    if (!allowedHosts.has((request.headers.host ?? '').toLowerCase())) {
      refuse(
        response,
        403,
        `Host "${request.headers.host ?? ''}" is not this endpoint`,
        'AccessDeniedException',
      );
      return;
    }
    handle(emulator, request, response, { region, accountId }).catch((error: Error) => {
      if (error instanceof BodyTooLarge) refuse(response, 413, error.message, 'RequestTooLargeException');
      else send(response, 500, { Type: 'Service', message: error.message }, 'ServiceException');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  allowedHosts = new Set([`127.0.0.1:${port}`, `localhost:${port}`]);
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
  const invoke = INVOKE.exec(path);
  if (invoke && request.method === 'POST') {
    await invokeFunction(emulator, decodeURIComponent(invoke[1] as string), request, response);
    return;
  }
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
    const body = JSON.parse((await readBody(request, MAX_UPDATE_BYTES)) || '{}') as Record<string, unknown>;
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
    const before = mapping.state;
    if (typeof body.Enabled === 'boolean') emulator.setEnabled(mapping.definition.uuid, body.Enabled);
    const state = typeof body.Enabled === 'boolean' ? reportedState(before, body.Enabled) : before;
    send(response, 202, { ...describe(mapping, account), State: state });
    return;
  }
  send(
    response,
    404,
    { message: `Not emulated: ${request.method} ${url.pathname}` },
    'ResourceNotFoundException',
  );
}

/**
 * What UpdateEventSourceMapping answers, as AWS does: the transition it started (Enabling, Disabling), not the
 * state before it; GetEventSourceMapping shows the settled state once the transition is done.
 */
export function reportedState(before: MappingState, enabled: boolean): MappingState {
  if (enabled) return before === 'Enabled' ? 'Enabled' : 'Enabling';
  return before === 'Disabled' ? 'Disabled' : 'Disabling';
}

/**
 * Invoke, RequestResponse: runs the function's handler as its ESM batches run it (same execution
 * environments, same timeout) and answers as Lambda does: 200 with the result, or 200 with
 * X-Amz-Function-Error: Unhandled and the error as the payload.
 */
async function invokeFunction(
  emulator: EsmEmulator,
  name: string,
  request: IncomingMessage,
  response: ServerResponse,
): Promise<void> {
  const type = request.headers['x-amz-invocation-type'] ?? 'RequestResponse';
  if (type !== 'RequestResponse' && type !== 'DryRun') {
    send(
      response,
      400,
      { Type: 'User', message: `The local endpoint invokes RequestResponse or DryRun only, not ${type}` },
      'InvalidParameterValueException',
    );
    return;
  }
  const functionName = emulator.mappings.find((m) => matchesFunction(m, name))?.definition.functionName;
  if (!functionName) {
    send(
      response,
      404,
      { Type: 'User', Message: `Function not found: ${name}` },
      'ResourceNotFoundException',
    );
    return;
  }
  const raw = await readBody(request, MAX_PAYLOAD_BYTES);
  let event: unknown;
  try {
    event = raw === '' ? {} : JSON.parse(raw);
  } catch {
    send(
      response,
      400,
      { Type: 'User', message: 'Could not parse request body into json' },
      'InvalidRequestContentException',
    );
    return;
  }
  if (type === 'DryRun') {
    response.writeHead(204).end();
    return;
  }
  const result = await emulator.invoke(functionName, event);
  if (!result) throw new Error(`${functionName} has no handler`);
  const headers = { 'x-amz-executed-version': '$LATEST', 'x-amzn-requestid': result.requestId };
  if (result.ok) {
    response.writeHead(200, { 'content-type': 'application/json', ...headers });
    response.end(JSON.stringify(result.response ?? null));
    return;
  }
  response.writeHead(200, {
    'content-type': 'application/json',
    ...headers,
    'x-amz-function-error': 'Unhandled',
  });
  response.end(
    JSON.stringify({
      errorType: result.timedOut ? 'Sandbox.Timedout' : result.error.name,
      errorMessage: result.error.message,
      ...(result.timedOut ? {} : { trace: (result.error.stack ?? '').split('\n') }),
    }),
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

/** An error answer after which the connection closes: the rest of a refused body is not read. */
function refuse(response: ServerResponse, status: number, message: string, errorType: string): void {
  response.setHeader('connection', 'close');
  send(response, status, { Type: 'User', message }, errorType);
}

/** The body, refused past `limit` bytes: by its Content-Length before reading, else as it arrives. */
async function readBody(request: IncomingMessage, limit: number): Promise<string> {
  if (Number(request.headers['content-length'] ?? 0) > limit) throw new BodyTooLarge(limit);
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      // Paused, not destroyed: the 413 still reaches the client before the connection closes.
      request.off('data', onData);
      request.pause();
      reject(new BodyTooLarge(limit));
    };
    request.on('data', onData);
    request.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.once('error', reject);
  });
}
