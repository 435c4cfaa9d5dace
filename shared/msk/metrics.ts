import type { KafkaBatchResponse, KafkaEvent } from './event';

export interface BatchMetric {
  name: 'RecordsProcessed' | 'RecordsFailed' | 'OldestRecordAgeMs';
  unit: 'Count' | 'Milliseconds';
  value: number;
}

/**
 * The metrics every function publishes per batch (EMF, through Powertools Metrics): records processed and
 * failed (reported as batch item failures), and the age of the oldest record in the batch, i.e. how far the
 * consumer is behind its producers (lag as time; OffsetLag alarms count records, serverless/alarms.cjs).
 */
export function batchMetrics(
  event: KafkaEvent,
  response: KafkaBatchResponse,
  now: number = Date.now(),
): BatchMetric[] {
  let records = 0;
  let oldest = Number.POSITIVE_INFINITY;
  for (const partition of Object.values(event.records ?? {})) {
    records += partition.length;
    for (const record of partition) oldest = Math.min(oldest, record.timestamp);
  }
  const failed = response.batchItemFailures.length;
  const metrics: BatchMetric[] = [
    { name: 'RecordsProcessed', unit: 'Count', value: records - failed },
    { name: 'RecordsFailed', unit: 'Count', value: failed },
  ];
  if (Number.isFinite(oldest)) {
    metrics.push({ name: 'OldestRecordAgeMs', unit: 'Milliseconds', value: Math.max(0, now - oldest) });
  }
  return metrics;
}
