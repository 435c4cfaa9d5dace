import type { Incident } from './incident';

/**
 * MODEL: the text came from a generative model. RULES_FALLBACK: it came from the deterministic rules, either
 * because no model is configured (local runs) or because the model call failed. Rules output is never
 * labelled MODEL.
 */
export type ExplainerKind = 'MODEL' | 'RULES_FALLBACK';

export interface Prompt {
  system: string;
  user: string;
}

export interface InferenceParameters {
  maxTokens: number;
  temperature: number;
  topP?: number;
}

export interface Explanation {
  /** Plain-language explanation for an operator. */
  summary: string;
  likelyCauses: string[];
  recommendedAction: string;
  /** 0..1; the model's self-assessment, or the rule's fixed confidence. */
  confidence: number;
}

export interface TokenUsage {
  inputTokens: number;
  outputTokens: number;
  totalTokens: number;
}

export interface ExplainerResult {
  explainer: ExplainerKind;
  /** The model (or rules version) that produced `explanation`. */
  modelId: string;
  explanation: Explanation;
  /** The exact text the explainer returned (model output verbatim; rules output as JSON). */
  output: string;
  usage: TokenUsage;
  latencyMs: number;
  stopReason?: string;
  /** Set when a model was asked and failed: the model asked and why it failed. */
  fallback?: { attemptedModelId: string; reason: string };
}

/** Asks for a plain-language explanation of an incident, its likely causes and a recommended action. */
export interface IncidentExplainer {
  /** What is asked first (for the genai.request event): model id and inference parameters. */
  readonly modelId: string;
  readonly parameters: InferenceParameters;
  explain(incident: Incident, prompt: Prompt): Promise<ExplainerResult>;
}

export class ModelOutputError extends Error {
  override name = 'ModelOutputError';
}

/** Reads the JSON answer the prompt asks for out of a model's text (tolerating prose or fences around it). */
export function parseExplanation(text: string): Explanation {
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end <= start) throw new ModelOutputError('Model output contains no JSON object');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text.slice(start, end + 1));
  } catch (error) {
    throw new ModelOutputError(`Model output is not valid JSON: ${(error as Error).message}`);
  }
  const value = parsed as Record<string, unknown>;
  const summary = value.summary;
  const recommendedAction = value.recommendedAction;
  const likelyCauses = value.likelyCauses;
  const confidence = Number(value.confidence);
  if (
    typeof summary !== 'string' ||
    summary.trim() === '' ||
    typeof recommendedAction !== 'string' ||
    recommendedAction.trim() === '' ||
    !Array.isArray(likelyCauses) ||
    !likelyCauses.every((cause) => typeof cause === 'string') ||
    !Number.isFinite(confidence)
  ) {
    throw new ModelOutputError(
      'Model output lacks summary, likelyCauses[], recommendedAction or a numeric confidence',
    );
  }
  return {
    summary: summary.trim(),
    likelyCauses: likelyCauses as string[],
    recommendedAction: recommendedAction.trim(),
    confidence: Math.min(1, Math.max(0, confidence)),
  };
}
