import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import type { BasePersistenceLayer } from '@aws-lambda-powertools/idempotency/persistence';
import type { Context } from 'aws-lambda';
import { callIdempotent } from '../../shared/idempotency';
import { type BillingDependencies, type BillingResult, bill } from './bill';
import type { BillingCommand } from './billing-events';

export interface BillingProcessorOptions extends BillingDependencies {
  /** Its own persistence layer (BillingIdempotencyTable): never shared with another function. */
  persistenceStore: BasePersistenceLayer;
  idempotencyTtlSeconds?: number;
}

export interface BillingProcessor {
  process(command: BillingCommand): Promise<BillingResult>;
  registerLambdaContext(context: Context): void;
}

/** What the producer sent, of either kind (a field the kind lacks is null); the price is derived, not sent. */
const BILLING_PAYLOAD_FIELDS =
  '[kind, bookingId, customerId, vehicleType, zoneId, durationSeconds, distanceMeters, completedAt, outcome, paymentId, amountMinor, currency, at, failureCode]';

/** 100 days: longer than the retention of every billing topic (payment.* keep 90 days). */
export const DEFAULT_IDEMPOTENCY_TTL_SECONDS = 100 * 24 * 3600;

/**
 * Powertools idempotency per record, keyed by the CloudEvents id: a redelivered event that completed is
 * answered from its stored result without touching the billing table. A record that threw has its
 * idempotency record deleted, so the retry runs again; the billing steps are idempotent themselves (see
 * bill.ts), which is what makes that re-run and a payment applied from two paths safe.
 *
 * The same property covers a record left INPROGRESS by an invocation that was killed or timed out: Powertools
 * would refuse it until that invocation's deadline (up to the function timeout), the ESM's retries would run
 * out within a second and a valid invoice or payment would land in the on-failure destination. Billing it
 * directly instead is safe even if the other invocation is in fact still running: each step is a conditional
 * write keyed by the invoice or payment, so the two runs apply it once between them.
 *
 * The stored result answers only the same event: an id reused with other data (the event's fields, not the
 * price, which a tariff change may move) fails the record with IdempotencyPayloadMismatchError.
 */
export function createBillingProcessor(options: BillingProcessorOptions): BillingProcessor {
  const config = new IdempotencyConfig({
    eventKeyJmesPath: 'eventId',
    payloadValidationJmesPath: BILLING_PAYLOAD_FIELDS,
    expiresAfterSeconds: options.idempotencyTtlSeconds ?? DEFAULT_IDEMPOTENCY_TTL_SECONDS,
    throwOnNoIdempotencyKey: true,
  });
  const billOnce = makeIdempotent((command: BillingCommand) => bill(command, options), {
    persistenceStore: options.persistenceStore,
    config,
    keyPrefix: 'billing',
  });
  return {
    process: async (command) => {
      return callIdempotent(() => billOnce(command), {
        inProgress: () => bill(command, options),
        mismatch: () =>
          `billing event ${command.eventId} was already billed from other data than this record`,
      });
    },
    registerLambdaContext: (context) => config.registerLambdaContext(context),
  };
}
