import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { Context } from 'aws-lambda';
import {
  type ExplainIncidentDependencies,
  explainIncident,
  type IncidentOutcome,
  topics,
} from './explain-incident';
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
 * genai.hitl.resolved: closes the review task (a conditional update, idempotent by itself).
 */
export function createIncidentEventProcessor(options: IncidentEventProcessorOptions): IncidentEventProcessor {
  const idempotencyConfig = new IdempotencyConfig({
    eventKeyJmesPath: 'incidentId',
    expiresAfterSeconds: options.idempotencyTtlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    throwOnNoIdempotencyKey: true,
  });
  const explainOnce = makeIdempotent(
    (input: { incidentId: string; incident: Incident; correlationId?: string; traceparent?: string }) =>
      explainIncident(
        input.incident,
        {
          ...(input.correlationId ? { correlationId: input.correlationId } : {}),
          ...(input.traceparent ? { traceparent: input.traceparent } : {}),
        },
        options,
      ),
    {
      persistenceStore: options.persistenceStore,
      config: idempotencyConfig,
      keyPrefix: options.keyPrefix ?? 'incident-explanation',
    },
  );

  return {
    idempotencyConfig,
    registerLambdaContext: (context) => idempotencyConfig.registerLambdaContext(context),
    async process(event) {
      if (event.topic === topics.incidentDetected) {
        const incident = toIncident(event.data);
        const outcome: IncidentOutcome = await explainOnce({
          incidentId: incident.incidentId,
          incident,
          ...(event.correlationId ? { correlationId: event.correlationId } : {}),
          ...(event.traceparent ? { traceparent: event.traceparent } : {}),
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
