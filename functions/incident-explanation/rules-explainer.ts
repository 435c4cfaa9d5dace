import type {
  ExplainerResult,
  Explanation,
  IncidentExplainer,
  InferenceParameters,
  Prompt,
} from './explanation';
import type { Incident, Severity } from './incident';

/** Identifies the rule set in the events; bump it when the rules change. */
export const RULES_MODEL_ID = 'rules/incident-explainer-v1';

interface Rule {
  /** Matched against the anomaly type, case-insensitively, as a substring. */
  matches: string[];
  summary: (incident: Incident) => string;
  likelyCauses: string[];
  recommendedAction: string;
  confidence: number;
}

const reading = (incident: Incident, ...names: string[]): string => {
  for (const name of names) {
    const value = incident.telemetry[name];
    if (value !== undefined && value !== null) return `${name} ${value}`;
  }
  return 'no matching telemetry reading';
};

const rules: Rule[] = [
  {
    matches: ['SENSOR_FAULT'],
    summary: (i) =>
      `A sensor on vehicle ${i.vehicleId} reported implausible readings (firmware ${i.telemetry.firmwareVersion ?? 'unknown'}). ` +
      'The anomaly may not reflect what really happened to the vehicle.',
    likelyCauses: ['Faulty or loose sensor', 'Firmware defect'],
    recommendedAction: "Schedule a diagnostic check and compare with the vehicle's other readings.",
    confidence: 0.6,
  },
  {
    matches: ['COLLISION', 'IMPACT', 'CRASH'],
    summary: (i) =>
      `Vehicle ${i.vehicleId} registered a sudden impact (${reading(i, 'accelerationG', 'speedKmh')}). ` +
      'This pattern usually means the vehicle hit an object or was hit.',
    likelyCauses: ['Collision with another road user or object', 'Vehicle knocked over while parked'],
    recommendedAction: 'Contact the rider, check for injuries and send a field team to inspect the vehicle.',
    confidence: 0.75,
  },
  {
    matches: ['BRAK'],
    summary: (i) =>
      `Vehicle ${i.vehicleId} braked unusually hard (${reading(i, 'accelerationG', 'speedKmh')}). ` +
      'Hard braking often follows a near miss or an obstacle on the road.',
    likelyCauses: ['Near miss with another road user', 'Obstacle or pothole on the route', 'Brake fault'],
    recommendedAction: 'Review the trip and check the brakes at the next service stop.',
    confidence: 0.7,
  },
  {
    matches: ['SPEED'],
    summary: (i) =>
      `Vehicle ${i.vehicleId} was going faster than allowed (${reading(i, 'speedKmh')}). ` +
      'This is usually rider behaviour, sometimes a speed-limiter fault.',
    likelyCauses: ['Rider exceeding the speed limit', 'Speed limiter misconfigured or faulty'],
    recommendedAction: 'Warn the rider and verify the speed-limiter configuration of the vehicle.',
    confidence: 0.75,
  },
  {
    matches: ['BATTERY', 'THERMAL', 'OVERHEAT', 'TEMPERATURE'],
    summary: (i) =>
      `The battery of vehicle ${i.vehicleId} reported an abnormal reading (${reading(i, 'batteryTempC', 'batteryLevelPct')}). ` +
      'Overheating batteries can fail or catch fire.',
    likelyCauses: ['Battery cell degradation', 'Charging fault', 'High ambient temperature under load'],
    recommendedAction: 'Take the vehicle out of service and have the battery inspected before the next ride.',
    confidence: 0.7,
  },
  {
    matches: ['TAMPER', 'THEFT', 'UNAUTHORI', 'GEOFENCE', 'UNEXPECTED_MOVEMENT'],
    summary: (i) =>
      `Vehicle ${i.vehicleId} moved or was handled outside normal use near ${i.location.lat}, ${i.location.lon}. ` +
      'This can indicate theft, vandalism or a ride outside the allowed area.',
    likelyCauses: ['Unauthorised movement or theft attempt', 'Ride outside the service area', 'GPS drift'],
    recommendedAction: 'Lock the vehicle remotely and ask a field team to locate it.',
    confidence: 0.65,
  },
];

const actionBySeverity: Record<Severity, string> = {
  LOW: 'No immediate action; keep monitoring the vehicle.',
  MEDIUM: 'Schedule an inspection of the vehicle.',
  HIGH: 'Inspect the vehicle before its next ride.',
  CRITICAL: 'Immobilise the vehicle and dispatch a field team now.',
};

/**
 * Deterministic explanation from the anomaly type, severity and telemetry: used when no model is configured
 * (local runs) and as the fallback when the model fails. Always labelled RULES_FALLBACK.
 */
export class RulesIncidentExplainer implements IncidentExplainer {
  readonly modelId = RULES_MODEL_ID;
  readonly parameters: InferenceParameters = { maxTokens: 0, temperature: 0 };

  async explain(incident: Incident, _prompt: Prompt): Promise<ExplainerResult> {
    const started = performance.now();
    const explanation = explainByRules(incident);
    return {
      explainer: 'RULES_FALLBACK',
      modelId: this.modelId,
      explanation,
      output: JSON.stringify(explanation),
      usage: { inputTokens: 0, outputTokens: 0, totalTokens: 0 },
      latencyMs: Math.round(performance.now() - started),
    };
  }
}

export function explainByRules(incident: Incident): Explanation {
  const type = incident.anomalyType.toUpperCase();
  const rule = rules.find((candidate) => candidate.matches.some((word) => type.includes(word)));
  if (rule === undefined) {
    return {
      summary:
        `Vehicle ${incident.vehicleId} reported a ${incident.anomalyType} anomaly of ${incident.severity} severity. ` +
        'The rules have no specific explanation for this anomaly type.',
      likelyCauses: ['Unknown: not covered by the explanation rules'],
      recommendedAction: actionBySeverity[incident.severity],
      confidence: 0.3,
    };
  }
  const critical = incident.severity === 'CRITICAL';
  return {
    summary: rule.summary(incident),
    likelyCauses: [...rule.likelyCauses],
    recommendedAction: critical
      ? `${actionBySeverity.CRITICAL} ${rule.recommendedAction}`
      : rule.recommendedAction,
    confidence: rule.confidence,
  };
}
