import { existsSync, readFileSync } from 'node:fs';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { explainIncident } from '../../../functions/incident-explanation/explain-incident';
import { FallbackIncidentExplainer } from '../../../functions/incident-explanation/fallback-explainer';
import { toIncident } from '../../../functions/incident-explanation/incident';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { InMemoryIncidentViewStore, InMemoryReviewTasks, ScriptedModelExplainer } from './fakes';

const schemaFile = (topic: string) => new URL(`../../../schemas/${topic}.v1.avsc`, import.meta.url);
const topicsProduced = ['genai.request', 'genai.response', 'genai.hitl.requested'];
const haveSchemas = topicsProduced.every((topic) => existsSync(schemaFile(topic)));

function problems(topic: string, data: unknown): string[] {
  const type = avro.Type.forSchema(JSON.parse(readFileSync(schemaFile(topic), 'utf8')), { registry: {} });
  const found: string[] = [];
  type.isValid(data, {
    errorHook: (path, value) => found.push(`${path.join('.')}=${JSON.stringify(value)}`),
  });
  return found;
}

// The events this function produces must encode with the committed schemas (the producer encodes them).
describe.skipIf(!haveSchemas)('produced events match schemas/genai.*.v1.avsc', () => {
  const incidentData = {
    incidentId: 'inc-schema',
    vehicleId: 'veh-1',
    vehicleType: 'SCOOTER',
    bookingId: null,
    customerId: null,
    severity: 'CRITICAL',
    anomalyType: 'CRASH_DETECTED',
    location: { lat: 52.5, lon: 13.4 },
    zoneId: 'berlin-mitte',
    telemetry: {
      speedKmh: 23.5,
      accelerationG: -3.1,
      batteryLevelPct: 64,
      batteryTempC: 31.5,
      odometerMeters: 120_345,
      firmwareVersion: '4.2.1',
      capturedAt: 1_795_428_000_000,
    },
    anomalyScore: 0.97,
    detectorVersion: 'det-1.4',
    detectedAt: 1_795_428_000_000,
  };

  it.each([
    ['a model answer', new ScriptedModelExplainer({ confidence: 0.9 })],
    [
      'a fallback',
      new FallbackIncidentExplainer(
        new ScriptedModelExplainer(new Error('down')),
        new RulesIncidentExplainer(),
      ),
    ],
  ])('with %s', async (_label, explainer) => {
    const outcome = await explainIncident(
      toIncident(incidentData),
      {},
      { explainer, views: new InMemoryIncidentViewStore(), reviews: new InMemoryReviewTasks() },
    );
    expect(outcome.events.map((event) => event.topic)).toEqual(topicsProduced);
    for (const event of outcome.events) expect(problems(event.topic, event.data)).toEqual([]);
  });
});
