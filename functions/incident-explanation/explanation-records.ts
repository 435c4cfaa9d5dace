/**
 * The record of an incident's explanation in the idempotency table. Key, status, expiry and payload hash are
 * those of Powertools' DynamoDB persistence layer (what this function wrote before it batched: `makeIdempotent`
 * keyed by `incidentId`, prefix `incident-explanation`, payload validation on `incident`), so the outcomes that
 * design stored are replayed here (a deploy mid-stream). The outcome itself is one attribute, `outcome`: the JSON
 * gzipped, as Binary. Powertools kept it in `data` as a nested map of ~5 KB, whose marshalling and size were the
 * largest part of a batch's cost (README, "Throughput"); `data` is still read.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
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

/** The outcome as stored: its JSON, gzipped at level 1 (~3x smaller; ~40 us per outcome). */
function packOutcome(outcome: IncidentOutcome): Uint8Array {
  return gzipSync(JSON.stringify(outcome), { level: 1 });
}

function checkedOutcome(value: unknown): IncidentOutcome {
  const outcome = value as Partial<IncidentOutcome> | undefined;
  if (typeof outcome?.incidentId !== 'string' || !Array.isArray(outcome.events))
    throw new Error('not an incident outcome (no incidentId or events)');
  return outcome as IncidentOutcome;
}

/**
 * The stored explanation an item holds, or undefined when it expired (as Powertools treats it: absent). An outcome
 * that cannot be read back is UNREADABLE: that incident's records fail, naming it, and no other's.
 */
export function storedExplanationOf(
  item: Record<string, unknown>,
  incidentId: string,
  nowMs: number,
): StoredExplanation | undefined {
  if (typeof item.expiration === 'number' && nowMs / 1000 > item.expiration) return undefined;
  const hash = typeof item.validation === 'string' && item.validation !== '' ? item.validation : undefined;
  const withHash = hash === undefined ? {} : { payloadHash: hash };
  if (item.status === 'COMPLETED') {
    try {
      const outcome = checkedOutcome(
        item.outcome instanceof Uint8Array
          ? JSON.parse(gunzipSync(item.outcome).toString('utf8'))
          : item.data, // written by the Powertools design
      );
      return { status: 'COMPLETED', outcome, ...withHash };
    } catch (error) {
      return {
        status: 'UNREADABLE',
        error: new Error(
          `the stored outcome of incident ${incidentId} (item ${String(item.id)}) cannot be read: ` +
            `${(error as Error).message}. Its records fail until the item is repaired; deleting it has the incident ` +
            'explained again, with a new explanation under the same event ids (audit-append reports those as conflicts)',
        ),
      };
    }
  }
  if (item.status === 'INPROGRESS') return { status: 'INPROGRESS', ...withHash };
  return undefined;
}

/** The item of a completed explanation: Powertools' attributes, with the outcome packed (above). */
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
    outcome: packOutcome(explanation.outcome),
    validation: explanation.payloadHash,
  };
}
