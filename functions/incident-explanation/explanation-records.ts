/**
 * The record of an incident's explanation in the idempotency table, in the item format of Powertools'
 * DynamoDB persistence layer (what this function wrote before it batched: `makeIdempotent` keyed by
 * `incidentId`, prefix `incident-explanation`, payload validation on `incident`). Same key, same payload hash,
 * same attributes, so outcomes stored by either design answer the other (deploy and rollback mid-stream).
 */
import { createHash } from 'node:crypto';
import type { Incident } from './incident';
import type { CompletedExplanation, IncidentOutcome, StoredExplanation } from './ports';

export const DEFAULT_KEY_PREFIX = 'incident-explanation';

/** 31 days: incident.detected is kept for 30, so a replay from the earliest offset still finds the record. */
export const DEFAULT_EXPLANATION_TTL_SECONDS = 31 * 24 * 3600;

/** Powertools' deepSort: object keys in case-insensitive order, so the hash does not depend on key order. */
function deepSort(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(deepSort);
  if (typeof value !== 'object' || value === null) return value;
  return Object.keys(value)
    .sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1))
    .reduce<Record<string, unknown>>((sorted, key) => {
      sorted[key] = deepSort((value as Record<string, unknown>)[key]);
      return sorted;
    }, {});
}

const md5 = (value: unknown) =>
  createHash('md5')
    .update(JSON.stringify(deepSort(value)))
    .digest('base64');

/** The item key (`id`) of an incident's record. */
export function explanationKey(incidentId: string, prefix = DEFAULT_KEY_PREFIX): string {
  return `${prefix}#${md5(incidentId)}`;
}

/** The hash of the detection an outcome answers (Powertools' `validation` attribute). */
export function payloadHash(incident: Incident): string {
  return md5(incident);
}

/** The stored explanation an item holds, or undefined when it expired (as Powertools treats it: absent). */
export function storedExplanationOf(
  item: Record<string, unknown>,
  nowMs: number,
): StoredExplanation | undefined {
  if (typeof item.expiration === 'number' && nowMs / 1000 > item.expiration) return undefined;
  const hash = typeof item.validation === 'string' && item.validation !== '' ? item.validation : undefined;
  const withHash = hash === undefined ? {} : { payloadHash: hash };
  if (item.status === 'COMPLETED')
    return { status: 'COMPLETED', outcome: item.data as IncidentOutcome, ...withHash };
  if (item.status === 'INPROGRESS') return { status: 'INPROGRESS', ...withHash };
  return undefined;
}

/** The item of a completed explanation, as Powertools' saveSuccess writes it. */
export function completedItem(
  explanation: CompletedExplanation,
  nowMs: number,
  prefix = DEFAULT_KEY_PREFIX,
  ttlSeconds = DEFAULT_EXPLANATION_TTL_SECONDS,
): Record<string, unknown> {
  return {
    id: explanationKey(explanation.outcome.incidentId, prefix),
    status: 'COMPLETED',
    expiration: Math.round(nowMs / 1000 + ttlSeconds),
    data: explanation.outcome,
    validation: explanation.payloadHash,
  };
}
