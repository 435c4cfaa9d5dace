import {
  type BillingFact,
  type BillingFound,
  type BillingLedger,
  type BillingLookup,
  type FailedFact,
  type Invoice,
  type PaymentRecord,
  paymentKey,
  paymentRef,
  type StatementLine,
  statementLineId,
} from '../../../functions/billing/ports';

/**
 * An in-memory BillingLedger for unit tests; counts its calls like round trips, and the sequential ones: each
 * call answers a macrotask later (as a request would), so calls made together overlap, and `sequential` is the
 * longest chain of calls each started after the previous one had answered.
 */
export class MemoryLedger implements BillingLedger {
  readonly invoices = new Map<string, Invoice>();
  readonly payments = new Map<string, PaymentRecord>();
  readonly parked = new Set<string>();
  readonly lines = new Map<string, StatementLine>();
  calls = 0;
  sequential = 0;

  /** Counts one call: `calls`, and its place on the longest chain. */
  private async trip(): Promise<void> {
    this.calls++;
    const depth = this.sequential + 1;
    await new Promise((resolve) => setImmediate(resolve));
    this.sequential = Math.max(this.sequential, depth);
  }

  async find(lookup: BillingLookup): Promise<BillingFound> {
    await this.trip();
    const found: BillingFound = {
      invoices: new Map(),
      parked: new Set(),
      payments: new Map(),
      lines: new Set(),
    };
    for (const id of lookup.invoices ?? []) {
      const invoice = this.invoices.get(id);
      if (invoice) found.invoices.set(id, invoice);
    }
    for (const id of lookup.parked ?? []) if (this.parked.has(id)) found.parked.add(id);
    for (const { bookingId, paymentKey: key } of lookup.payments ?? []) {
      const payment = this.payments.get(paymentRef(bookingId, key));
      if (payment) found.payments.set(paymentRef(bookingId, key), payment);
    }
    for (const line of lookup.lines ?? []) {
      if (this.lines.has(statementLineId(line))) found.lines.add(statementLineId(line));
    }
    return found;
  }

  async paymentsOf(bookingId: string): Promise<PaymentRecord[]> {
    await this.trip();
    return [...this.payments.values()].filter((payment) => payment.bookingId === bookingId);
  }

  async record(facts: BillingFact[]): Promise<FailedFact[]> {
    await this.trip();
    for (const fact of facts) {
      if (fact.kind === 'INVOICE') this.invoices.set(fact.invoice.bookingId, fact.invoice);
      else if (fact.kind === 'PAYMENT') {
        this.payments.set(paymentRef(fact.payment.bookingId, paymentKey(fact.payment)), fact.payment);
      } else if (fact.kind === 'PARKED') this.parked.add(fact.bookingId);
      else this.lines.set(statementLineId(fact.line), fact.line);
    }
    return [];
  }

  async unpark(bookingIds: string[]): Promise<{ bookingId: string; error: unknown }[]> {
    await this.trip();
    for (const id of bookingIds) this.parked.delete(id);
    return [];
  }
}
