import type {
  CustomerStatement,
  Invoice,
  InvoiceStatus,
  InvoiceView,
  PaymentRecord,
  StatementLine,
} from './ports';
import { paymentKey } from './ports';

/**
 * The business rules of payment state, pure. The state is a function of the SET of payments, never of their
 * order, which is what lets billing store each payment as its own immutable fact and derive the rest:
 * - PAID when the successful payments add up to the invoice total exactly;
 * - PAYMENT_MISMATCH when they add up to anything else (an under- or overpayment for someone to settle; it turns
 *   PAID when a later payment makes up the difference);
 * - PAYMENT_FAILED when only failures are in (a failure after a success does not hide that money came in);
 * - OPEN without payments.
 */
export function settledStatus(totalMinor: number, payments: readonly PaymentRecord[]): InvoiceStatus {
  const succeeded = payments.filter((payment) => payment.outcome === 'SUCCEEDED');
  if (succeeded.length > 0) return paidMinor(payments) === totalMinor ? 'PAID' : 'PAYMENT_MISMATCH';
  return payments.length > 0 ? 'PAYMENT_FAILED' : 'OPEN';
}

/** What the successful payments brought in. */
export function paidMinor(payments: readonly PaymentRecord[]): number {
  return payments
    .filter((payment) => payment.outcome === 'SUCCEEDED')
    .reduce((sum, payment) => sum + payment.amountMinor, 0);
}

/** The invoice with the state its payments put it in (one entry per payment key). */
export function invoiceView(invoice: Invoice, payments: readonly PaymentRecord[]): InvoiceView {
  const byKey = new Map(payments.map((payment) => [paymentKey(payment), payment]));
  const applied = [...byKey.values()];
  return {
    ...invoice,
    status: settledStatus(invoice.totalMinor, applied),
    paidMinor: paidMinor(applied),
    payments: Object.fromEntries([...byKey.entries()].sort(([a], [b]) => a.localeCompare(b))),
  };
}

/** Sums a customer's statement lines of one month; undefined when there are none. */
export function statementOf(
  customerId: string,
  month: string,
  lines: readonly StatementLine[],
): CustomerStatement | undefined {
  const first = lines[0];
  if (!first) return undefined;
  const statement: CustomerStatement = {
    customerId,
    month,
    currency: first.currency,
    invoiceCount: 0,
    invoicedMinor: 0,
    paidMinor: 0,
    invoiceIds: [],
    paymentIds: [],
    failedPaymentIds: [],
  };
  for (const line of lines) {
    if (line.kind === 'INVOICE') {
      statement.invoiceCount++;
      statement.invoicedMinor += line.amountMinor;
      statement.invoiceIds.push(line.invoiceId);
    } else if (line.outcome === 'SUCCEEDED') {
      statement.paidMinor += line.amountMinor;
      statement.paymentIds.push(line.paymentKey);
    } else {
      statement.failedPaymentIds.push(line.paymentKey);
    }
  }
  for (const ids of [statement.invoiceIds, statement.paymentIds, statement.failedPaymentIds]) ids.sort();
  return statement;
}
