/**
 * The incident as this function understands it: the fields of an incident.detected event that the prompt,
 * the rules and the review policy need. `toIncident` reads them from decoded event data and names every
 * field that is missing or wrong, so a malformed event fails with a useful message.
 */
import { MAX_TEXT_BYTES, textLengthProblem } from '../../shared/msk/invalid-field';
import { isoInstant } from '../../shared/time';

export const severities = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'] as const;

export type Severity = (typeof severities)[number];

export type TelemetryValue = string | number | boolean | null;

export interface Incident {
  incidentId: string;
  vehicleId: string;
  severity: Severity;
  anomalyType: string;
  location: { lat: number; lon: number };
  /** Telemetry snapshot at detection time: named readings (speedKmh, batteryTempC, ...). */
  telemetry: Record<string, TelemetryValue>;
  /** ISO-8601 instant the anomaly was detected. */
  detectedAt: string;
}

/**
 * Bounds on the telemetry snapshot: the prompt, the view and the stored outcome (one DynamoDB item, 400 KB at most,
 * written in a batch that one oversized item would fail as a whole) each carry it.
 */
export const MAX_TELEMETRY_READINGS = 64;
export const MAX_TELEMETRY_VALUE_BYTES = 1_024;

export class InvalidIncidentError extends Error {
  override name = 'InvalidIncidentError';
}

type Fields = Record<string, unknown>;

function isRecord(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Avro unions decoded without wrapping come through as plain values; wrapped ones as `{type: value}`. */
function unwrapUnion(value: unknown): unknown {
  if (isRecord(value)) {
    const keys = Object.keys(value);
    if (
      keys.length === 1 &&
      ['string', 'double', 'float', 'int', 'long', 'boolean'].includes(keys[0] as string)
    ) {
      return value[keys[0] as string];
    }
  }
  return value;
}

function toIsoInstant(value: unknown): string | undefined {
  return isoInstant(unwrapUnion(value));
}

function toTelemetry(value: unknown, problems: string[]): Record<string, TelemetryValue> {
  if (!isRecord(value)) return {};
  const telemetry: Record<string, TelemetryValue> = {};
  const names = Object.keys(value);
  if (names.length > MAX_TELEMETRY_READINGS) {
    problems.push(`telemetry has ${names.length} readings, the limit is ${MAX_TELEMETRY_READINGS}`);
    return telemetry;
  }
  for (const [name, raw] of Object.entries(value)) {
    const nameProblem = textLengthProblem(name, MAX_TEXT_BYTES);
    if (nameProblem) {
      problems.push(`telemetry reading name ${nameProblem}`);
      continue;
    }
    const reading = unwrapUnion(raw);
    const valueProblem =
      typeof reading === 'string' ? textLengthProblem(reading, MAX_TELEMETRY_VALUE_BYTES) : undefined;
    if (valueProblem) {
      problems.push(`telemetry.${name} ${valueProblem}`);
      continue;
    }
    if (reading === null || ['string', 'number', 'boolean'].includes(typeof reading)) {
      telemetry[name] = reading as TelemetryValue;
    } else if (typeof reading === 'bigint') {
      telemetry[name] = Number(reading);
    }
  }
  return telemetry;
}

export function toIncident(data: unknown): Incident {
  if (!isRecord(data)) throw new InvalidIncidentError('incident.detected data is not an object');
  const problems: string[] = [];
  const text = (name: string): string => {
    const value = unwrapUnion(data[name]);
    if (typeof value === 'string' && value.length > 0) {
      const tooLong = textLengthProblem(value);
      if (tooLong) problems.push(`${name} ${tooLong}`);
      return value;
    }
    problems.push(`${name} must be a non-empty string`);
    return '';
  };
  const incidentId = text('incidentId');
  const vehicleId = text('vehicleId');
  const anomalyType = text('anomalyType');
  const severity = unwrapUnion(data.severity);
  if (!severities.includes(severity as Severity))
    problems.push(`severity must be one of ${severities.join('/')}`);
  const location = isRecord(data.location) ? data.location : {};
  const lat = Number(unwrapUnion(location.lat ?? location.latitude));
  const lon = Number(unwrapUnion(location.lon ?? location.longitude));
  if (!Number.isFinite(lat) || !Number.isFinite(lon))
    problems.push('location.lat and location.lon must be numbers');
  const detectedAt = toIsoInstant(data.detectedAt ?? data.occurredAt ?? data.timestamp);
  if (detectedAt === undefined) problems.push('detectedAt must be a timestamp');
  const telemetry = toTelemetry(data.telemetry ?? data.telemetrySnapshot, problems);
  if (problems.length > 0)
    throw new InvalidIncidentError(`Invalid incident.detected data: ${problems.join('; ')}`);
  return {
    incidentId,
    vehicleId,
    severity: severity as Severity,
    anomalyType,
    location: { lat, lon },
    telemetry,
    detectedAt: detectedAt as string,
  };
}
