import { describe, expect, it } from 'vitest';
import { incidentArtefactId, uuidV5 } from '../../../functions/incident-explanation/deterministic-id';
import { explainIncident } from '../../../functions/incident-explanation/explain-incident';
import {
  createExplainer,
  explainerSettingsFromEnv,
} from '../../../functions/incident-explanation/explainer-config';
import { parseExplanation } from '../../../functions/incident-explanation/explanation';
import { FallbackIncidentExplainer } from '../../../functions/incident-explanation/fallback-explainer';
import { toIncident } from '../../../functions/incident-explanation/incident';
import { buildPrompt } from '../../../functions/incident-explanation/prompt';
import { toResolution } from '../../../functions/incident-explanation/resolve-review';
import { confidenceThresholdFromEnv } from '../../../functions/incident-explanation/review-policy';
import {
  RULES_MODEL_ID,
  RulesIncidentExplainer,
} from '../../../functions/incident-explanation/rules-explainer';
import { ScriptedModelExplainer, sampleIncident } from './fakes';

const fixedClock = () => new Date('2026-11-23T10:00:01.000Z');

function dependencies(explainer = new ScriptedModelExplainer({ confidence: 0.9 })) {
  return {
    explainer,
    clock: fixedClock,
  };
}

describe('deterministic ids', () => {
  it('computes RFC 9562 UUIDv5 (the RFC example: DNS namespace, www.example.com)', () => {
    expect(uuidV5('www.example.com', '6ba7b810-9dad-11d1-80b4-00c04fd430c8')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });
  it('gives one id per incident and kind', () => {
    expect(incidentArtefactId('inc-1', 'genai.request')).toBe(incidentArtefactId('inc-1', 'genai.request'));
    expect(incidentArtefactId('inc-1', 'genai.request')).not.toBe(
      incidentArtefactId('inc-1', 'genai.response'),
    );
    expect(incidentArtefactId('inc-1', 'genai.request')).not.toBe(
      incidentArtefactId('inc-2', 'genai.request'),
    );
  });
});

describe('toIncident', () => {
  it('reads decoded incident.detected data, unwrapping Avro unions', () => {
    const incident = toIncident({
      incidentId: 'inc-9',
      vehicleId: 'veh-1',
      severity: 'HIGH',
      anomalyType: 'CRASH_DETECTED',
      location: { lat: 1.5, lon: { double: 2.5 } },
      telemetry: { speedKmh: { double: 12 }, locked: false },
      detectedAt: 1_763_892_000_000,
    });
    expect(incident).toMatchObject({
      location: { lat: 1.5, lon: 2.5 },
      telemetry: { speedKmh: 12, locked: false },
    });
    expect(incident.detectedAt).toBe('2025-11-23T10:00:00.000Z');
  });
  it('names every missing field', () => {
    expect(() => toIncident({ incidentId: 'x', severity: 'SEVERE' })).toThrow(
      /vehicleId.*anomalyType.*severity.*location.*detectedAt/,
    );
  });
  it('names a detectedAt outside what a Date holds instead of throwing a bare RangeError', () => {
    expect(() =>
      toIncident({
        incidentId: 'inc-9',
        vehicleId: 'veh-1',
        severity: 'HIGH',
        anomalyType: 'CRASH_DETECTED',
        location: { lat: 1.5, lon: 2.5 },
        detectedAt: 1e20,
      }),
    ).toThrow(/Invalid incident.detected data: detectedAt must be a timestamp/);
  });
});

describe('toResolution', () => {
  const data = { reviewId: 'r-1', incidentId: 'inc-9', decision: 'APPROVE', reviewer: 'ana' };
  it('takes resolvedAt when given, the event time otherwise', () => {
    expect(
      toResolution({ ...data, resolvedAt: 1_763_892_000_000 }, '2026-01-01T00:00:00.000Z').resolvedAt,
    ).toBe('2025-11-23T10:00:00.000Z');
    expect(toResolution(data, '2026-01-01T00:00:00.000Z').resolvedAt).toBe('2026-01-01T00:00:00.000Z');
  });
  it('rejects a resolution without a decision', () => {
    expect(() => toResolution({ reviewId: 'r', incidentId: 'i', reviewer: 'x' }, 't')).toThrow(/decision/);
  });
  it('bounds the ids and the comment before they reach a store key or item, naming the field and its size', () => {
    expect(() => toResolution({ ...data, incidentId: 'i'.repeat(3_000) }, 't')).toThrow(
      /genai.hitl.resolved data: incidentId is 3000 bytes, the limit is 512/,
    );
    expect(() => toResolution({ ...data, comment: 'é'.repeat(5_000) }, 't')).toThrow(
      /comment is 10000 bytes, the limit is 8192/,
    );
    expect(toResolution({ ...data, comment: 'c'.repeat(8_192) }, 't').comment).toHaveLength(8_192);
  });
  it('names a resolvedAt that is not a time', () => {
    for (const resolvedAt of ['not a time', 1e20]) {
      expect(() => toResolution({ ...data, resolvedAt }, '2026-01-01T00:00:00.000Z')).toThrow(
        /genai.hitl.resolved data: resolvedAt is not a time/,
      );
    }
  });
});

describe('buildPrompt', () => {
  it('is deterministic and carries the facts of the incident', () => {
    const prompt = buildPrompt(sampleIncident());
    expect(buildPrompt(sampleIncident())).toEqual(prompt);
    expect(prompt.user).toContain('HARSH_BRAKING');
    expect(prompt.user).toContain('accelerationG: -0.9');
    expect(prompt.system).toContain('JSON');
  });
});

describe('parseExplanation', () => {
  it('reads the JSON answer inside surrounding prose and clamps confidence', () => {
    const parsed = parseExplanation(
      'Here you go:\n```json\n{"summary":"S","likelyCauses":["a"],"recommendedAction":"R","confidence":1.4}\n```',
    );
    expect(parsed).toEqual({ summary: 'S', likelyCauses: ['a'], recommendedAction: 'R', confidence: 1 });
  });
  it('rejects output without the fields', () => {
    expect(() => parseExplanation('I cannot help')).toThrow(/no JSON/);
    expect(() => parseExplanation('{"summary":"S"}')).toThrow(/lacks/);
  });
});

describe('rules explainer', () => {
  it('is deterministic and labelled RULES_FALLBACK', async () => {
    const rules = new RulesIncidentExplainer();
    const incident = sampleIncident({ severity: 'CRITICAL', anomalyType: 'BATTERY_OVERHEAT' });
    const first = await rules.explain(incident, buildPrompt(incident));
    const second = await rules.explain(incident, buildPrompt(incident));
    expect(first.explainer).toBe('RULES_FALLBACK');
    expect(first.modelId).toBe(RULES_MODEL_ID);
    expect(first.explanation).toEqual(second.explanation);
    expect(first.explanation.recommendedAction).toMatch(/^Immobilise/);
  });
  it('has low confidence for an anomaly type it does not know', async () => {
    const incident = sampleIncident({ anomalyType: 'SOMETHING_NEW' });
    const result = await new RulesIncidentExplainer().explain(incident, buildPrompt(incident));
    expect(result.explanation.confidence).toBeLessThan(0.6);
  });
});

describe('explainIncident', () => {
  it('gives the view and produces genai.request and genai.response, no review for a confident MEDIUM', async () => {
    const deps = dependencies();
    const outcome = await explainIncident(sampleIncident(), { correlationId: 'corr-1' }, deps);
    expect(outcome.review).toBeUndefined();
    expect(outcome.events.map((event) => event.topic)).toEqual(['genai.request', 'genai.response']);
    const [request, response] = outcome.events;
    expect(request).toMatchObject({
      key: 'inc-0001',
      id: incidentArtefactId('inc-0001', 'genai.request'),
      correlationId: 'corr-1',
      data: { modelId: 'test.scripted-model-v1', parameters: { maxTokens: 512, temperature: 0.2 } },
    });
    expect(request?.data.prompt).toContain('HARSH_BRAKING');
    expect(response?.data).toMatchObject({
      explainer: 'MODEL',
      inputTokens: 120,
      outputTokens: 60,
      totalTokens: 180,
      latencyMs: 42,
      confidence: 0.9,
    });
    expect(outcome.view).toMatchObject({ explainer: 'MODEL', severity: 'MEDIUM' });
  });

  it.each([
    ['HIGH', 0.9, ['SEVERITY_HIGH']],
    ['CRITICAL', 0.9, ['SEVERITY_CRITICAL']],
    ['LOW', 0.3, ['LOW_CONFIDENCE']],
    ['MEDIUM', 0.59, ['LOW_CONFIDENCE']],
  ] as const)('opens a review for %s severity at confidence %s', async (severity, confidence, reasons) => {
    const deps = dependencies(new ScriptedModelExplainer({ confidence }));
    const outcome = await explainIncident(sampleIncident({ severity }), {}, deps);
    expect(outcome.review).toMatchObject({ status: 'OPEN', reasons });
    const hitl = outcome.events.find((event) => event.topic === 'genai.hitl.requested');
    expect(hitl?.id).toBe(incidentArtefactId('inc-0001', 'genai.hitl.requested'));
    expect(hitl?.data).toMatchObject({ reviewId: outcome.review?.reviewId, incidentId: 'inc-0001' });
  });

  it('falls back to the rules when the model fails, labels it and opens a review', async () => {
    const explainer = new FallbackIncidentExplainer(
      new ScriptedModelExplainer(new Error('model down')),
      new RulesIncidentExplainer(),
    );
    const deps = dependencies();
    const outcome = await explainIncident(sampleIncident(), {}, { ...deps, explainer });
    const response = outcome.events.find((event) => event.topic === 'genai.response');
    expect(response?.data).toMatchObject({
      explainer: 'RULES_FALLBACK',
      modelId: RULES_MODEL_ID,
      attemptedModelId: 'test.scripted-model-v1',
      fallbackReason: 'Error: model down',
    });
    expect(outcome.events[0]?.data.modelId).toBe('test.scripted-model-v1');
    expect(outcome.review?.reasons).toContain('EXPLANATION_FAILED');
    expect(outcome.view).toMatchObject({ explainer: 'RULES_FALLBACK', fallbackReason: 'Error: model down' });
  });

  it('produces identical events for the same incident (deterministic ids and content)', async () => {
    const first = await explainIncident(sampleIncident({ severity: 'HIGH' }), {}, dependencies());
    const second = await explainIncident(sampleIncident({ severity: 'HIGH' }), {}, dependencies());
    expect(second.events).toEqual(first.events);
  });
});

describe('explainer settings', () => {
  it('uses the rules when no model is configured, Bedrock with fallback when one is', () => {
    expect(explainerSettingsFromEnv({})).toMatchObject({ kind: 'rules' });
    expect(createExplainer(explainerSettingsFromEnv({}))).toBeInstanceOf(RulesIncidentExplainer);
    const settings = explainerSettingsFromEnv({ BEDROCK_MODEL_ID: 'm', BEDROCK_TIMEOUT_MS: '1500' });
    expect(settings).toMatchObject({ circuitFailureThreshold: 3, circuitCoolDownMs: 30_000 });
    expect(
      explainerSettingsFromEnv({
        BEDROCK_MODEL_ID: 'm',
        BEDROCK_CIRCUIT_FAILURES: '5',
        BEDROCK_CIRCUIT_COOLDOWN_MS: '1000',
      }),
    ).toMatchObject({ circuitFailureThreshold: 5, circuitCoolDownMs: 1000 });
    expect(() => explainerSettingsFromEnv({ BEDROCK_MODEL_ID: 'm', BEDROCK_CIRCUIT_FAILURES: '0' })).toThrow(
      /BEDROCK_CIRCUIT_FAILURES/,
    );
    expect(settings).toMatchObject({ kind: 'bedrock', modelId: 'm', timeoutMs: 1500, maxAttempts: 3 });
    expect(createExplainer(settings)).toBeInstanceOf(FallbackIncidentExplainer);
    expect(
      createExplainer(explainerSettingsFromEnv({ EXPLAINER: 'rules', BEDROCK_MODEL_ID: 'm' })),
    ).toBeInstanceOf(RulesIncidentExplainer);
  });
  it('fails at start-up on a bad setting', () => {
    expect(() => explainerSettingsFromEnv({ EXPLAINER: 'bedrock' })).toThrow(/BEDROCK_MODEL_ID/);
    expect(() => explainerSettingsFromEnv({ EXPLAINER: 'gpt' })).toThrow(/EXPLAINER/);
    expect(() => explainerSettingsFromEnv({ BEDROCK_MODEL_ID: 'm', BEDROCK_TIMEOUT_MS: 'soon' })).toThrow(
      /BEDROCK_TIMEOUT_MS/,
    );
  });
});

describe('review confidence threshold', () => {
  it('defaults to 0.6 and accepts 0..1', () => {
    expect(confidenceThresholdFromEnv({})).toBe(0.6);
    expect(confidenceThresholdFromEnv({ REVIEW_CONFIDENCE_THRESHOLD: '0.75' })).toBe(0.75);
    expect(() => confidenceThresholdFromEnv({ REVIEW_CONFIDENCE_THRESHOLD: '75' })).toThrow(
      /between 0 and 1/,
    );
  });
});
