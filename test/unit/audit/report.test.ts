import { describe, expect, it } from 'vitest';
import type { AppendBatchResult } from '../../../functions/audit-append/append-batch';
import { reportAppend } from '../../../functions/audit-append/report';

describe('reportAppend', () => {
  it('logs a conflict under the keys every function’s record logs use (eventId, correlationId, coordinates) and its source', () => {
    const errors: Record<string, unknown>[] = [];
    const result: AppendBatchResult = {
      failures: [],
      appended: 0,
      duplicates: 0,
      conflicts: [
        {
          topic: 'payment.failed',
          partition: 2,
          offset: 41,
          ceId: 'evt-41',
          source: 'urn:mobility:payments',
          correlationId: 'corr-1',
        },
      ],
      poison: [],
      rejected: [],
    };
    reportAppend(
      result,
      {
        logger: { info: () => {}, error: (_message, attributes) => errors.push(attributes) },
        metrics: { addMetric: () => {} },
      },
      0,
    );
    expect(errors).toEqual([
      {
        topic: 'payment.failed',
        partition: 2,
        offset: 41,
        eventId: 'evt-41',
        eventSource: 'urn:mobility:payments',
        correlationId: 'corr-1',
      },
    ]);
  });
});
