import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoDbBillingLedger,
  DynamoDbCustomerStatements,
  DynamoDbInvoiceStore,
} from '../../../functions/billing/dynamodb-billing-store';
import type { BillingLedger } from '../../../functions/billing/ports';
import { billingReadModelRebuilder } from '../../../functions/billing/rebuild';
import type { KafkaEventRecord } from '../../../shared/msk';
import { createTable, documentClient, snapshot } from '../../support/dynamodb';
import { deliverBatch } from './deliver';
import { billingRecord, point, T0 } from './records';

function completed(
  partition: number,
  offset: number,
  bookingId: string,
  extra: Record<string, unknown> = {},
) {
  return billingRecord('booking.completed', partition, offset, `evt-completed-${bookingId}`, {
    bookingId,
    customerId: 'cust-1',
    vehicleId: 'veh-1',
    vehicleType: 'SCOOTER',
    zoneId: 'zone-berlin-mitte',
    pickup: point,
    dropoff: point,
    distanceMeters: 2_400,
    durationSeconds: 750, // 13 started minutes: 100 + 325 = 425 cents
    currency: 'EUR',
    startedAt: T0 - 750_000,
    completedAt: T0,
    ...extra,
  });
}
function payment(
  outcome: 'succeeded' | 'failed',
  partition: number,
  offset: number,
  bookingId: string,
  paymentId: string,
  currency = 'EUR',
  amountMinor = 425,
) {
  const common = {
    paymentId,
    bookingId,
    customerId: 'cust-1',
    invoiceId: null,
    amount: { amountMinor, currency },
    method: 'CARD',
  };
  return outcome === 'succeeded'
    ? billingRecord('payment.succeeded', partition, offset, `evt-${paymentId}-ok`, {
        ...common,
        pspReference: `psp-${paymentId}`,
        succeededAt: T0 + 60_000,
      })
    : billingRecord('payment.failed', partition, offset, `evt-${paymentId}-failed`, {
        ...common,
        failureCode: 'insufficient_funds',
        failureMessage: 'Insufficient funds',
        retryable: true,
        attempt: 1,
        failedAt: T0 + 30_000,
      });
}

