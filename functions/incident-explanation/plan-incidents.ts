import type { Incident } from './incident';
import type { IncidentOutcome, StoredExplanation } from './ports';

/**
 * An incident id came back with a detection other than the one its stored outcome was computed for (the
 * payload hash differs). A record error: the record fails alone, with this message, instead of being answered
 * silently with the outcome of a different detection.
 */
export class IdempotencyPayloadMismatchError extends Error {
  override name = 'IdempotencyPayloadMismatchError';
}

/** An incident.detected record of the batch, in batch order (offset order within a partition). */
export interface PlannedIncident {
  incident: Incident;
  /** payloadHash(incident) */
  hash: string;
}

/**
 * What to do with one record:
 * - explain: ask the explainer (the first record of an incident nothing usable is stored for);
 * - replay: the stored outcome answers it (the explainer is not asked);
 * - same-as: an earlier record of this batch (`owner`, its position) explains the same detection: its outcome;
 * - mismatch: the incident was explained from other data: a record failure;
 * - unreadable: its stored outcome cannot be read back: a record failure (not explained again: a second,
 *   different explanation under the same event ids is what the record exists to prevent).
 */
export type IncidentDecision =
  | { kind: 'explain' }
  | { kind: 'replay'; outcome: IncidentOutcome }
  | { kind: 'same-as'; owner: number }
  | { kind: 'mismatch'; error: IdempotencyPayloadMismatchError }
  | { kind: 'unreadable'; error: Error };

/**
 * Decides every incident.detected record of a batch from what is stored, one incident's records in their
 * order: what a record gets depends only on the stored record and the records of its incident before it, so
 * incidents can then be explained concurrently and the answer is the one a record-at-a-time run gives.
 *
 * A stored INPROGRESS record (a dead invocation of the Powertools design left it) is explained again at once.
 * A stored record without a payload hash (written before validation was configured) answers any detection.
 */
export function planIncidents(
  records: readonly PlannedIncident[],
  stored: ReadonlyMap<string, StoredExplanation>,
): IncidentDecision[] {
  const explainedBy = new Map<string, number>();
  return records.map((record, position): IncidentDecision => {
    const { incidentId } = record.incident;
    const owner = explainedBy.get(incidentId);
    if (owner !== undefined) {
      const first = records[owner] as PlannedIncident;
      if (first.hash === record.hash) return { kind: 'same-as', owner };
      return mismatch(record.incident, first.incident);
    }
    const found = stored.get(incidentId);
    if (found?.status === 'UNREADABLE') return { kind: 'unreadable', error: found.error };
    const sameData = !found?.payloadHash || found.payloadHash === record.hash;
    if (found?.status === 'COMPLETED') {
      return sameData
        ? { kind: 'replay', outcome: found.outcome }
        : mismatch(record.incident, found.outcome.view);
    }
    if (found && !sameData) return mismatch(record.incident, undefined);
    explainedBy.set(incidentId, position);
    return { kind: 'explain' };
  });
}

function mismatch(
  incident: Incident,
  explained: Pick<Incident, 'severity' | 'detectedAt'> | undefined,
): IncidentDecision {
  return {
    kind: 'mismatch',
    error: new IdempotencyPayloadMismatchError(
      `incident ${incident.incidentId} was already explained from other data` +
        (explained ? ` (severity ${explained.severity}, detected ${explained.detectedAt})` : '') +
        ` than this record (severity ${incident.severity}, detected ${incident.detectedAt}); its stored outcome is not replayed for it`,
    ),
  };
}
