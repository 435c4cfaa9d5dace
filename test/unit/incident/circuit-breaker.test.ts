import { describe, expect, it } from 'vitest';
import {
  CircuitBreaker,
  CircuitBreakingExplainer,
  CircuitOpenError,
  type CircuitStateChange,
  circuitMetricName,
} from '../../../functions/incident-explanation/circuit-breaker';
import { ModelOutputError } from '../../../functions/incident-explanation/explanation';
import {
  describeFailure,
  FallbackIncidentExplainer,
} from '../../../functions/incident-explanation/fallback-explainer';
import { buildPrompt } from '../../../functions/incident-explanation/prompt';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { CountingExplainer, ScriptedModelExplainer, sampleIncident } from './fakes';

const incident = sampleIncident();
const prompt = buildPrompt(incident);

/** A model that fails or answers as `healthy` says at the time of the call. */
function switchableModel() {
  const state = { healthy: false, output: false };
  const model = new CountingExplainer({
    modelId: 'test.model',
    parameters: { maxTokens: 1, temperature: 0 },
    explain: () => {
      if (state.output) throw new ModelOutputError('Model output contains no JSON object');
      if (!state.healthy) throw new Error('TimeoutError: Request timed out');
      return new ScriptedModelExplainer({ confidence: 0.9 }).explain();
    },
  });
  return { model, state };
}

function setUp(failureThreshold = 3, coolDownMs = 30_000) {
  const clock = { now: 0 };
  const changes: CircuitStateChange[] = [];
  const breaker = new CircuitBreaker({
    failureThreshold,
    coolDownMs,
    now: () => clock.now,
    onStateChange: (change) => changes.push(change),
  });
  const { model, state } = switchableModel();
  const explainer = new FallbackIncidentExplainer(
    new CircuitBreakingExplainer(model, breaker, describeFailure),
    new RulesIncidentExplainer(),
  );
  return { clock, changes, breaker, model, state, explainer };
}

describe('Bedrock circuit breaker', () => {
  it('opens after N consecutive failures and then answers with the labelled rules without calling the model', async () => {
    const { breaker, model, explainer, changes } = setUp(3);
    for (let i = 0; i < 3; i++)
      expect((await explainer.explain(incident, prompt)).explainer).toBe('RULES_FALLBACK');
    expect(breaker.state).toBe('OPEN');
    expect(model.calls).toBe(3);

    for (let i = 0; i < 50; i++) {
      const result = await explainer.explain(incident, prompt);
      expect(result.explainer).toBe('RULES_FALLBACK');
      expect(result.fallback).toEqual({
        attemptedModelId: 'test.model',
        reason: 'CircuitOpenError: circuit open after consecutive model failures; next probe in 30 s',
      });
    }
    expect(model.calls).toBe(3);
    expect(changes).toEqual([
      {
        from: 'CLOSED',
        to: 'OPEN',
        consecutiveFailures: 3,
        reason: 'Error: TimeoutError: Request timed out',
      },
    ]);
  });

  it('counts consecutive failures only: a success in between starts again', async () => {
    const { breaker, state, explainer } = setUp(3);
    await explainer.explain(incident, prompt);
    await explainer.explain(incident, prompt);
    state.healthy = true;
    expect((await explainer.explain(incident, prompt)).explainer).toBe('MODEL');
    state.healthy = false;
    await explainer.explain(incident, prompt);
    await explainer.explain(incident, prompt);
    expect(breaker.state).toBe('CLOSED');
  });

  it('does not count unreadable model output: the service answered', async () => {
    const { breaker, state, explainer } = setUp(2);
    state.output = true;
    for (let i = 0; i < 5; i++) await explainer.explain(incident, prompt);
    expect(breaker.state).toBe('CLOSED');
  });

  it('lets one probe through after the cool-down; its failure opens it again for another cool-down', async () => {
    const { breaker, clock, model, explainer, changes } = setUp(2, 10_000);
    await explainer.explain(incident, prompt);
    await explainer.explain(incident, prompt);
    clock.now = 9_999;
    await explainer.explain(incident, prompt);
    expect(model.calls).toBe(2);

    clock.now = 10_000;
    await explainer.explain(incident, prompt); // the probe, and Bedrock is still down
    expect(model.calls).toBe(3);
    expect(breaker.state).toBe('OPEN');
    clock.now = 19_999;
    await explainer.explain(incident, prompt);
    expect(model.calls).toBe(3);
    expect(changes.map((c) => `${c.from}->${c.to}`)).toEqual([
      'CLOSED->OPEN',
      'OPEN->HALF_OPEN',
      'HALF_OPEN->OPEN',
    ]);
  });

  it('refuses other calls while the probe is in flight, and closes when the probe succeeds', async () => {
    const { breaker, clock, model, state, explainer, changes } = setUp(1, 5_000);
    await explainer.explain(incident, prompt);
    clock.now = 5_000;
    state.healthy = true;
    const [probe, concurrent] = await Promise.all([
      explainer.explain(incident, prompt),
      explainer.explain(incident, prompt),
    ]);
    expect(probe.explainer).toBe('MODEL');
    expect(concurrent.explainer).toBe('RULES_FALLBACK');
    expect(concurrent.fallback?.reason).toBe(
      'CircuitOpenError: circuit half-open; another call is probing the model',
    );
    expect(breaker.state).toBe('CLOSED');
    for (let i = 0; i < 5; i++) expect((await explainer.explain(incident, prompt)).explainer).toBe('MODEL');
    expect(model.calls).toBe(7);
    expect(changes.map((c) => c.to)).toEqual(['OPEN', 'HALF_OPEN', 'CLOSED']);
    expect(changes.map((c) => circuitMetricName(c))).toEqual([
      'BedrockCircuitOpened',
      'BedrockCircuitHalfOpened',
      'BedrockCircuitClosed',
    ]);
  });

  it('throws CircuitOpenError itself (the fallback is what labels the answer)', async () => {
    const breaker = new CircuitBreaker({ failureThreshold: 1, coolDownMs: 1000, now: () => 0 });
    breaker.onFailure('down');
    const guarded = new CircuitBreakingExplainer(new RulesIncidentExplainer(), breaker, describeFailure);
    await expect(guarded.explain(incident, prompt)).rejects.toThrow(CircuitOpenError);
    expect(() => new CircuitBreaker({ failureThreshold: 0, coolDownMs: 1 })).toThrow(/failureThreshold/);
  });
});
