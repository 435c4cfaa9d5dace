import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { Context } from 'aws-lambda';
import { callIdempotent } from '../../shared/idempotency';
import type { ConsumedEvent } from './rules';
import {
  type EventNotificationResult,
  type SendNotificationsDependencies,
  sendNotifications,
} from './send-notifications';

export interface NotificationEventProcessorOptions extends SendNotificationsDependencies {
  persistenceStore: BasePersistenceLayer;
  keyPrefix?: string;
  idempotencyTtlSeconds?: number;
  /** Time kept back from the invocation's remaining time when waiting for a lapsing claim. */
  claimWaitMarginMs?: number;
}

export interface NotificationEventProcessor {
  process(event: ConsumedEvent): Promise<EventNotificationResult>;
  registerLambdaContext(context: Context): void;
}

/** 31 days: covers the retention of every consumed topic except payment.failed (90 days; the log covers it). */
export const DEFAULT_IDEMPOTENCY_TTL_SECONDS = 31 * 24 * 3600;
/** Leaves room for the send itself (3 attempts with backoff) and the records after it in the batch. */
export const DEFAULT_CLAIM_WAIT_MARGIN_MS = 10_000;

/**
 * Two layers: Powertools idempotency per event (topic + ce_id) answers a redelivered, fully handled event
 * from its stored result without touching the log; the notification log guards each (event id, recipient)
 * send, so an event that failed halfway re-sends only what was not sent.
 *
 * An event whose idempotency record a killed or timed-out invocation left INPROGRESS is sent directly rather
 * than failed (Powertools would refuse it until that invocation's deadline, and the ESM's retries would run
 * out first): the log's claim per (event id, recipient) still guards each send, and a claim the dead
 * invocation still holds is waited for within this invocation's remaining time (see sendNotifications).
 *
 * The stored result answers only the same event: a (topic, id) reused with other data fails the record with
 * IdempotencyPayloadMismatchError instead of being reported as already notified.
 */
export function createNotificationEventProcessor(
  options: NotificationEventProcessorOptions,
): NotificationEventProcessor {
  const config = new IdempotencyConfig({
    eventKeyJmesPath: '[topic, id]',
    payloadValidationJmesPath: 'data',
    expiresAfterSeconds: options.idempotencyTtlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    throwOnNoIdempotencyKey: true,
  });
  let context: Context | undefined;
  const margin = options.claimWaitMarginMs ?? DEFAULT_CLAIM_WAIT_MARGIN_MS;
  const dependencies: SendNotificationsDependencies = {
    ...options,
    claimWaitBudgetMs:
      options.claimWaitBudgetMs ?? (() => (context ? context.getRemainingTimeInMillis() - margin : 0)),
  };
  const processOnce = makeIdempotent((event: ConsumedEvent) => sendNotifications(event, dependencies), {
    persistenceStore: options.persistenceStore,
    config,
    keyPrefix: options.keyPrefix ?? 'notifications',
  });
  return {
    process: async (event) => {
      const consumed = { topic: event.topic, id: event.id, time: event.time, data: event.data };
      return callIdempotent(() => processOnce(consumed), {
        inProgress: () => sendNotifications(consumed, dependencies),
        mismatch: () =>
          `${event.topic} event ${event.id} was already notified for other data than this record`,
      });
    },
    registerLambdaContext: (registered) => {
      context = registered;
      config.registerLambdaContext(registered);
    },
  };
}
