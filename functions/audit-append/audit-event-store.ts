import type { AuditRecord } from './audit-record';

/** What happened to one record of an append, in input order. */
export type AppendOutcome =
  /** Stored as link `seq` of its topic-partition chain. */
  | { outcome: 'appended'; seq: bigint }
  /** Its CloudEvents id was already stored with the same body (redelivery, replay): nothing written. */
  | { outcome: 'duplicate' }
  /** Its CloudEvents id was already stored with a different body: kept in audit_conflicts for investigation. */
  | { outcome: 'conflict' };

/**
 * The append-only audit event store, as the audit-append function sees it.
 * `append` writes the whole batch atomically (one transaction): either every outcome holds, or it throws and
 * nothing of the batch was written.
 */
export interface AuditEventStore {
  append(records: readonly AuditRecord[]): Promise<AppendOutcome[]>;
}
