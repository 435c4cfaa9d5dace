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

/**
 * Human-review tasks. A batch opens reviews from a fresh `findAll` (review-policy.ts, reviewToOpen) and resolves
 * them from one too (resolve-review.ts, resolveAll). The decision kept apart is the first one and wins over what
 * the task item says: a resolution landing between a batch's findAll and its saveAll may leave the task written
 * OPEN again (README, "Reviews").
 */
export interface ReviewTasks {
  /** The stored review tasks of these incidents (a consistent read), by incident id; absent: none stored. */
  findAll(incidentIds: readonly string[]): Promise<Map<string, ReviewTask>>;
  /** The decisions kept for these incidents (a consistent read), by incident id; absent: none kept. */
  findKept(incidentIds: readonly string[]): Promise<Map<string, ReviewResolution>>;
  /** Writes these tasks as they are, one per incident (an OPEN one joins the open reviews); unconditional. */
  saveAll(tasks: readonly ReviewTask[]): Promise<void>;
  /**
   * Keeps each decision unless one is kept already for its incident (conditional, one incident's decision once):
   * per decision, true if this one was kept, false if another was, or why its write failed.
   */
  keepDecisions(decisions: readonly ReviewResolution[]): Promise<PromiseSettledResult<boolean>[]>;
  /** Writes each task unless one is stored for its incident (conditional): per task, true if written, as above. */
  saveAllIfAbsent(tasks: readonly ReviewTask[]): Promise<PromiseSettledResult<boolean>[]>;
  /** The task with its decision (the kept one wins over what the task item says). */
  get(incidentId: string): Promise<ReviewTask | undefined>;
}

/** What a reviewer works through (`review list`): the open tasks, oldest first, at most `limit`. */
export interface OpenReviews {
  listOpen(limit: number): Promise<ReviewTask[]>;
}

/**
 * Event data follows schemas/genai.*.v1.avsc: timestamps as epoch milliseconds (timestamp-millis), absent
 * optional values as null.
 *
 * What one incident produced. It is JSON (stored with the view, packed), and it holds the events in full,
 * so a redelivered incident re-produces exactly the same events without asking the explainer again.
 */
export interface IncidentOutcome {
  incidentId: string;
  view: IncidentView;
  review?: ReviewTask;
  events: OutgoingEvent[];
}

/**
 * What is stored for an incident. INPROGRESS only comes from the Powertools design's table (this one writes no
 * claim, see README): a record a dead invocation left, explained again at once.
 */
export type StoredExplanation =
  | { status: 'COMPLETED'; payloadHash?: string; outcome: IncidentOutcome }
  | { status: 'INPROGRESS'; payloadHash?: string }
  | { status: 'UNREADABLE'; error: Error };

/** An outcome to store, with the hash of the detection it was computed from. */
export interface CompletedExplanation {
  outcome: IncidentOutcome;
  payloadHash: string;
}

/**
 * What was explained already, per incident id: each outcome stored with its incident's view (one item), read for
 * a whole batch before anything is explained, written for a whole batch in the round that opens its reviews.
 */
export interface ExplanationRecords {
  /** The stored records of these incidents; an incident never explained (or expired) is absent. */
  find(incidentIds: readonly string[]): Promise<Map<string, StoredExplanation>>;
  /** Stores completed outcomes with their views (one per incident), replacing what was stored. */
  complete(explanations: readonly CompletedExplanation[]): Promise<void>;
}

/** An event this function produces: the project's one outgoing-event shape (key = the incident id; ce_id
 * deterministic, so a re-produced event carries the id of the first production). */
export type { OutgoingEvent };

/** Produces genai.request, genai.response and genai.hitl.requested events (Kafka in AWS and locally). */
export interface GenAiEventPublisher {
  /**
   * All events of a batch in one produce request (per broker); rejects if any is not acknowledged. They are
   * encoded at once and sent once `after` resolves; never if it rejects (the returned promise then rejects with its
   * reason) or if encoding fails (it rejects with that error).
   */
  publish(events: OutgoingEvent[], after?: Promise<unknown>): Promise<void>;
}
