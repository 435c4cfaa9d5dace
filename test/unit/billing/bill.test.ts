import { describe, expect, it } from 'vitest';
import { type BillingInput, billBatch } from '../../../functions/billing/bill';
import { toBillingCommand } from '../../../functions/billing/billing-events';
import { invoiceView, settledStatus, statementOf } from '../../../functions/billing/payment-status';
import type { PaymentRecord } from '../../../functions/billing/ports';
import type { TariffTable } from '../../../functions/billing/pricing';
import tariffsFile from '../../../functions/billing/tariffs.json';
import { MemoryLedger } from './memory-ledger';

const tariffs = tariffsFile as TariffTable;
const T0 = Date.parse('2026-11-23T10:00:00Z');

function ride(
  offset: number,
  bookingId: string,
  id = `evt-ride-${bookingId}`,
  durationSeconds = 750,
): BillingInput {
  const record = { topic: 'booking.completed', partition: 0, offset };
  const data = {
    bookingId,
    customerId: 'c-1',
    zoneId: 'z-1',
    vehicleType: 'SCOOTER',
    durationSeconds,
    distanceMeters: 1_000,
    currency: 'EUR',
    completedAt: T0,
  };
  return {
    record,
    command: toBillingCommand(
      { ...record, eventSource: 'urn:booking', eventId: id, eventType: 'booking.completed', data },
      tariffs,
    ),
  };
}

function pay(
  offset: number,
  bookingId: string,
  paymentId: string,
  amountMinor = 425,
  id = `evt-${paymentId}`,
) {
  const record = { topic: 'payment.succeeded', partition: 0, offset };
  const data = {
    paymentId,
    bookingId,
    customerId: 'c-1',
    amount: { amountMinor, currency: 'EUR' },
    succeededAt: T0 + 60_000,
  };
  return {
    record,
    command: toBillingCommand(
      { ...record, eventSource: 'urn:payments', eventId: id, eventType: 'payment.succeeded', data },
      tariffs,
    ),
  };
}

const payment = (outcome: 'SUCCEEDED' | 'FAILED', amountMinor: number, paymentId = 'p'): PaymentRecord => ({
  paymentId,
  bookingId: 'b',
  customerId: 'c',
  outcome,
  amountMinor,
  currency: 'EUR',
  at: '2026-11-23T10:00:00.000Z',
});

describe('payment status rules', () => {
  it('derives the status from the set of payments, in any order', () => {
    expect(settledStatus(425, [])).toBe('OPEN');
    expect(settledStatus(425, [payment('FAILED', 425)])).toBe('PAYMENT_FAILED');
    expect(settledStatus(425, [payment('FAILED', 425), payment('SUCCEEDED', 425, 'q')])).toBe('PAID');
    expect(settledStatus(425, [payment('SUCCEEDED', 425, 'q'), payment('FAILED', 425)])).toBe('PAID');
    expect(settledStatus(425, [payment('SUCCEEDED', 400)])).toBe('PAYMENT_MISMATCH');
    expect(settledStatus(425, [payment('SUCCEEDED', 400), payment('SUCCEEDED', 25, 'q')])).toBe('PAID');
    expect(settledStatus(425, [payment('SUCCEEDED', 500)])).toBe('PAYMENT_MISMATCH');
  });

  it('counts a payment once per key in the invoice view', () => {
    const invoice = { totalMinor: 425 } as Parameters<typeof invoiceView>[0];
    expect(invoiceView(invoice, [payment('SUCCEEDED', 425), payment('SUCCEEDED', 425)])).toMatchObject({
      status: 'PAID',
      paidMinor: 425,
    });
  });

  it('sums statement lines; no lines, no statement', () => {
    expect(statementOf('c', '2026-11', [])).toBeUndefined();
  });
});

describe('billBatch', () => {
  it('bills duplicate events in a batch once (same source and id), and a re-produced ride keeps the first invoice', async () => {
    const ledger = new MemoryLedger();
    const result = await billBatch(
      [
        ride(1, 'b-1'),
        ride(2, 'b-1'),
        ride(3, 'b-1', 'evt-resent', 7_500),
        pay(4, 'b-1', 'p-1'),
        pay(5, 'b-1', 'p-1'),
      ],
      ledger,
    );
    expect(result).toMatchObject({ failures: [], duplicateEvents: 2, applied: 5 });
    expect(ledger.invoices.get('b-1')).toMatchObject({ durationSeconds: 750, totalMinor: 425 });
    expect([...ledger.lines.keys()].sort()).toEqual([
      'c-1|2026-11|INVOICE#INV-b-1',
      'c-1|2026-11|PAYMENT#p-1:SUCCEEDED',
    ]);
  });

  it('the same id from another source is another event', async () => {
    const ledger = new MemoryLedger();
    const other = ride(2, 'b-2', 'evt-ride-b-1');
    other.command.eventSource = 'urn:elsewhere';
    expect(await billBatch([ride(1, 'b-1'), other], ledger)).toMatchObject({
      duplicateEvents: 0,
      applied: 2,
    });
    expect(ledger.invoices.size).toBe(2);
  });

  it('parks a payment before its invoice and settles it when the invoice comes, leaving no mark', async () => {
    const ledger = new MemoryLedger();
    await billBatch([pay(1, 'b-9', 'p-9')], ledger);
    expect(ledger.parked.has('b-9')).toBe(true);
    expect(ledger.lines.size).toBe(0);
    await billBatch([ride(1, 'b-9')], ledger);
    expect(ledger.parked.size).toBe(0);
    expect([...ledger.lines.keys()].sort()).toEqual([
      'c-1|2026-11|INVOICE#INV-b-9',
      'c-1|2026-11|PAYMENT#p-9:SUCCEEDED',
    ]);
  });

  it('waits for 3 round trips on new rides, 2 on payments of stored invoices and 2 on a redelivery', async () => {
    const bookings = Array.from({ length: 50 }, (_, i) => `b-${i}`);
    const rides = bookings.map((id, i) => ride(i, id));
    const payments = bookings.map((id, i) => pay(i, id, `p-${i}`));
    const ledger = new MemoryLedger();
    const sequential = async (inputs: BillingInput[]) => {
      ledger.sequential = 0;
      expect((await billBatch(inputs, ledger)).failures).toEqual([]);
      return ledger.sequential;
    };
    // Rides: R1, W1, then R3 (the marks of payments that came first; it must follow W1). Payments: R1, then
    // W1 with R2 at once (nothing R2 reads decides what W1 writes on a first delivery).
    expect(await sequential(rides)).toBe(3);
    expect(await sequential(payments)).toBe(2);
    expect(await sequential([...rides, ...payments])).toBe(2);
    expect(ledger.lines.size).toBe(100);
  });

  it('fails only the records whose facts could not be stored', async () => {
    const ledger = new MemoryLedger();
    const record = ledger.record.bind(ledger);
    ledger.record = async (facts) => {
      const bad = facts.filter((fact) => fact.kind === 'INVOICE' && fact.invoice.bookingId === 'b-2');
      await record(facts.filter((fact) => !bad.includes(fact)));
      return bad.map((fact) => ({ fact, error: new Error('throttled') }));
    };
    const result = await billBatch([ride(1, 'b-1'), ride(2, 'b-2'), pay(3, 'b-2', 'p-2')], ledger);
    // The payment of b-2 needs b-2's invoice, created in this batch: it fails with it.
    expect(result.failures.map((f) => f.record.offset)).toEqual([2, 3]);
  });
});
