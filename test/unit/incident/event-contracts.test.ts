import { describe, expect, it } from 'vitest';
import { explainIncident } from '../../../functions/incident-explanation/explain-incident';
import { FallbackIncidentExplainer } from '../../../functions/incident-explanation/fallback-explainer';
import { toIncident } from '../../../functions/incident-explanation/incident';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import { ScriptedModelExplainer } from './fakes';

const topicsProduced = ['genai.request', 'genai.response', 'genai.hitl.requested'];

/** Why `data` does not fit the newest catalog schema of `topic` (what the producer encodes with). */
function problems(topic: string, data: unknown): string[] {
  const found: string[] = [];
  fileCatalogSchemaRegistry.latest(topic).writerType.isValid(data, {
    errorHook: (path, value) => found.push(`${path.join('.')}=${JSON.stringify(value)}`),
  });
  return found;
}

// The events this function produces must encode with the committed schemas (the producer encodes them).
describe('produced events match the newest catalog schemas of genai.*', () => {
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
    const outcome = await explainIncident(toIncident(incidentData), {}, { explainer });
    expect(outcome.events.map((event) => event.topic)).toEqual(topicsProduced);
    for (const event of outcome.events) expect(problems(event.topic, event.data)).toEqual([]);
  });
});
