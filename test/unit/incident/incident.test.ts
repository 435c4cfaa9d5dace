import { describe, expect, it } from 'vitest';
import {
  InvalidIncidentError,
  MAX_TELEMETRY_READINGS,
  toIncident,
} from '../../../functions/incident-explanation/incident';
import { sampleIncident } from './fakes';

// An incident's id is a store key and its telemetry is copied into the prompt, the view and the stored outcome,
// each written in batches that DynamoDB refuses as a whole for one oversized item: bounded at decode, per record.
describe('toIncident bounds', () => {
  const valid = () => ({ ...sampleIncident() }) as Record<string, unknown>;

  it('accepts ids up to 512 UTF-8 bytes, counting multi-byte characters by their bytes', () => {
    expect(toIncident({ ...valid(), incidentId: '€'.repeat(170) }).incidentId).toHaveLength(170);
    expect(() => toIncident({ ...valid(), incidentId: '€'.repeat(171) })).toThrow(
      'incidentId is 513 bytes, the limit is 512',
    );
  });

  it('names every over-long text field', () => {
    const build = () => toIncident({ ...valid(), vehicleId: 'v'.repeat(600), anomalyType: 'a'.repeat(513) });
    expect(build).toThrow(InvalidIncidentError);
    expect(build).toThrow(
      'vehicleId is 600 bytes, the limit is 512; anomalyType is 513 bytes, the limit is 512',
    );
  });

  it('refuses more telemetry readings than the limit, a long reading name and a long string value', () => {
    const many = Object.fromEntries(
      Array.from({ length: MAX_TELEMETRY_READINGS + 1 }, (_, i) => [`r${i}`, i]),
    );
    expect(() => toIncident({ ...valid(), telemetry: many })).toThrow(
      `telemetry has ${MAX_TELEMETRY_READINGS + 1} readings, the limit is ${MAX_TELEMETRY_READINGS}`,
    );
    expect(() => toIncident({ ...valid(), telemetry: { ['n'.repeat(513)]: 1 } })).toThrow(
      'telemetry reading name is 513 bytes, the limit is 512',
    );
    expect(() => toIncident({ ...valid(), telemetry: { note: 'x'.repeat(1025) } })).toThrow(
      'telemetry.note is 1025 bytes, the limit is 1024',
    );
    const atLimit = Object.fromEntries(
      Array.from({ length: MAX_TELEMETRY_READINGS }, (_, i) => [`r${i}`, 'x'.repeat(1024)]),
    );
    expect(Object.keys(toIncident({ ...valid(), telemetry: atLimit }).telemetry)).toHaveLength(
      MAX_TELEMETRY_READINGS,
    );
  });
});
