import { ConfigurationError } from '../../shared/config';
import { BedrockIncidentExplainer, bedrockRuntimeClient } from './bedrock-explainer';
import { CircuitBreaker, CircuitBreakingExplainer, type CircuitStateChange } from './circuit-breaker';
import type { IncidentExplainer } from './explanation';
import { describeFailure, FallbackIncidentExplainer } from './fallback-explainer';
import { RulesIncidentExplainer } from './rules-explainer';

export interface ExplainerSettings {
  kind: 'bedrock' | 'rules';
  modelId?: string;
  timeoutMs: number;
  maxAttempts: number;
  maxTokens: number;
  temperature: number;
  /** Consecutive model failures (timeouts included) that open the circuit. */
  circuitFailureThreshold: number;
  /** How long the open circuit answers with the rules before one probe goes to the model. */
  circuitCoolDownMs: number;
}

export interface CircuitHooks {
  onStateChange?: (change: CircuitStateChange) => void;
  now?: () => number;
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
 * BEDROCK_TEMPERATURE, BEDROCK_CIRCUIT_FAILURES (3), BEDROCK_CIRCUIT_COOLDOWN_MS (30000). The endpoint comes from the SDK's AWS_ENDPOINT_URL_BEDROCK_RUNTIME when set.
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
    circuitFailureThreshold: intSetting(env, 'BEDROCK_CIRCUIT_FAILURES', 3),
    circuitCoolDownMs: intSetting(env, 'BEDROCK_CIRCUIT_COOLDOWN_MS', 30_000),
  };
}

/**
 * The explainer the settings ask for: Bedrock behind a circuit breaker (one per execution environment, as this
 * is called at module scope) with the rules as fallback, or the rules alone.
 */
export function createExplainer(
  settings: ExplainerSettings,
  onFallback: (reason: string) => void = () => {},
  circuit: CircuitHooks = {},
): IncidentExplainer {
  const rules = new RulesIncidentExplainer();
  if (settings.kind === 'rules' || !settings.modelId) return rules;
  const options = {
    modelId: settings.modelId,
    timeoutMs: settings.timeoutMs,
    maxAttempts: settings.maxAttempts,
    parameters: { maxTokens: settings.maxTokens, temperature: settings.temperature },
  };
  // The Bedrock Runtime client is imported statically: esbuild tree-shakes a static import down to the client
  // and Converse, but not a module behind import() (bench/RESULTS.md "Bundles").
  const bedrock = new BedrockIncidentExplainer(bedrockRuntimeClient(options), options);
  const breaker = new CircuitBreaker({
    failureThreshold: settings.circuitFailureThreshold,
    coolDownMs: settings.circuitCoolDownMs,
    ...(circuit.now ? { now: circuit.now } : {}),
    ...(circuit.onStateChange ? { onStateChange: circuit.onStateChange } : {}),
  });
  const guarded = new CircuitBreakingExplainer(bedrock, breaker, describeFailure);
  return new FallbackIncidentExplainer(guarded, rules, (error) => onFallback(describeFailure(error)));
}