describe('billing on the DynamoDB stand-in', () => {
  let client: DynamoDBDocumentClient;
  let billingTable: string;

  beforeAll(async () => {
    client = await documentClient();
  });
  beforeEach(async () => {
    billingTable = await createTable(client, 'BillingTable');
  });

  /** The real ledger, with some of its methods replaced (to fail or hang a step). */
  function ledgerWith(overrides: Partial<BillingLedger> = {}): BillingLedger {
    const real = new DynamoDbBillingLedger(client, billingTable);
    return {
      find: overrides.find ?? ((lookup) => real.find(lookup)),
      paymentsOf: overrides.paymentsOf ?? ((bookingId) => real.paymentsOf(bookingId)),
      record: overrides.record ?? ((facts) => real.record(facts)),
      unpark: overrides.unpark ?? ((bookingIds) => real.unpark(bookingIds)),
    };
  }

  function billing(ledger: BillingLedger = ledgerWith()) {
    return {
      invoices: new DynamoDbInvoiceStore(client, billingTable),
      statements: new DynamoDbCustomerStatements(client, billingTable),
      deliver: async (records: KafkaEventRecord[]) => {
        return deliverBatch(records, ledger);
      },
    };
  }

  it('invoices a completed ride once and adds it to the monthly statement', async () => {
    const { deliver, invoices, statements } = billing();
    const outcome = await deliver([completed(0, 1, 'b-1')]);
    expect(outcome.response.batchItemFailures).toEqual([]);
    expect(await invoices.get('b-1')).toMatchObject({
      invoiceId: 'INV-b-1',
      customerId: 'cust-1',
      month: '2026-11',
      totalMinor: 425,
      currency: 'EUR',
      status: 'OPEN',
      lines: [
        { code: 'UNLOCK', quantity: 1, amountMinor: 100 },
        { code: 'TIME', quantity: 13, amountMinor: 325 },
      ],
    });
    expect(await statements.get('cust-1', '2026-11')).toMatchObject({
      invoiceCount: 1,
      invoicedMinor: 425,
      paidMinor: 0,
    });
  });

  it('ends with the same read model when the same batch is delivered twice', async () => {
    const { deliver, statements } = billing();
    const batch = [
      completed(0, 1, 'b-1'),
      completed(0, 2, 'b-2'),
      payment('succeeded', 3, 7, 'b-1', 'pay-1'),
    ];
    await deliver(batch);
    const once = await snapshot(client, billingTable);
    const again = await deliver(batch);
    expect(again.response.batchItemFailures).toEqual([]);
    expect(await snapshot(client, billingTable)).toBe(once);
    expect(await statements.get('cust-1', '2026-11')).toMatchObject({
      invoiceCount: 2,
      invoicedMinor: 850,
      paidMinor: 425,
    });
  });

  it('never double-charges: a second booking.completed for the booking under a new event id keeps the first invoice', async () => {
    const { deliver, invoices, statements } = billing();
    await deliver([completed(0, 1, 'b-1')]);
    // Re-produced by the booking service with a new ce_id and a different duration: the same booking, so the
    // same invoice key, and the stored invoice is kept.
    const again = billingRecord('booking.completed', 0, 2, 'evt-completed-b-1-resent', {
      bookingId: 'b-1',
      customerId: 'cust-1',
      vehicleId: 'veh-1',
      vehicleType: 'SCOOTER',
      zoneId: 'zone-berlin-mitte',
      pickup: point,
      dropoff: point,
      distanceMeters: 2_400,
      durationSeconds: 7_500,
      currency: 'EUR',
      startedAt: T0 - 7_500_000,
      completedAt: T0,
    });
    expect((await deliver([again])).response.batchItemFailures).toEqual([]);
    expect(await invoices.get('b-1')).toMatchObject({ totalMinor: 425, durationSeconds: 750 });
    expect(await statements.get('cust-1', '2026-11')).toMatchObject({ invoiceCount: 1, invoicedMinor: 425 });
  });

  it('parks a payment that arrives before its invoice and applies it when the invoice arrives', async () => {
    const { deliver, invoices, statements } = billing();
    await deliver([payment('succeeded', 1, 3, 'b-9', 'pay-9')]);
    expect(await invoices.get('b-9')).toBeUndefined();
    expect(await invoices.payments('b-9')).toMatchObject([
      { paymentId: 'pay-9', outcome: 'SUCCEEDED', amountMinor: 425 },
    ]);

    await deliver([completed(4, 12, 'b-9')]);
    expect(await invoices.get('b-9')).toMatchObject({ status: 'PAID', paidMinor: 425, totalMinor: 425 });
    expect(await statements.get('cust-1', '2026-11')).toMatchObject({
      invoiceCount: 1,
      invoicedMinor: 425,
      paidMinor: 425,
      paymentIds: ['pay-9:SUCCEEDED'],
    });
  });

  it('reaches the same state whatever order invoice, failed and succeeded payments arrive in', async () => {
    const events = [
      completed(0, 1, 'b-5'),
      payment('failed', 0, 1, 'b-5', 'pay-a'),
      payment('succeeded', 0, 1, 'b-5', 'pay-b'),
    ];
    const orders = [
      [0, 1, 2],
      [2, 1, 0],
      [1, 0, 2],
      [1, 2, 0],
    ];
    const snapshots: string[] = [];
    for (const order of orders) {
      billingTable = await createTable(client, 'BillingTable');
      const { deliver, invoices } = billing();
      for (const index of order) await deliver([events[index] as KafkaEventRecord]);
      expect(await invoices.get('b-5')).toMatchObject({ status: 'PAID', paidMinor: 425 });
      snapshots.push(await snapshot(client, billingTable));
    }
    expect(new Set(snapshots).size).toBe(1);
    // A failure alone leaves the invoice PAYMENT_FAILED.
    const { deliver, invoices } = billing();
    await deliver([completed(0, 1, 'b-6'), payment('failed', 1, 2, 'b-6', 'pay-c')]);
    expect(await invoices.get('b-6')).toMatchObject({ status: 'PAYMENT_FAILED', paidMinor: 0 });
  });

  it('a payment of another amount than the invoice leaves it PAYMENT_MISMATCH, in either order; making up the difference settles it', async () => {
    const { deliver, invoices, statements } = billing();
    // Underpaid: 4.00 of 4.25, invoice first.
    await deliver([completed(0, 1, 'b-under'), payment('succeeded', 1, 1, 'b-under', 'pay-u1', 'EUR', 400)]);
    expect(await invoices.get('b-under')).toMatchObject({ status: 'PAYMENT_MISMATCH', paidMinor: 400 });
    // A later failed attempt does not hide that money came in.
    await deliver([payment('failed', 2, 1, 'b-under', 'pay-u2', 'EUR', 25)]);
    expect(await invoices.get('b-under')).toMatchObject({ status: 'PAYMENT_MISMATCH', paidMinor: 400 });
    // The missing 0.25 arrives: paid in full.
    await deliver([payment('succeeded', 1, 2, 'b-under', 'pay-u3', 'EUR', 25)]);
    expect(await invoices.get('b-under')).toMatchObject({ status: 'PAID', paidMinor: 425 });

    // Overpaid, the payment before its invoice: parked, then applied and settled when the invoice comes.
    await deliver([payment('succeeded', 1, 3, 'b-over', 'pay-o1', 'EUR', 500)]);
    await deliver([completed(0, 2, 'b-over')]);
    expect(await invoices.get('b-over')).toMatchObject({ status: 'PAYMENT_MISMATCH', paidMinor: 500 });
    // A redelivery changes nothing.
    const before = await snapshot(client, billingTable);
    await deliver([payment('succeeded', 1, 3, 'b-over', 'pay-o1', 'EUR', 500)]);
    expect(await snapshot(client, billingTable)).toBe(before);

    expect(await statements.get('cust-1', '2026-11')).toMatchObject({
      invoiceCount: 2,
      invoicedMinor: 850,
      paidMinor: 925,
    });
  });

  it('fails a payment in another currency by field and record, applies the rest, and a retry ends correct', async () => {
    const { deliver, invoices, statements } = billing();
    const batch = [
      completed(0, 10, 'b-1'),
      completed(0, 11, 'b-2', { durationSeconds: -60 }),
      completed(0, 12, 'b-3'),
      payment('succeeded', 1, 20, 'b-1', 'pay-1', 'USD'),
      payment('succeeded', 1, 21, 'b-3', 'pay-3'),
    ];
    const first = await deliver(batch);
    expect(first.response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'booking.completed-0', offset: 11 } },
      { itemIdentifier: { partition: 'booking.completed-0', offset: 12 } },
      { itemIdentifier: { partition: 'payment.succeeded-1', offset: 20 } },
      { itemIdentifier: { partition: 'payment.succeeded-1', offset: 21 } },
    ]);
    // The rest of the batch is applied already: b-1 and b-3 invoiced, b-3 paid.
    expect(await invoices.get('b-3')).toMatchObject({ status: 'PAID' });
    expect(await invoices.get('b-2')).toBeUndefined();

    // The ESM redelivers from the failed offsets: the bad records fail again, nothing is applied twice.
    const retry = await deliver(batch.filter((_, i) => i === 1 || i === 2 || i === 3 || i === 4));
    expect(retry.failed).toBe(2);
    expect(await statements.get('cust-1', '2026-11')).toMatchObject({
      invoiceCount: 2,
      invoicedMinor: 850,
      paidMinor: 425,
      invoiceIds: ['INV-b-1', 'INV-b-3'],
    });
    expect(await invoices.get('b-1')).toMatchObject({ status: 'OPEN', paidMinor: 0 });
  });

  it('repairs a record that failed halfway (statement write failed) on the retry, counting once', async () => {
    const real = new DynamoDbCustomerStatements(client, billingTable);
    const store = new DynamoDbBillingLedger(client, billingTable);
    let failNext = true;
    const flaky = ledgerWith({
      // The first write stores everything but the statement lines, which fail.
      record: async (facts) => {
        if (!failNext) return store.record(facts);
        failNext = false;
        const failed = await store.record(facts.filter((fact) => fact.kind !== 'LINE'));
        const lines = facts.filter((fact) => fact.kind === 'LINE');
        return [...failed, ...lines.map((fact) => ({ fact, error: new Error('throttled') }))];
      },
    });
    const { deliver, invoices } = billing(flaky);
    const batch = [completed(2, 5, 'b-7')];
    const first = await deliver(batch);
    expect(first.response.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'booking.completed-2', offset: 5 } },
    ]);
    expect(await invoices.get('b-7')).toBeDefined(); // the invoice got written before the failure
    expect(await real.get('cust-1', '2026-11')).toBeUndefined();

    const retry = await deliver(batch); // finds the invoice stored, its statement line missing: writes it
    expect(retry.response.batchItemFailures).toEqual([]);
    await deliver(batch); // and a third delivery finds everything stored
    expect(await real.get('cust-1', '2026-11')).toMatchObject({ invoiceCount: 1, invoicedMinor: 425 });
  });

  it('bills a redelivery while a stuck invocation of the same batch still holds its stale plan, applying each effect once', async () => {
    const real = new DynamoDbCustomerStatements(client, billingTable);
    // The first invocation reads (nothing stored yet) and then hangs before its first write, like one that
    // was left behind by a timeout: whatever it writes later was planned from what it read then.
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let reachedWrite: () => void = () => {};
    const stuckAtWrite = new Promise<void>((resolve) => {
      reachedWrite = resolve;
    });
    const store = new DynamoDbBillingLedger(client, billingTable);
    let hang = true;
    const hanging = ledgerWith({
      record: async (facts) => {
        if (hang) {
          hang = false;
          reachedWrite();
          await released;
        }
        return store.record(facts);
      },
    });
    const stuck = billing(hanging);
    const batch = [completed(2, 5, 'b-8'), payment('succeeded', 2, 6, 'b-8', 'pay-8')];
    const first = stuck.deliver(batch);
    await stuckAtWrite;

    // The redelivery (a fresh instance, as after a crash) bills the batch in full meanwhile.
    const { deliver, invoices } = billing();
    const redelivered = await deliver(batch);
    expect(redelivered.response.batchItemFailures).toEqual([]);
    expect(await invoices.get('b-8')).toMatchObject({ status: 'PAID', paidMinor: 425, totalMinor: 425 });
    const expected = { invoiceCount: 1, invoicedMinor: 425, paidMinor: 425, paymentIds: ['pay-8:SUCCEEDED'] };
    expect(await real.get('cust-1', '2026-11')).toMatchObject(expected);

    // Even if the first invocation was not dead after all and finishes now, nothing counts twice.
    const once = await snapshot(client, billingTable);
    release();
    expect((await first).response.batchItemFailures).toEqual([]);
    expect(await snapshot(client, billingTable)).toBe(once);
    expect(await real.get('cust-1', '2026-11')).toMatchObject(expected);
  });

  it('rebuilds byte for byte: clear the table and replay in another order', async () => {
    const history: KafkaEventRecord[] = [];
    for (let i = 0; i < 30; i++) {
      const bookingId = `b-${i}`;
      history.push(
        completed(i % 3, i, bookingId, {
          customerId: `cust-${i % 4}`,
          durationSeconds: 60 * (i + 1),
          vehicleType: i % 2 ? 'CAR' : 'EBIKE',
          distanceMeters: 700 * i,
        }),
      );
      if (i % 3 === 0) history.push(payment('failed', i % 2, i, bookingId, `pay-${i}-1`));
      if (i % 2 === 0) history.push(payment('succeeded', i % 2, i, bookingId, `pay-${i}-2`));
    }
    const first = billing();
    for (let i = 0; i < history.length; i += 10) {
      expect((await first.deliver(history.slice(i, i + 10))).response.batchItemFailures).toEqual([]);
    }
    const original = await snapshot(client, billingTable);
    // Every ride invoiced: an empty or partial table must not make the comparison below trivial.
    expect(original.match(/"sk": "INVOICE"/g) ?? []).toHaveLength(30);

    await billingReadModelRebuilder(client, billingTable).clear();
    expect(await snapshot(client, billingTable)).toBe('[]');
    const replay = billing();
    const reversed = [...history].reverse();
    for (let i = 0; i < reversed.length; i += 7) {
      expect((await replay.deliver(reversed.slice(i, i + 7))).response.batchItemFailures).toEqual([]);
    }
    expect(await snapshot(client, billingTable)).toBe(original);
  }, 60_000);
});
