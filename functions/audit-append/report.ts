import type { AppendBatchResult } from './append-batch';

/** The parts of Powertools' Logger and Metrics the report uses. */
export interface ReportSinks {
  logger: {
    info(message: string, attributes: Record<string, unknown>): void;
    error(message: string, attributes: Record<string, unknown>): void;
  };
  metrics: { addMetric(name: string, unit: 'Count', value: number): void };
}

/**
 * Makes the outcome of a batch visible: conflicts and poison records are errors with their coordinates (an
 * alarm on AuditConflicts / AuditPoisonRecords points straight at audit_conflicts or the failure destination).
 */
export function reportAppend(
  result: AppendBatchResult,
  { logger, metrics }: ReportSinks,
  /** Records reported as batch item failures (the failed ones and their successors). */
  reported: number,
): void {
  metrics.addMetric('AuditAppended', 'Count', result.appended);
  metrics.addMetric('AuditDuplicates', 'Count', result.duplicates);
  metrics.addMetric('AuditConflicts', 'Count', result.conflicts.length);
  metrics.addMetric('AuditPoisonRecords', 'Count', result.poison.length);
  metrics.addMetric('AuditRejectedPartitions', 'Count', result.rejected.length);
  // eventId, correlationId, topic, partition, offset: the keys every function's record logs carry; the source
  // too, since an id is unique per source only.
  for (const { ceId, source, ...conflict } of result.conflicts) {
    logger.error(
      'Audit conflict: source + id already stored with a different body; kept in audit_conflicts',
      {
        ...conflict,
        eventId: ceId,
        eventSource: source,
      },
    );
  }
  for (const poison of result.poison) {
    logger.error('Audit poison record: cannot be stored, reported as a batch item failure', { ...poison });
  }
  for (const rejected of result.rejected) {
    logger.error('Audit partition refused by the database: rolled back, reported as batch item failures', {
      ...rejected,
    });
  }
  logger.info('Audit batch appended', {
    appended: result.appended,
    duplicates: result.duplicates,
    conflicts: result.conflicts.length,
    failures: reported,
  });
}
