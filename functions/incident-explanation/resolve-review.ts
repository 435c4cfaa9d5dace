import { isoInstant } from '../../shared/time';
import type { ReviewResolution } from './ports';

export class InvalidResolutionError extends Error {
  override name = 'InvalidResolutionError';
}

/** Reads a genai.hitl.resolved event's data (reviewId, incidentId, decision, reviewer, resolvedAt). */
export function toResolution(data: unknown, eventTime: string): ReviewResolution {
  const value = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const text = (name: string): string | undefined => {
    const raw = value[name];
    if (typeof raw === 'string' && raw !== '') return raw;
    if (typeof raw === 'object' && raw !== null && typeof (raw as { string?: unknown }).string === 'string') {
      return (raw as { string: string }).string;
    }
    return undefined;
  };
  const missing = ['reviewId', 'incidentId', 'decision', 'reviewer'].filter(
    (name) => text(name) === undefined,
  );
  if (missing.length > 0) {
    throw new InvalidResolutionError(`Invalid genai.hitl.resolved data: missing ${missing.join(', ')}`);
  }
  const resolvedAtRaw = value.resolvedAt;
  const resolvedAt =
    resolvedAtRaw === undefined || resolvedAtRaw === null ? eventTime : isoInstant(resolvedAtRaw);
  if (resolvedAt === undefined) {
    throw new InvalidResolutionError(
      `Invalid genai.hitl.resolved data: resolvedAt is not a time: ${JSON.stringify(String(resolvedAtRaw))}`,
    );
  }
  const comment = text('comment');
  return {
    reviewId: text('reviewId') as string,
    incidentId: text('incidentId') as string,
    decision: text('decision') as string,
    reviewer: text('reviewer') as string,
    ...(comment ? { comment } : {}),
    resolvedAt,
  };
}
