import type { PaymentOutcome } from './billing-events';
import type { InvoiceLine } from './pricing';

export type InvoiceStatus = 'OPEN' | 'PAID' | 'PAYMENT_MISMATCH' | 'PAYMENT_FAILED';

/**
 * One invoice per booking, as the first booking.completed priced it. Immutable once stored: its payment state
 * is derived from the booking's payments (payment-status.ts), so no write ever changes an invoice.
 */
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
}

/** One payment of a booking, immutable; keyed by `paymentKey` (`<paymentId>:<outcome>`). */
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

/** The invoice as readers see it: the stored invoice plus the state its payments put it in. */
export interface InvoiceView extends Invoice {
  status: InvoiceStatus;
  paidMinor: number;
  /** Applied payments by `<paymentId>:<outcome>`. */
  payments: Record<string, PaymentRecord>;
}

export const paymentKey = (payment: Pick<PaymentRecord, 'paymentId' | 'outcome'>) =>
  `${payment.paymentId}:${payment.outcome}`;

/**
 * One line of a customer's monthly statement, keyed by what it counts (the invoice, or the payment): writing it
 * twice is writing it once, which is what makes a statement exactly-once without a counter to guard.
 */
export type StatementLine =
  | {
      kind: 'INVOICE';
      customerId: string;
      month: string;
      bookingId: string;
      invoiceId: string;
      amountMinor: number;
      currency: string;
    }
  | {
      kind: 'PAYMENT';
      customerId: string;
      month: string;
      bookingId: string;
      /** `<paymentId>:<outcome>`. */
      paymentKey: string;
      outcome: PaymentOutcome;
      amountMinor: number;
      currency: string;
    };

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

/**
 * What billing stores, each fact immutable and keyed by its business id, so storing one is idempotent without a
 * condition (and can be batched). PARKED is the one mutable fact: "a payment of this booking came before its
 * invoice and may still miss from the statement"; it is removed once the invoice's statement holds them.
 */
export type BillingFact =
  | { kind: 'INVOICE'; invoice: Invoice }
  | { kind: 'PAYMENT'; payment: PaymentRecord }
  | { kind: 'PARKED'; bookingId: string }
  | { kind: 'LINE'; line: StatementLine };

/** What to look up in one round trip (strongly consistent). */
export interface BillingLookup {
  invoices?: string[];
  parked?: string[];
  payments?: { bookingId: string; paymentKey: string }[];
  lines?: StatementLine[];
}

export interface BillingFound {
  invoices: Map<string, Invoice>;
  parked: Set<string>;
  /** By `paymentRef(bookingId, paymentKey)`. */
  payments: Map<string, PaymentRecord>;
  /** By `statementLineId(line)`. */
  lines: Set<string>;
}

export const paymentRef = (bookingId: string, key: string) => `${bookingId}|${key}`;

export const statementLineId = (line: StatementLine) =>
  `${line.customerId}|${line.month}|${line.kind === 'INVOICE' ? `INVOICE#${line.invoiceId}` : `PAYMENT#${line.paymentKey}`}`;

/** A fact the store could not write, and why. */
export interface FailedFact {
  fact: BillingFact;
  error: unknown;
}

/** The write side of billing: batched lookups and idempotent writes of facts. */
export interface BillingLedger {
  find(lookup: BillingLookup): Promise<BillingFound>;
  /** Every payment recorded for a booking. */
  paymentsOf(bookingId: string): Promise<PaymentRecord[]>;
  /** Stores facts (any number); resolves with the ones that could not be stored. */
  record(facts: BillingFact[]): Promise<FailedFact[]>;
  /** Removes PARKED facts; resolves with the bookings whose fact could not be removed. */
  unpark(bookingIds: string[]): Promise<{ bookingId: string; error: unknown }[]>;
}

/** Invoices as readers see them. */
export interface InvoiceReader {
  get(bookingId: string): Promise<InvoiceView | undefined>;
  /** Every payment seen for the booking, whether or not its invoice exists yet. */
  payments(bookingId: string): Promise<PaymentRecord[]>;
}

/** Per-customer monthly statements as readers see them. */
export interface StatementReader {
  get(customerId: string, month: string): Promise<CustomerStatement | undefined>;
}
