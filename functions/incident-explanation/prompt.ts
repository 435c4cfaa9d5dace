import type { Prompt } from './explanation';
import type { Incident } from './incident';

export const SYSTEM_PROMPT = [
  'You are a fleet safety analyst for a shared-mobility operator.',
  'Explain a detected safety anomaly to an operations employee who is not an engineer.',
  'Answer with one JSON object and nothing else, with exactly these fields:',
  '{"summary": string (2-4 plain sentences), "likelyCauses": string[] (1-4 items, most likely first),',
  ' "recommendedAction": string (one concrete next step), "confidence": number between 0 and 1}.',
  'Base the answer only on the data given. If the data does not support a conclusion, say so and lower the',
  'confidence.',
].join('\n');

/** Builds the prompt from the incident alone, so the same incident always yields the same prompt. */
export function buildPrompt(incident: Incident): Prompt {
  const telemetry = Object.keys(incident.telemetry)
    .sort()
    .map((name) => `- ${name}: ${JSON.stringify(incident.telemetry[name])}`);
  const user = [
    `Incident ${incident.incidentId} on vehicle ${incident.vehicleId}.`,
    `Anomaly type: ${incident.anomalyType}. Severity: ${incident.severity}.`,
    `Detected at ${incident.detectedAt} at latitude ${incident.location.lat}, longitude ${incident.location.lon}.`,
    'Telemetry snapshot at detection:',
    ...(telemetry.length > 0 ? telemetry : ['- (none recorded)']),
    'Explain what most likely happened, the likely causes and the recommended action.',
  ].join('\n');
  return { system: SYSTEM_PROMPT, user };
}
