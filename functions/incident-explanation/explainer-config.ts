import { ConfigurationError } from '../../shared/config';
import type { BedrockExplainerOptions } from './bedrock-explainer';
import type { ExplainerResult, IncidentExplainer } from './explanation';
import { describeFailure, FallbackIncidentExplainer } from './fallback-explainer';
import { RulesIncidentExplainer } from './rules-explainer';

export interface ExplainerSettings {
  kind: 'bedrock' | 'rules';
  modelId?: string;
  timeoutMs: number;
  maxAttempts: number;
  maxTokens: number;
  temperature: number;
}

/** Like shared/config intFromEnv, over a given environment (so tests need not touch process.env). */
function intSetting(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new ConfigurationError(`Environment variable ${name} must be a positive integer, got "${raw}"`);
  }
  return value;
}

/**
 * EXPLAINER=bedrock (default when BEDROCK_MODEL_ID is set) or rules (the default otherwise: local runs).
 * BEDROCK_TIMEOUT_MS (whole call, retries included), BEDROCK_MAX_ATTEMPTS, BEDROCK_MAX_TOKENS,
 * BEDROCK_TEMPERATURE. The endpoint comes from the SDK's AWS_ENDPOINT_URL_BEDROCK_RUNTIME when set.
 */
export function explainerSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): ExplainerSettings {
  const modelId = env.BEDROCK_MODEL_ID || undefined;
  const kind = (env.EXPLAINER || (modelId ? 'bedrock' : 'rules')).toLowerCase();
  if (kind !== 'bedrock' && kind !== 'rules') {
    throw new ConfigurationError(`EXPLAINER must be bedrock or rules, got "${env.EXPLAINER}"`);
  }
  if (kind === 'bedrock' && !modelId)
    throw new ConfigurationError('EXPLAINER=bedrock needs BEDROCK_MODEL_ID');
  const temperature = Number(env.BEDROCK_TEMPERATURE ?? '0.2');
  if (!Number.isFinite(temperature) || temperature < 0 || temperature > 1) {
    throw new ConfigurationError(
      `BEDROCK_TEMPERATURE must be between 0 and 1, got "${env.BEDROCK_TEMPERATURE}"`,
    );
  }
  return {
    kind,
    ...(modelId ? { modelId } : {}),
    timeoutMs: intSetting(env, 'BEDROCK_TIMEOUT_MS', 8000),
    maxAttempts: intSetting(env, 'BEDROCK_MAX_ATTEMPTS', 3),
    maxTokens: intSetting(env, 'BEDROCK_MAX_TOKENS', 600),
    temperature,
  };
}

/** The explainer the settings ask for: Bedrock with the rules as fallback, or the rules alone. */
export function createExplainer(
  settings: ExplainerSettings,
  onFallback: (reason: string) => void = () => {},
): IncidentExplainer {
  const rules = new RulesIncidentExplainer();
  if (settings.kind === 'rules' || !settings.modelId) return rules;
  const options = {
    modelId: settings.modelId,
    timeoutMs: settings.timeoutMs,
    maxAttempts: settings.maxAttempts,
    parameters: { maxTokens: settings.maxTokens, temperature: settings.temperature },
  };
  return new FallbackIncidentExplainer(bedrockExplainer(options), rules, (error) =>
    onFallback(describeFailure(error)),
  );
}

/**
 * The Bedrock explainer, with the Bedrock Runtime client imported only when the settings ask for Bedrock, so
 * the rules-only configuration does not load it. The import starts now (during the cold start, where a
 * deployed function with a model pays it anyway); a failed import fails that explain and is tried again.
 */
function bedrockExplainer(options: BedrockExplainerOptions): IncidentExplainer {
  const load = () =>
    import('./bedrock-explainer').then(
      ({ BedrockIncidentExplainer, bedrockRuntimeClient }) =>
        new BedrockIncidentExplainer(bedrockRuntimeClient(options), options),
    );
  let explainer = load();
  // Awaited on the first explain; until then a failure must not be an unhandled rejection.
  explainer.catch(() => {});
  return {
    modelId: options.modelId,
    parameters: options.parameters,
    async explain(incident, prompt): Promise<ExplainerResult> {
      const ready = await explainer.catch((error: unknown) => {
        explainer = load();
        explainer.catch(() => {});
        throw error;
      });
      return ready.explain(incident, prompt);
    },
  };
}
