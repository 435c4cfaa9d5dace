import { ConfigurationError } from '../../shared/config';
import type { ExplainerResult } from './explanation';
import type { Incident } from './incident';
import type { ReviewReason, ReviewTask } from './ports';

/** Confidence below which a human reviews the explanation, unless configured otherwise. */
export const DEFAULT_CONFIDENCE_THRESHOLD = 0.6;

/**
 * Why a human must review this explanation; empty when no review is needed. High and critical severity,
 * a failed model call (the rules answered instead) and low confidence each open a review.
 */
export function reviewReasons(
  incident: Incident,
  result: ExplainerResult,
  confidenceThreshold: number = DEFAULT_CONFIDENCE_THRESHOLD,
): ReviewReason[] {
  const reasons: ReviewReason[] = [];
  if (incident.severity === 'CRITICAL') reasons.push('SEVERITY_CRITICAL');
  if (incident.severity === 'HIGH') reasons.push('SEVERITY_HIGH');
  if (result.fallback !== undefined) reasons.push('EXPLANATION_FAILED');
  if (result.explanation.confidence < confidenceThreshold) reasons.push('LOW_CONFIDENCE');
  return reasons;
}

/**
 * What to write for a review an outcome wants, given the review stored (the batch's consistent read): the task,
 * OPEN, where none is stored; a review a resolution created first (no reasons) as stored plus why it was wanted
 * (safe to rewrite whole: a resolution never writes a task without reasons again, resolve-review.ts); nothing
 * where one is stored, open or resolved, so a review is never reopened.
 */
export function reviewToOpen(task: ReviewTask, stored: ReviewTask | undefined): ReviewTask | undefined {
  if (!stored) return { ...task, status: 'OPEN' };
  if (stored.status === 'OPEN' || (stored.reasons !== undefined && stored.openedAt !== undefined))
    return undefined;
  const openedAt = stored.openedAt ?? task.openedAt;
  return {
    ...stored,
    reasons: stored.reasons ?? task.reasons,
    ...(openedAt === undefined ? {} : { openedAt }),
  };
}

/** REVIEW_CONFIDENCE_THRESHOLD (0..1) from the environment, or the default. */
export function confidenceThresholdFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env.REVIEW_CONFIDENCE_THRESHOLD;
  if (raw === undefined || raw === '') return DEFAULT_CONFIDENCE_THRESHOLD;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new ConfigurationError(`REVIEW_CONFIDENCE_THRESHOLD must be between 0 and 1, got "${raw}"`);
  }
  return value;
}
