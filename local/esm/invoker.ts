// Runs a handler in-process with a Lambda-like context; exceeding the function timeout is a failure,
// as it is on Lambda (the late result is ignored).
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Context, MSKEvent } from 'aws-lambda';

export type EsmHandler = (event: MSKEvent, context: Context) => unknown;

export interface FunctionSettings {
  functionName: string;
  timeoutSeconds: number;
  memorySize: number;
  region: string;
  accountId: string;
}

export type InvocationResult =
  | { ok: true; response: unknown; requestId: string }
  | { ok: false; error: Error; requestId: string; timedOut: boolean };

export class HandlerTimeoutError extends Error {
  constructor(functionName: string, seconds: number) {
    super(`${functionName}: Task timed out after ${seconds.toFixed(2)} seconds`);
    this.name = 'HandlerTimeoutError';
  }
}

export function lambdaContext(settings: FunctionSettings, requestId: string, deadline: number): Context {
  const arn = `arn:aws:lambda:${settings.region}:${settings.accountId}:function:${settings.functionName}`;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: settings.functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: arn,
    memoryLimitInMB: String(settings.memorySize),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${settings.functionName}`,
    logStreamName: `local/[$LATEST]${requestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

export async function invokeHandler(
  handler: EsmHandler,
  event: MSKEvent,
  settings: FunctionSettings,
): Promise<InvocationResult> {
  const requestId = randomUUID();
  const timeoutMs = settings.timeoutSeconds * 1000;
  const context = lambdaContext(settings, requestId, Date.now() + timeoutMs);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new HandlerTimeoutError(settings.functionName, settings.timeoutSeconds)),
      timeoutMs,
    );
  });
  try {
    const response = await Promise.race([Promise.resolve().then(() => handler(event, context)), timeout]);
    return { ok: true, response, requestId };
  } catch (error) {
    const asError = error instanceof Error ? error : new Error(String(error));
    return { ok: false, error: asError, requestId, timedOut: asError instanceof HandlerTimeoutError };
  } finally {
    clearTimeout(timer);
  }
}

/** `functions/billing/handler.handler` -> the exported function of functions/billing/handler.ts. */
export async function resolveHandler(handlerPath: string, root = process.cwd()): Promise<EsmHandler> {
  const dot = handlerPath.lastIndexOf('.');
  const modulePath = handlerPath.slice(0, dot);
  const exportName = handlerPath.slice(dot + 1);
  const file = path.resolve(root, `${modulePath}.ts`);
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const handler = module[exportName];
  if (typeof handler !== 'function') {
    throw new Error(`${file} does not export a function named "${exportName}" (handler ${handlerPath})`);
  }
  return handler as EsmHandler;
}
