import {
  BedrockRuntimeClient,
  type BedrockRuntimeClientConfig,
  ConverseCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { traced } from '../../shared/observability';
import {
  type ExplainerResult,
  type IncidentExplainer,
  type InferenceParameters,
  ModelOutputError,
  type Prompt,
  parseExplanation,
} from './explanation';
import type { Incident } from './incident';

export interface BedrockExplainerOptions {
  modelId: string;
  /** Upper bound for the whole call, retries included; past it the call is aborted. */
  timeoutMs: number;
  /** Attempts including the first; the SDK's standard strategy retries throttling and 5xx with backoff. */
  maxAttempts: number;
  parameters: InferenceParameters;
  /** Endpoint override; by default the SDK also honours AWS_ENDPOINT_URL_BEDROCK_RUNTIME. */
  endpoint?: string;
  /** Extra client settings (region, credentials) for tests and tools. */
  clientConfig?: BedrockRuntimeClientConfig;
}

/** Creates the Bedrock Runtime client: retries on throttling, socket timeouts within the call budget. */
export function bedrockRuntimeClient(options: BedrockExplainerOptions): BedrockRuntimeClient {
  const client = new BedrockRuntimeClient({
    maxAttempts: options.maxAttempts,
    retryMode: 'standard',
    // Bedrock Runtime's default handler speaks HTTP/2; these are its options (as the SDK's own default,
    // one request per session). requestTimeout bounds each attempt, the abort signal the whole call.
    requestHandler: { requestTimeout: options.timeoutMs, disableConcurrentStreams: true },
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...options.clientConfig,
  });
  return traced(client);
}

/** Explains an incident with a Bedrock model through the Converse API. Throws on any failure. */
export class BedrockIncidentExplainer implements IncidentExplainer {
  readonly modelId: string;
  readonly parameters: InferenceParameters;

  constructor(
    private readonly client: BedrockRuntimeClient,
    private readonly options: BedrockExplainerOptions,
  ) {
    this.modelId = options.modelId;
    this.parameters = options.parameters;
  }

  async explain(_incident: Incident, prompt: Prompt): Promise<ExplainerResult> {
    const started = performance.now();
    const response = await this.client.send(
      new ConverseCommand({
        modelId: this.modelId,
        system: [{ text: prompt.system }],
        messages: [{ role: 'user', content: [{ text: prompt.user }] }],
        inferenceConfig: {
          maxTokens: this.parameters.maxTokens,
          temperature: this.parameters.temperature,
          ...(this.parameters.topP === undefined ? {} : { topP: this.parameters.topP }),
        },
      }),
      { abortSignal: AbortSignal.timeout(this.options.timeoutMs) },
    );
    const output = (response.output?.message?.content ?? [])
      .map((block) => block.text ?? '')
      .join('')
      .trim();
    if (output === '')
      throw new ModelOutputError(`Model returned no text (stopReason ${response.stopReason})`);
    const explanation = parseExplanation(output);
    const inputTokens = response.usage?.inputTokens ?? 0;
    const outputTokens = response.usage?.outputTokens ?? 0;
    return {
      explainer: 'MODEL',
      modelId: this.modelId,
      explanation,
      output,
      usage: {
        inputTokens,
        outputTokens,
        totalTokens: response.usage?.totalTokens ?? inputTokens + outputTokens,
      },
      // Wall-clock latency as this function saw it (retries included); Bedrock's own figure is metrics.latencyMs.
      latencyMs: Math.round(performance.now() - started),
      ...(response.stopReason ? { stopReason: response.stopReason } : {}),
    };
  }
}
