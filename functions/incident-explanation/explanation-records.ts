/**
 * An incident's explanation record: its outcome stored with its view, in the view's item of IncidentsTable
 * (`INCIDENT#<id>` / `VIEW`): the outcome's JSON gzipped in one Binary attribute `outcome`, and `validation`, the
 * hash of the detection it answers. One item per incident, written in one round with the reviews, so a first
 * delivery costs one write round and 100 fewer items per 100 incidents than with the outcome in a table of its own.
 *
 * Outcomes stored by earlier releases are in IncidentIdempotencyTable, in Powertools' item format (key, status,
 * expiration, payload hash; the outcome in `data` as a nested map, or packed in `outcome`), and are still read
 * (legacyOutcomeOf): every earlier release wrote an incident's view before its outcome, so a view without an
 * outcome is the only place one can be.
 */
import { createHash } from 'node:crypto';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { Incident } from './incident';
import type { CompletedExplanation, IncidentOutcome, StoredExplanation } from './ports';

/** Powertools' key prefix as this function configured it. */
const KEY_PREFIX = 'incident-explanation';

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

/** The item key (`id`) of an incident's record in the legacy table. */
export function explanationKey(incidentId: string): string {
  return `${KEY_PREFIX}#${md5(incidentId)}`;
}

/** The hash of the detection an outcome answers (Powertools' `validation` attribute). */
export function payloadHash(incident: Incident): string {
  return md5(incident);
}

/**
 * The most a stored outcome may unpack to. An outcome is ~5 KB (the prompt, the model's bounded answer, 2-3 events);
 * a DynamoDB item holds at most 400 KB, which a crafted gzip could inflate a thousandfold.
 */
const MAX_OUTCOME_BYTES = 1024 * 1024;

const unpackOutcome = (packed: Uint8Array): unknown =>
  JSON.parse(gunzipSync(packed, { maxOutputLength: MAX_OUTCOME_BYTES }).toString('utf8'));

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
 * What an outcome that cannot be read back is: its incident's records fail, naming it, and no other's. `undo` is
 * how to have it explained again instead of repairing it.
 */
function unreadable(incidentId: string, item: string, undo: string, error: unknown): StoredExplanation {
  return {
    status: 'UNREADABLE',
    error: new Error(
      `the stored outcome of incident ${incidentId} (item ${item}) cannot be read: ` +
        `${(error as Error).message}. Its records fail until the item is repaired; ${undo} has the incident ` +
        'explained again, with a new explanation under the same event ids (audit-append reports those as conflicts)',
    ),
  };
}

const hashOf = (item: Record<string, unknown>) =>
  typeof item.validation === 'string' && item.validation !== '' ? { payloadHash: item.validation } : {};

/** The attributes a view's item carries for its outcome (beside the view's own). */
export function outcomeAttributes(explanation: CompletedExplanation): {
  outcome: Uint8Array;
  validation: string;
} {
  return { outcome: packOutcome(explanation.outcome), validation: explanation.payloadHash };
}

/**
 * The stored explanation a view's item holds, or undefined when it has no outcome (a view an earlier release
 * wrote: its outcome, if any, is in the legacy table). An outcome stored with its view does not expire: a replay
 * from any offset finds it.
 */
export function storedOutcomeOf(
  item: Record<string, unknown>,
  incidentId: string,
): StoredExplanation | undefined {
  if (item.outcome === undefined) return undefined;
  try {
    if (!(item.outcome instanceof Uint8Array)) throw new Error('the outcome attribute is not Binary');
    const outcome = checkedOutcome(unpackOutcome(item.outcome));
    return { status: 'COMPLETED', outcome, ...hashOf(item) };
  } catch (error) {
    return unreadable(
      incidentId,
      `${String(item.pk)} ${String(item.sk)}`,
      'removing its outcome attribute (REMOVE outcome, validation)',
      error,
    );
  }
}

/**
 * The stored explanation an item of the legacy table (Powertools' format) holds, or undefined when it expired (as
 * Powertools treats it: absent).
 */
export function legacyOutcomeOf(
  item: Record<string, unknown>,
  incidentId: string,
  nowMs: number,
): StoredExplanation | undefined {
  if (typeof item.expiration === 'number' && nowMs / 1000 > item.expiration) return undefined;
  if (item.status === 'COMPLETED') {
    try {
      const outcome = checkedOutcome(
        item.outcome instanceof Uint8Array ? unpackOutcome(item.outcome) : item.data, // written by the Powertools design
      );
      return { status: 'COMPLETED', outcome, ...hashOf(item) };
    } catch (error) {
      return unreadable(incidentId, String(item.id), 'deleting the item', error);
    }
  }
  if (item.status === 'INPROGRESS') return { status: 'INPROGRESS', ...hashOf(item) };
  return undefined;
}
