import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { Context } from 'aws-lambda';
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
}

export interface NotificationEventProcessor {
  process(event: ConsumedEvent): Promise<EventNotificationResult>;
  registerLambdaContext(context: Context): void;
}

/** 31 days: covers the retention of every consumed topic except payment.failed (90 days; the log covers it). */
export const DEFAULT_IDEMPOTENCY_TTL_SECONDS = 31 * 24 * 3600;

/**
 * Two layers: Powertools idempotency per event (topic + ce_id) answers a redelivered, fully handled event
 * from its stored result without touching the log; the notification log guards each (event id, recipient)
 * send, so an event that failed halfway re-sends only what was not sent.
 */
export function createNotificationEventProcessor(
  options: NotificationEventProcessorOptions,
): NotificationEventProcessor {
  const config = new IdempotencyConfig({
    eventKeyJmesPath: '[topic, id]',
    expiresAfterSeconds: options.idempotencyTtlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    throwOnNoIdempotencyKey: true,
  });
  const processOnce = makeIdempotent((event: ConsumedEvent) => sendNotifications(event, options), {
    persistenceStore: options.persistenceStore,
    config,
    keyPrefix: options.keyPrefix ?? 'notifications',
  });
  return {
    process: (event) => processOnce({ topic: event.topic, id: event.id, time: event.time, data: event.data }),
    registerLambdaContext: (context) => config.registerLambdaContext(context),
  };
}
