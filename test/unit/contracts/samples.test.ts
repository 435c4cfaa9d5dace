import { describe, expect, it } from 'vitest';
import type { ExplainerResult } from '../../../functions/incident-explanation/explanation';
import type { Incident } from '../../../functions/incident-explanation/incident';
import { reviewReasons } from '../../../functions/incident-explanation/review-policy';
import { sampleData } from '../../../schemas/samples';

// Sample events (events/) must look like what the producing function really emits.
describe('sample genai.hitl.requested events', () => {
  it.each([0, 1, 2, 3])('n=%i carries the reasons incident-explanation gives its severity', (n) => {
    const sample = sampleData['genai.hitl.requested'](n);
    expect(sample.explainer).toBe('MODEL');
    const reasons = reviewReasons(
      { severity: sample.severity } as Incident,
      {
        explanation: { confidence: sample.confidence },
      } as ExplainerResult,
    );
    expect(sample.reasons).toEqual(reasons);
    expect(sample.reason).toBe(reasons.join(','));
  });
});
