import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { Context } from 'aws-lambda';
import {
  type ExplainIncidentDependencies,
  explainIncident,
  type IncidentOutcome,
  topics,
} from './explain-incident';
import { callIdempotent } from './idempotent-call';
import { type Incident, toIncident } from './incident';
import type { GenAiEventPublisher, ResolveOutcome } from './ports';
import { toResolution } from './resolve-review';

/** A consumed event, decoded: what this function needs of a Kafka record and its CloudEvents headers. */
export interface ConsumedEvent {
  topic: string;
  id: string;
  time: string;
  correlationId?: string;
  traceparent?: string;
  data: unknown;
}

export interface IncidentEventProcessorOptions extends ExplainIncidentDependencies {
  publisher: GenAiEventPublisher;
  persistenceStore: BasePersistenceLayer;
  /** Prefix of the idempotency keys (`<keyPrefix>#<md5(incidentId)>`). */
  keyPrefix?: string;
  /** How long an incident's stored outcome answers redeliveries; covers the topic's retention by default. */
  idempotencyTtlSeconds?: number;
}

export type ProcessedEvent =
  | { kind: 'explained'; incidentId: string; events: number; reviewOpened: boolean }
  | { kind: 'review-resolved'; incidentId: string; outcome: ResolveOutcome }
  | { kind: 'ignored'; topic: string };

interface ExplainInput {
  incidentId: string;
  incident: Incident;
  correlationId?: string;
  traceparent?: string;
}

/** 31 days: incident.detected is kept for 30, so a replay from the earliest offset still finds the record. */
export const DEFAULT_IDEMPOTENCY_TTL_SECONDS = 31 * 24 * 3600;

export interface IncidentEventProcessor {
  process(event: ConsumedEvent): Promise<ProcessedEvent>;
  /** Call once per invocation so idempotency records expire with the invocation (in-progress timeout). */
  registerLambdaContext(context: Context): void;
  readonly idempotencyConfig: IdempotencyConfig;
}

/**
 * incident.detected: explain once per incident id (Powertools idempotency), then produce the outcome's
 * events. A redelivery gets the stored outcome and produces the same events again (same ids, same content),
 * which downstream consumers dedupe; the explainer is not asked again. Producing after the idempotent step
 * means a failed produce is retried with the stored outcome, not with a new model call.
 *
 * An incident whose idempotency record a killed or timed-out invocation left INPROGRESS is explained again
 * at once (not refused until the dead invocation's deadline, by when the ESM's retries would have sent it to the
 * failure destination) and its outcome is stored over the stale record, so later redeliveries replay it. The dead
 * invocation had produced nothing: events are produced only after the outcome is stored. The model is asked a
 * second time only for an incident whose first invocation died while explaining it.
 *
 * The stored outcome answers only the same detection (`payloadValidationJmesPath: 'incident'`): the same
 * incident id with other data (re-detected and escalated from HIGH to CRITICAL, say) fails as a record with an
 * IdempotencyPayloadMismatchError naming both severities, instead of replaying the old explanation and review.
 * (notifications consumes incident.detected on its own and pages for the CRITICAL event regardless.)
 *
 * genai.hitl.resolved: closes the review task (a conditional update, idempotent by itself).
 */
export function createIncidentEventProcessor(options: IncidentEventProcessorOptions): IncidentEventProcessor {
  const idempotencyConfig = new IdempotencyConfig({
    eventKeyJmesPath: 'incidentId',
    payloadValidationJmesPath: 'incident',
    expiresAfterSeconds: options.idempotencyTtlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    throwOnNoIdempotencyKey: true,
  });
  const explain = (input: ExplainInput) =>
    explainIncident(
      input.incident,
      {
        ...(input.correlationId ? { correlationId: input.correlationId } : {}),
        ...(input.traceparent ? { traceparent: input.traceparent } : {}),
      },
      options,
    );
  const explainOnce = makeIdempotent(explain, {
    persistenceStore: options.persistenceStore,
    config: idempotencyConfig,
    keyPrefix: options.keyPrefix ?? 'incident-explanation',
  });

  return {
    idempotencyConfig,
    registerLambdaContext: (context) => idempotencyConfig.registerLambdaContext(context),
    async process(event) {
      if (event.topic === topics.incidentDetected) {
        const incident = toIncident(event.data);
        const input: ExplainInput = {
          incidentId: incident.incidentId,
          incident,
          ...(event.correlationId ? { correlationId: event.correlationId } : {}),
          ...(event.traceparent ? { traceparent: event.traceparent } : {}),
        };
        const outcome: IncidentOutcome = await callIdempotent(() => explainOnce(input), {
          inProgress: async () => {
            const taken = await explain(input);
            // Overwrites the stale INPROGRESS record (an unconditional update), keyed and hashed like Powertools'.
            // (Typed as JSONValue, which an interface is not; both are plain JSON data.)
            await options.persistenceStore.saveSuccess(input as never, taken as never);
            return taken;
          },
          mismatch: (stored) =>
            `incident ${incident.incidentId} was already explained from other data` +
            (stored ? ` (severity ${stored.view.severity}, detected ${stored.view.detectedAt})` : '') +
            ` than this record (severity ${incident.severity}, detected ${incident.detectedAt}); its stored outcome is not replayed for it`,
        });
        await options.publisher.publish(outcome.events);
        return {
          kind: 'explained',
          incidentId: incident.incidentId,
          events: outcome.events.length,
          reviewOpened: outcome.review !== undefined,
        };
      }
      if (event.topic === topics.hitlResolved) {
        const resolution = toResolution(event.data, event.time);
        const outcome = await options.reviews.resolve(resolution);
        return { kind: 'review-resolved', incidentId: resolution.incidentId, outcome };
      }
      return { kind: 'ignored', topic: event.topic };
    },
  };
}
