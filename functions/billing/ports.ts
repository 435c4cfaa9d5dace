import type { PaymentOutcome } from './billing-events';
import type { InvoiceLine } from './pricing';

export type InvoiceStatus = 'OPEN' | 'PAID' | 'PAYMENT_MISMATCH' | 'PAYMENT_FAILED';

/** One invoice per booking. Payment state is derived from the set of payments, so arrival order is irrelevant. */
export interface Invoice {
  invoiceId: string;
  bookingId: string;
  customerId: string;
  vehicleType: string;
  zoneId: string;
  /** `YYYY-MM` (UTC) of completedAt: the statement the invoice belongs to. */
  month: string;
  completedAt: string;
  durationSeconds: number;
  distanceMeters: number;
  lines: InvoiceLine[];
  totalMinor: number;
  currency: string;
  tariffVersion: string;
  status: InvoiceStatus;
  paidMinor: number;
  /** Applied payments by `<paymentId>:<outcome>`. */
  payments: Record<string, PaymentRecord>;
}

export interface PaymentRecord {
  paymentId: string;
  bookingId: string;
  customerId: string;
  outcome: PaymentOutcome;
  amountMinor: number;
  currency: string;
  at: string;
  failureCode?: string;
}

/**
 * The status the applied payments put an invoice in, whatever order they came in: PAID when the successful
 * payments add up to the invoice total exactly; PAYMENT_MISMATCH when they add up to anything else (an under-
 * or overpayment for someone to settle; it turns PAID if a later payment makes up the difference);
 * PAYMENT_FAILED when only failures are in; OPEN without payments.
 */
export function settledStatus(
  invoice: Pick<Invoice, 'totalMinor' | 'paidMinor' | 'payments'>,
): InvoiceStatus {
  const outcomes = Object.values(invoice.payments).map((payment) => payment.outcome);
  if (outcomes.includes('SUCCEEDED'))
    return invoice.paidMinor === invoice.totalMinor ? 'PAID' : 'PAYMENT_MISMATCH';
  return outcomes.length > 0 ? 'PAYMENT_FAILED' : 'OPEN';
}

export const paymentKey = (payment: Pick<PaymentRecord, 'paymentId' | 'outcome'>) =>
  `${payment.paymentId}:${payment.outcome}`;

export type ApplyPaymentResult =
  | { status: 'APPLIED' | 'ALREADY_APPLIED'; invoice: Invoice }
  /** No invoice yet: the payment stays parked in the ledger until the invoice is created. */
  | { status: 'PARKED' };

/** Invoices and the payment ledger of each booking. Every operation is idempotent. */
export interface InvoiceStore {
  /** Conditional create: a second delivery can never produce a second (or different) invoice. */
  create(invoice: Invoice): Promise<'CREATED' | 'EXISTS'>;
  get(bookingId: string): Promise<Invoice | undefined>;
  /** Records a payment in the booking's ledger (it waits there if the invoice does not exist yet). */
  recordPayment(payment: PaymentRecord): Promise<void>;
  /** The booking's ledger: every payment seen, applied or still parked. */
  payments(bookingId: string): Promise<PaymentRecord[]>;
  /** Applies a payment to the invoice once: status, paid amount, the payment in the invoice. */
  applyPayment(payment: PaymentRecord): Promise<ApplyPaymentResult>;
}

export interface CustomerStatement {
  customerId: string;
  month: string;
  currency: string;
  invoiceCount: number;
  invoicedMinor: number;
  paidMinor: number;
  invoiceIds: string[];
  paymentIds: string[];
  failedPaymentIds: string[];
}

/** Per-customer monthly statements; each invoice and each payment is counted once. */
export interface CustomerStatements {
  addInvoice(invoice: Invoice): Promise<void>;
  addPayment(invoice: Invoice, payment: PaymentRecord): Promise<void>;
  get(customerId: string, month: string): Promise<CustomerStatement | undefined>;
}
