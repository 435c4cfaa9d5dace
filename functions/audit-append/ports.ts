import type { AuditRecord } from './audit-record';

/** What happened to one record of an append, in input order. */
export type AppendOutcome =
  /** Stored as link `seq` of its topic-partition chain. */
  | { outcome: 'appended'; seq: bigint }
  /** Its CloudEvents source + id was already stored with the same body (redelivery, replay): nothing written. */
  | { outcome: 'duplicate' }
  /** Its CloudEvents source + id was already stored with a different body: kept in audit_conflicts for investigation. */
  | { outcome: 'conflict' };

/**
 * The append-only audit event store, as the audit-append function sees it.
 * `append` writes the records of all chunks, in order, atomically (one transaction): either every outcome holds
 * (one per record, in order), or it throws and nothing was written. It pulls the chunks one at a time, so a
 * store may write a chunk while the caller builds the next.
 */
export interface AuditEventStore {
  append(chunks: Iterable<readonly AuditRecord[]>): Promise<AppendOutcome[]>;
}
