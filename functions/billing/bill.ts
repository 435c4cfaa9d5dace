import type { BillingCommand, PaymentReported, RideCompleted } from './billing-events';
import type { CustomerStatements, Invoice, InvoiceStore, PaymentRecord } from './ports';

export interface BillingDependencies {
  invoices: InvoiceStore;
  statements: CustomerStatements;
}

export type BillingResult =
  | { kind: 'INVOICE'; bookingId: string; invoice: 'CREATED' | 'EXISTS'; parkedPaymentsApplied: number }
  | { kind: 'PAYMENT'; bookingId: string; payment: 'APPLIED' | 'ALREADY_APPLIED' | 'PARKED' };

export function invoiceFor(ride: RideCompleted): Invoice {
  return {
    invoiceId: `INV-${ride.bookingId}`,
    bookingId: ride.bookingId,
    customerId: ride.customerId,
    vehicleType: ride.vehicleType,
    zoneId: ride.zoneId,
    month: ride.completedAt.slice(0, 7),
    completedAt: ride.completedAt,
    durationSeconds: ride.durationSeconds,
    distanceMeters: ride.distanceMeters,
    lines: ride.price.lines,
    totalMinor: ride.price.totalMinor,
    currency: ride.price.currency,
    tariffVersion: ride.price.tariffVersion,
    status: 'OPEN',
    paidMinor: 0,
    payments: {},
  };
}

function paymentRecord(payment: PaymentReported): PaymentRecord {
  const record: PaymentRecord = {
    paymentId: payment.paymentId,
    bookingId: payment.bookingId,
    customerId: payment.customerId,
    outcome: payment.outcome,
    amountMinor: payment.amountMinor,
    currency: payment.currency,
    at: payment.at,
  };
  if (payment.failureCode !== undefined) record.failureCode = payment.failureCode;
  return record;
}

/**
 * Applies one billing event. Every step is idempotent on its own (conditional put, sets of counted ids,
 * payments keyed in the invoice), so a crash between steps is repaired by the retry, and a payment is never
 * lost whichever of payment and invoice comes first:
 * - a payment is written to the booking's ledger BEFORE it is applied to the invoice;
 * - an invoice is created BEFORE the ledger is read and its payments applied.
 * Whichever runs second sees the other's write.
 */
export async function bill(command: BillingCommand, deps: BillingDependencies): Promise<BillingResult> {
  if (command.kind === 'RIDE_COMPLETED') {
    const invoice = invoiceFor(command);
    const created = await deps.invoices.create(invoice);
    // On EXISTS use the stored invoice: the first delivery's pricing is the one the customer was billed.
    const stored =
      created === 'CREATED' ? invoice : ((await deps.invoices.get(invoice.bookingId)) ?? invoice);
    await deps.statements.addInvoice(stored);
    let parkedPaymentsApplied = 0;
    for (const payment of await deps.invoices.payments(invoice.bookingId)) {
      const result = await deps.invoices.applyPayment(payment);
      if (result.status === 'PARKED') continue; // cannot happen once the invoice exists
      if (result.status === 'APPLIED') parkedPaymentsApplied++;
      await deps.statements.addPayment(result.invoice, payment);
    }
    return { kind: 'INVOICE', bookingId: invoice.bookingId, invoice: created, parkedPaymentsApplied };
  }

  const payment = paymentRecord(command);
  await deps.invoices.recordPayment(payment);
  const result = await deps.invoices.applyPayment(payment);
  if (result.status !== 'PARKED') await deps.statements.addPayment(result.invoice, payment);
  return { kind: 'PAYMENT', bookingId: payment.bookingId, payment: result.status };
}
