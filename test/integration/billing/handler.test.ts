import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { Context } from 'aws-lambda';
import { beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbInvoiceStore } from '../../../functions/billing/dynamodb-billing-store';
import { type KafkaEvent, kafkaEvent } from '../../../shared/msk';
import { createTable, documentClient, snapshot } from '../../support/dynamodb';
import { lambdaContext } from '../../support/lambda-context';
import { loadEvent } from '../../support/load-event';
import { billingRecord, T0 } from './records';

describe('billing handler (real MSK event, Avro values, the billing table on dynalite)', () => {
  let client: DynamoDBDocumentClient;
  let handler: (event: KafkaEvent, context: Context) => Promise<{ batchItemFailures: unknown[] }>;

  beforeAll(async () => {
    client = await documentClient();
    process.env.BILLING_TABLE = await createTable(client, 'BillingTable');
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    process.env.POWERTOOLS_LOG_LEVEL = 'SILENT';
    ({ handler } = await import('../../../functions/billing/handler'));
  });

  it('invoices, pays, reports a foreign-currency payment, and ignores a redelivery', async () => {
    const money = (currency: string) => ({ amountMinor: 2_251, currency });
    const event = kafkaEvent([
      billingRecord('payment.succeeded', 0, 5, 'evt-payment.succeeded-0-5', {
        paymentId: 'pay-1',
        bookingId: 'b-1',
        customerId: 'c-1',
        invoiceId: null,
        amount: money('EUR'),
        method: 'CARD',
        pspReference: 'psp-1',
        succeededAt: T0 + 1_000,
      }),
      billingRecord('payment.succeeded', 1, 9, 'evt-payment.succeeded-1-9', {
        paymentId: 'pay-2',
        bookingId: 'b-2',
        customerId: 'c-1',
        invoiceId: null,
        amount: money('CHF'),
        method: 'CARD',
        pspReference: 'psp-2',
        succeededAt: T0 + 1_000,
      }),
    ]);
    const response = await handler(event, lambdaContext('billing'));
    expect(response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'payment.succeeded-1', offset: 9 } },
    ]);

    const ride = kafkaEvent([
      billingRecord('booking.completed', 3, 2, 'evt-booking.completed-3-2', {
        bookingId: 'b-1',
        customerId: 'c-1',
        vehicleId: 'v-1',
        vehicleType: 'MOPED',
        zoneId: 'zone-berlin-mitte',
        pickup: { lat: 52.5, lon: 13.4 },
        dropoff: { lat: 52.5, lon: 13.4 },
        distanceMeters: 50,
        durationSeconds: 3_600,
        currency: 'EUR',
        startedAt: T0 - 3_600_000,
        completedAt: T0,
      }),
    ]);
    expect((await handler(ride, lambdaContext('billing'))).batchItemFailures).toEqual([]);
    const table = process.env.BILLING_TABLE as string;
    const state = await snapshot(client, table);
    expect(await new DynamoDbInvoiceStore(client, table).get('b-1')).toMatchObject({
      status: 'PAID',
      totalMinor: 2_251,
      paidMinor: 2_251,
    });
    expect(state).toContain('"totalMinor": 2251');

    await handler(ride, lambdaContext('billing'));
    await handler(event, lambdaContext('billing'));
    expect(await snapshot(client, table)).toBe(state);
  });

  it('handles the generated sample events: rides, payments of both outcomes, a tombstone and a poison record', async () => {
    for (const name of [
      'booking-completed',
      'multi-partition',
      'payment-succeeded',
      'payment-failed',
      'tombstone',
    ]) {
      expect(
        (await handler(loadEvent(`billing/${name}.json`), lambdaContext('billing'))).batchItemFailures,
      ).toEqual([]);
    }
    const poison = await handler(loadEvent('billing/poison.json'), lambdaContext('billing'));
    // The undecodable record (offset 901) and its successor; the other partition is billed.
    expect(poison.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'booking.completed-2', offset: 901 } },
      { itemIdentifier: { partition: 'booking.completed-2', offset: 902 } },
    ]);
    const items = await snapshot(client, process.env.BILLING_TABLE as string);
    expect(items).toContain('"sk": "STATEMENT#');
  });
});
