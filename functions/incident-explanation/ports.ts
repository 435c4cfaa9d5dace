import type { OutgoingEvent } from '../../shared/kafka/event-message';
import type { ExplainerKind, Explanation } from './explanation';
import type { Incident } from './incident';

/** The incident read model: what operators see about one incident and its explanation. */
export interface IncidentView {
  incidentId: string;
  vehicleId: string;
  severity: Incident['severity'];
  anomalyType: string;
  location: Incident['location'];
  detectedAt: string;
  explanation: Explanation;
  explainer: ExplainerKind;
  modelId: string;
  /** Set when the model failed and the rules answered instead. */
  fallbackReason?: string;
  /** Review id when a human review was opened for this incident. */
  reviewId?: string;
  explainedAt: string;
}

export interface IncidentViewStore {
  save(view: IncidentView): Promise<void>;
  get(incidentId: string): Promise<IncidentView | undefined>;
}

export type ReviewReason = 'SEVERITY_HIGH' | 'SEVERITY_CRITICAL' | 'LOW_CONFIDENCE' | 'EXPLANATION_FAILED';
export type ReviewStatus = 'OPEN' | 'RESOLVED';

export interface ReviewTask {
  reviewId: string;
  incidentId: string;
  status: ReviewStatus;
  reasons: ReviewReason[];
  openedAt?: string;
  decision?: string;
  reviewer?: string;
  comment?: string;
  resolvedAt?: string;
}

export interface ReviewResolution {
  reviewId: string;
  incidentId: string;
  decision: string;
  reviewer: string;
  comment?: string;
  resolvedAt: string;
}

export type ResolveOutcome = 'RESOLVED' | 'ALREADY_RESOLVED';

/** Human-review tasks. Both operations are idempotent and commute (a resolution may arrive first). */
export interface ReviewTasks {
  /** Opens the task unless it exists already (opened by an earlier attempt, or resolved already). */
  open(task: ReviewTask): Promise<void>;
  /** Closes the task with the decision; the first resolution wins, a repeated one is ALREADY_RESOLVED. */
  resolve(resolution: ReviewResolution): Promise<ResolveOutcome>;
  get(incidentId: string): Promise<ReviewTask | undefined>;
}

/** What a reviewer works through (`review list`): the open tasks, oldest first, at most `limit`. */
export interface OpenReviews {
  listOpen(limit: number): Promise<ReviewTask[]>;
}

/** An event this function produces: the project's one outgoing-event shape (key = the incident id; ce_id
 * deterministic, so a re-produced event carries the id of the first production). */
export type { OutgoingEvent };

/** Produces genai.request, genai.response and genai.hitl.requested events (Kafka in AWS and locally). */
export interface GenAiEventPublisher {
  publish(events: OutgoingEvent[]): Promise<void>;
}
