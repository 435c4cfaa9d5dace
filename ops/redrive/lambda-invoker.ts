// Lambda Invoke (RequestResponse) through @aws-sdk/client-lambda: AWS, or the local Lambda API of `npm run dev`.
import { InvokeCommand, type InvokeCommandOutput, type LambdaClient } from '@aws-sdk/client-lambda';
import type { FunctionInvoker } from './redrive';

export function lambdaInvoker(lambda: LambdaClient): FunctionInvoker {
  return {
    async invoke(functionName, event) {
      let answer: InvokeCommandOutput;
      try {
        answer = await lambda.send(
          new InvokeCommand({ FunctionName: functionName, Payload: Buffer.from(JSON.stringify(event)) }),
        );
      } catch (error) {
        // Throttling, a missing permission, a payload Lambda refuses: the invocation did not run.
        const err = error as Error;
        return { ok: false, error: `${err.name}: ${err.message}` };
      }
      const text = answer.Payload ? Buffer.from(answer.Payload).toString('utf8') : '';
      if (answer.FunctionError) {
        const payload = parse(text) as { errorType?: string; errorMessage?: string } | undefined;
        return {
          ok: false,
          error: `${answer.FunctionError}: ${payload?.errorType ?? 'Error'}: ${payload?.errorMessage ?? text}`,
        };
      }
      return { ok: true, response: parse(text) };
    },
  };
}

function parse(text: string): unknown {
  try {
    return text === '' ? null : JSON.parse(text);
  } catch {
    return text;
  }
}
