// The Lambda API client of the operations commands (replay, redrive): AWS for a deployed stage, the local
// Lambda API of `npm run dev` (its endpoint from .local/esm-emulator.json) for the local stage.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { stateDir } from '../local/stack/paths';
import { CliError } from '../shared/cli-error';

async function localLambdaEndpoint(): Promise<string | undefined> {
  try {
    const file = process.env.ESM_EMULATOR_STATE_FILE ?? path.join(stateDir, 'esm-emulator.json');
    const state = JSON.parse(await readFile(file, 'utf8')) as { lambdaEndpoint?: string };
    return state.lambdaEndpoint;
  } catch {
    return undefined;
  }
}

/** `--lambda-endpoint`, else AWS_ENDPOINT_URL_LAMBDA, else (local stage) the running `dev`'s Lambda API. */
export async function lambdaClientFor(
  stage: string,
  endpointFlag: string | undefined,
): Promise<LambdaClient> {
  const endpoint =
    endpointFlag ??
    process.env.AWS_ENDPOINT_URL_LAMBDA ??
    (stage === 'local' ? await localLambdaEndpoint() : undefined);
  if (stage === 'local' && !endpoint) {
    throw new CliError('No local Lambda endpoint: start `npm run dev` first, or pass --lambda-endpoint');
  }
  return new LambdaClient({
    region: process.env.AWS_REGION ?? 'eu-west-1',
    ...(endpoint ? { endpoint } : {}),
    ...(endpoint && !process.env.AWS_ACCESS_KEY_ID
      ? { credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
      : {}),
  });
}
