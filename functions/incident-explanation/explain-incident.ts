import { incidentArtefactId } from './deterministic-id';
import type { ExplainerResult, IncidentExplainer } from './explanation';
import type { Incident } from './incident';
import type { IncidentOutcome, IncidentView, OutgoingEvent, ReviewTask } from './ports';
import { buildPrompt } from './prompt';
import { DEFAULT_CONFIDENCE_THRESHOLD, reviewReasons } from './review-policy';

export const EVENT_SOURCE = 'mobility-events/incident-explanation';

export const topics = {
  incidentDetected: 'incident.detected',
  genaiRequest: 'genai.request',
  genaiResponse: 'genai.response',
  hitlRequested: 'genai.hitl.requested',
  hitlResolved: 'genai.hitl.resolved',
} as const;

export interface ExplainIncidentDependencies {
  explainer: IncidentExplainer;
  clock?: () => Date;
  confidenceThreshold?: number;
}

/** Trace context of the incident.detected event, carried onto the events produced for it. */
export interface TraceContext {
  correlationId?: string;
  traceparent?: string;
}

export type { IncidentOutcome };

/**
 * Explains one incident: the view to store, the review to open if one is needed and the events to produce.
 * Writes nothing: the batch stores the outcomes of all its incidents together (incident-batch.ts).
 */
export async function explainIncident(
  incident: Incident,
  trace: TraceContext,
  dependencies: ExplainIncidentDependencies,
): Promise<IncidentOutcome> {
  const clock = dependencies.clock ?? (() => new Date());
  const prompt = buildPrompt(incident);
  const requestedAt = clock().toISOString();
  const result = await dependencies.explainer.explain(incident, prompt);
  const respondedAt = clock().toISOString();

  const reasons = reviewReasons(
    incident,
    result,
    dependencies.confidenceThreshold ?? DEFAULT_CONFIDENCE_THRESHOLD,
  );
  const review: ReviewTask | undefined =
    reasons.length > 0
      ? {
          reviewId: incidentArtefactId(incident.incidentId, 'review'),
          incidentId: incident.incidentId,
          status: 'OPEN',
          reasons,
          openedAt: respondedAt,
        }
      : undefined;

  const view: IncidentView = {
    incidentId: incident.incidentId,
    vehicleId: incident.vehicleId,
    severity: incident.severity,
    anomalyType: incident.anomalyType,
    location: incident.location,
    detectedAt: incident.detectedAt,
    explanation: result.explanation,
    explainer: result.explainer,
    modelId: result.modelId,
    ...(result.fallback ? { fallbackReason: result.fallback.reason } : {}),
    ...(review ? { reviewId: review.reviewId } : {}),
    explainedAt: respondedAt,
  };

  const requestId = incidentArtefactId(incident.incidentId, topics.genaiRequest);
  const event = (topic: string, time: string, data: Record<string, unknown>): OutgoingEvent => ({
    topic,
    key: incident.incidentId,
    id: incidentArtefactId(incident.incidentId, topic),
    type: topic,
    source: EVENT_SOURCE,
    subject: incident.incidentId,
    time,
    data,
    ...(trace.correlationId ? { correlationId: trace.correlationId } : {}),
    ...(trace.traceparent ? { traceparent: trace.traceparent } : {}),
  });

  const events: OutgoingEvent[] = [
    event(topics.genaiRequest, requestedAt, {
      requestId,
      incidentId: incident.incidentId,
      // The model that was asked: on a fallback that is the model, not the rules that answered.
      modelId: result.fallback?.attemptedModelId ?? result.modelId,
      prompt: prompt.user,
      systemPrompt: prompt.system,
      parameters: {
        maxTokens: dependencies.explainer.parameters.maxTokens,
        temperature: dependencies.explainer.parameters.temperature,
        topP: dependencies.explainer.parameters.topP ?? null,
      },
      requestedAt: Date.parse(requestedAt),
    }),
    event(topics.genaiResponse, respondedAt, responseData(incident, requestId, result, respondedAt)),
  ];
  if (review) {
    events.push(
      event(topics.hitlRequested, respondedAt, {
        reviewId: review.reviewId,
        incidentId: incident.incidentId,
        reason: reasons.join(','),
        reasons,
        severity: incident.severity,
        explainer: result.explainer,
        confidence: result.explanation.confidence,
        summary: result.explanation.summary,
        requestedAt: Date.parse(respondedAt),
      }),
    );
  }
  return { incidentId: incident.incidentId, view, ...(review ? { review } : {}), events };
}

function responseData(
  incident: Incident,
  requestId: string,
  result: ExplainerResult,
  respondedAt: string,
): Record<string, unknown> {
  return {
    requestId,
    incidentId: incident.incidentId,
    modelId: result.modelId,
    explainer: result.explainer,
    output: result.output,
    summary: result.explanation.summary,
    likelyCauses: result.explanation.likelyCauses,
    recommendedAction: result.explanation.recommendedAction,
    confidence: result.explanation.confidence,
    latencyMs: result.latencyMs,
    inputTokens: result.usage.inputTokens,
    outputTokens: result.usage.outputTokens,
    totalTokens: result.usage.totalTokens,
    stopReason: result.stopReason ?? null,
    attemptedModelId: result.fallback?.attemptedModelId ?? null,
    fallbackReason: result.fallback?.reason ?? null,
    respondedAt: Date.parse(respondedAt),
  };
}
