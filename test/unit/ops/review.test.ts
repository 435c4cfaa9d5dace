// What `review resolve` produces for each decision word, and how `review list` prints.
import { describe, expect, it } from 'vitest';
import { formatReviews, REVIEW_SOURCE, resolutionEvent } from '../../../ops/review';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import { toKafkaMessage } from '../../../shared/kafka/event-message';

const task = {
  reviewId: 'rev-1',
  incidentId: 'inc-1',
  status: 'OPEN' as const,
  reasons: ['SEVERITY_CRITICAL' as const, 'LOW_CONFIDENCE' as const],
  openedAt: '2026-12-06T09:00:00.000Z',
};
const now = new Date('2026-12-06T10:00:00.000Z');

describe('review resolve', () => {
  it.each([
    ['approve', 'CONFIRMED'],
    ['override', 'REJECTED'],
    ['escalate', 'ESCALATED'],
  ] as const)(
    '%s produces a genai.hitl.resolved with decision %s, keyed by the incident',
    (word, decision) => {
      const event = resolutionEvent(task, { decision: word, reviewer: 'ana', now, id: 'ce-1' });
      expect(event).toEqual({
        topic: 'genai.hitl.resolved',
        key: 'inc-1',
        id: 'ce-1',
        type: 'genai.hitl.resolved',
        source: REVIEW_SOURCE,
        subject: 'inc-1',
        time: '2026-12-06T10:00:00.000Z',
        data: {
          reviewId: 'rev-1',
          incidentId: 'inc-1',
          decision,
          reviewer: 'ana',
          comment: null,
          resolvedAt: now.getTime(),
        },
      });
      // It encodes with the newest catalog schema, as the producer will.
      expect(toKafkaMessage(event, fileCatalogSchemaRegistry).value.length).toBeGreaterThan(5);
    },
  );

  it('carries the note as the comment', () => {
    expect(
      resolutionEvent(task, { decision: 'approve', reviewer: 'ana', note: 'ok', now, id: 'x' }).data.comment,
    ).toBe('ok');
  });
});

describe('review list', () => {
  it('prints one row per open review, or says there are none', () => {
    expect(formatReviews([])).toBe('No open reviews.');
    expect(formatReviews([task]).split('\n')).toEqual([
      'opened at                 incident  review  reasons',
      '2026-12-06T09:00:00.000Z  inc-1     rev-1   SEVERITY_CRITICAL,LOW_CONFIDENCE',
    ]);
  });
});
