import type { ExplainerResult, IncidentExplainer, InferenceParameters, Prompt } from './explanation';
import type { Incident } from './incident';

/**
 * Asks the primary explainer (the model) and, if it fails for any reason (timeout, throttling after
 * retries, unreadable output), answers with the fallback (the rules), labelled RULES_FALLBACK with the model
 * that was asked and why it failed.
 */
export class FallbackIncidentExplainer implements IncidentExplainer {
  constructor(
    private readonly primary: IncidentExplainer,
    private readonly fallback: IncidentExplainer,
    private readonly onFallback: (error: unknown) => void = () => {},
  ) {}

  get modelId(): string {
    return this.primary.modelId;
  }

  get parameters(): InferenceParameters {
    return this.primary.parameters;
  }

  async explain(incident: Incident, prompt: Prompt): Promise<ExplainerResult> {
    const started = performance.now();
    try {
      return await this.primary.explain(incident, prompt);
    } catch (error) {
      this.onFallback(error);
      const result = await this.fallback.explain(incident, prompt);
      return {
        ...result,
        explainer: 'RULES_FALLBACK',
        latencyMs: Math.round(performance.now() - started),
        fallback: { attemptedModelId: this.primary.modelId, reason: describeFailure(error) },
      };
    }
  }
}

export function describeFailure(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return String(error).slice(0, 500);
}
