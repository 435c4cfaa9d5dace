import { mapBounded } from '../../shared/concurrency';
import { eventKey } from '../../shared/contracts/cloudevents';
import type { RecordCoordinates } from '../../shared/msk/decode';
import type { BillingCommand, PaymentReported, RideCompleted } from './billing-events';
import {
  type BillingFact,
  type BillingLedger,
  type Invoice,
  type PaymentRecord,
  paymentKey,
  paymentRef,
  type StatementLine,
  statementLineId,
} from './ports';

/*
 * Billing exactly-once, in a handful of round trips per batch instead of ~5 per record.
 *
 * Every effect is an immutable fact keyed by its business id (the invoice by booking, a payment by
 * `<paymentId>:<outcome>`, a statement line by the invoice or payment it counts); storing one twice is storing it
 * once, so writes need no condition and are batched (BatchWriteItem, 25 a request). Payment state and statement
 * sums are derived from the facts when read (payment-status.ts), so no fact is ever updated and no counter needs
 * a guard. A batch, in as few sequential round trips as the reasoning allows (each stage's requests at once):
 *   R1       one batched read of what its bookings already have (invoice, payments; PARKED mark without a ride);
 *   W1 | R2  the batched write of what R1 shows missing (with the statement lines of those new effects), and
 *            at the same time one batched read of the lines of effects R1 found stored, and of the marks;
 *   W2 | R3  the lines R2 did not find (only after a crash), and one batched read closing the
 *            payment-before-invoice race (below), only for what W1 created;
 * then, only for bookings that had a payment before their invoice, a Query of their payments, their statement
 * lines, and the PARKED mark removed. First delivery: payments for stored invoices R1, W1 (2 round trips);
 * rides R1, W1, R3 (3). A redelivered batch finds everything in R1/R2 and writes nothing.
 *
 * First-wins. A second booking.completed for a booking (re-produced with a new id and other numbers) keeps the
 * first invoice: R1 finds it and the statement line is written from the stored invoice. Within a batch the
 * earliest record of an effect wins and the others follow its outcome. Two versions can only race when written
 * by two invocations at once that saw no stored invoice; both carry the same key (bookingId), so both are in one
 * partition, where an invocation holding the later one also holds the earlier one unless that was committed,
 * i.e. stored, before it started.
 *
 * Payment before invoice. A payment's statement line needs its invoice's customer and month. The payment path
 * stores the payment and a PARKED mark, THEN reads the invoice; the ride path stores the invoice, THEN reads the
 * mark. Each read happens after the other's write or before it, so at least one of the two sees both and writes
 * the lines (both may: the line is the same fact). Whoever does, after the invoice exists, Queries the booking's
 * payments, stores their lines and removes the mark, so the table ends the same whatever the order. (A mark can
 * outlive that only when an invocation dies between storing it and reading the invoice while another one bills
 * the same payment; the statement is complete then, and the next record of the booking removes the mark.)
 */

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
  };
}

export function paymentRecord(payment: PaymentReported): PaymentRecord {
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

/** The statement line of an invoice: its customer's statement of its month. */
export function invoiceLine(invoice: Invoice): StatementLine {
  return {
    kind: 'INVOICE',
    customerId: invoice.customerId,
    month: invoice.month,
    bookingId: invoice.bookingId,
    invoiceId: invoice.invoiceId,
    amountMinor: invoice.totalMinor,
    currency: invoice.currency,
  };
}

/** A payment counts on its invoice's statement (customer and month of the invoice, not of the payment). */
export function paymentLine(invoice: Invoice, payment: PaymentRecord): StatementLine {
  return {
    kind: 'PAYMENT',
    customerId: invoice.customerId,
    month: invoice.month,
    bookingId: invoice.bookingId,
    paymentKey: paymentKey(payment),
    outcome: payment.outcome,
    amountMinor: payment.amountMinor,
    currency: payment.currency,
  };
}

/** One valid record of the batch. */
export interface BillingInput {
  record: RecordCoordinates;
  command: BillingCommand;
}

export interface RecordFailure {
  record: RecordCoordinates;
  error: unknown;
}

export interface BillingBatchResult {
  failures: RecordFailure[];
  /** Records whose effects this run wrote (some or all). */
  applied: number;
  /** Records whose effects were all there already (redelivery). */
  alreadyApplied: number;
  /** Records repeating an event (CloudEvents source + id) seen earlier in the batch. */
  duplicateEvents: number;
}

/** All records of the batch with one effect (one invoice, or one payment); the first one's content counts. */
interface Effect {
  records: RecordCoordinates[];
  bookingId: string;
  error?: unknown;
  wrote: boolean;
}
interface RideEffect extends Effect {
  invoice: Invoice;
}
interface PaymentEffect extends Effect {
  payment: PaymentRecord;
  stored: boolean;
}

/** What the batch does to one booking. */
interface Booking {
  bookingId: string;
  ride?: RideEffect;
  payments: PaymentEffect[];
  /** The stored invoice, or the one this batch creates. */
  invoice?: Invoice;
  invoiceStored: boolean;
  /**
   * R1 found its PARKED mark. Read only for bookings without a ride in the batch: with one, the invoice exists
   * after W1, and the mark is read after that anyway (R2 for a stored invoice, R3 for a new one).
   */
  parkedAtStart: boolean;
}

const effectsOf = (booking: Booking): Effect[] => [
  ...(booking.ride ? [booking.ride] : []),
  ...booking.payments,
];

function failBooking(booking: Booking, error: unknown): void {
  for (const effect of effectsOf(booking)) effect.error ??= error;
}

/** Groups the batch by effect, in batch order (the earliest record of an effect wins). */
function groupByBooking(inputs: readonly BillingInput[]): {
  bookings: Map<string, Booking>;
  duplicateEvents: number;
} {
  const bookings = new Map<string, Booking>();
  const identities = new Set<string>();
  let duplicateEvents = 0;
  for (const { record, command } of inputs) {
    // An id is unique only within its source (CloudEvents), so the identity is both (in memory, never stored).
    const identity = eventKey({ source: command.eventSource, id: command.eventId });
    if (identities.has(identity)) duplicateEvents++;
    identities.add(identity);
    let booking = bookings.get(command.bookingId);
    if (!booking) {
      booking = { bookingId: command.bookingId, payments: [], invoiceStored: false, parkedAtStart: false };
      bookings.set(command.bookingId, booking);
    }
    if (command.kind === 'RIDE_COMPLETED') {
      booking.ride ??= {
        records: [],
        bookingId: command.bookingId,
        invoice: invoiceFor(command),
        wrote: false,
      };
      booking.ride.records.push(record);
      continue;
    }
    const payment = paymentRecord(command);
    const key = paymentKey(payment);
    let effect = booking.payments.find((p) => paymentKey(p.payment) === key);
    if (!effect) {
      effect = { records: [], bookingId: command.bookingId, payment, stored: false, wrote: false };
      booking.payments.push(effect);
    }
    effect.records.push(record);
  }
  return { bookings, duplicateEvents };
}

/** Reads with `read`; on error every booking involved fails and nothing else is attempted for them. */
async function readFor<T>(involved: Booking[], read: () => Promise<T>): Promise<T | undefined> {
  if (involved.length === 0) return undefined;
  try {
    return await read();
  } catch (error) {
    for (const booking of involved) failBooking(booking, error);
    return undefined;
  }
}

const healthy = (booking: Booking) => effectsOf(booking).every((effect) => effect.error === undefined);

/** Writes facts, each owned by the effects that need it; a fact that fails fails its owners. */
async function writeFacts(
  ledger: BillingLedger,
  planned: Array<{ fact: BillingFact; owners: Effect[] }>,
): Promise<void> {
  if (planned.length === 0) return;
  const owners = new Map(planned.map(({ fact, owners }) => [fact, owners]));
  let failed: Awaited<ReturnType<BillingLedger['record']>>;
  try {
    failed = await ledger.record(planned.map(({ fact }) => fact));
  } catch (error) {
    failed = planned.map(({ fact }) => ({ fact, error }));
  }
  for (const { fact, error } of failed) for (const owner of owners.get(fact) ?? []) owner.error ??= error;
  for (const { owners } of planned) for (const owner of owners) owner.wrote = true;
}

/**
 * Bills one batch of valid records (see the comment at the top). Records fail alone: a failed read or write
 * fails the records of the bookings it concerned, and a retry of those records is safe whatever was stored.
 */
export async function billBatch(
  inputs: readonly BillingInput[],
  ledger: BillingLedger,
  concurrency = 8,
): Promise<BillingBatchResult> {
  const { bookings, duplicateEvents } = groupByBooking(inputs);
  const all = [...bookings.values()];

  // R1: what the bookings already have.
  const r1 = await readFor(all, () =>
    ledger.find({
      invoices: all.map((b) => b.bookingId),
      parked: all.filter((b) => !b.ride).map((b) => b.bookingId),
      payments: all.flatMap((b) =>
        b.payments.map((p) => ({ bookingId: b.bookingId, paymentKey: paymentKey(p.payment) })),
      ),
    }),
  );
  for (const booking of all) {
    if (!r1) break;
    const stored = r1.invoices.get(booking.bookingId);
    booking.invoice = stored ?? booking.ride?.invoice;
    booking.invoiceStored = stored !== undefined;
    booking.parkedAtStart = r1.parked.has(booking.bookingId);
    for (const effect of booking.payments) {
      const known = r1.payments.get(paymentRef(booking.bookingId, paymentKey(effect.payment)));
      if (known) effect.payment = known;
      effect.stored = known !== undefined;
    }
  }

  // W1 of what R1 shows missing, and R2 at the same time: R2 reads what only an earlier delivery can have
  // written (the statement lines of effects R1 found stored) and the reads whose order the stored facts already
  // guarantee (the PARKED mark of a booking whose invoice is stored, the invoice of a payment stored with its
  // mark). A line of an effect R1 did not find stored is written without a read: it is missing unless a crash
  // stored it without its effect, and writing it again is writing the same fact. So a first delivery costs R1
  // and one stage of writes; a redelivery R1 and R2, then W2 only for lines still missing.
  const stored = all.filter((b) => healthy(b) && b.invoiceStored);
  const parkedOnly = all.filter(
    (b) => healthy(b) && !b.invoice && b.parkedAtStart && b.payments.every((p) => p.stored),
  );
  /** The booking's statement lines; `known`: its invoice and effect were stored, so the line may be too. */
  const lineOwners = (b: Booking): Array<{ line: StatementLine; owner: Effect; known: boolean }> => {
    const invoice = b.invoice as Invoice;
    return [
      ...(b.ride ? [{ line: invoiceLine(invoice), owner: b.ride, known: b.invoiceStored }] : []),
      ...b.payments.map((p) => ({
        line: paymentLine(invoice, p.payment),
        owner: p,
        known: b.invoiceStored && p.stored,
      })),
    ];
  };
  const w1: Array<{ fact: BillingFact; owners: Effect[] }> = [];
  for (const booking of all) {
    if (!healthy(booking)) continue;
    const { ride } = booking;
    if (ride && !booking.invoiceStored) {
      w1.push({ fact: { kind: 'INVOICE', invoice: ride.invoice }, owners: [ride, ...booking.payments] });
    }
    for (const effect of booking.payments) {
      if (!effect.stored) w1.push({ fact: { kind: 'PAYMENT', payment: effect.payment }, owners: [effect] });
    }
    if (booking.invoice) {
      for (const { line, owner, known } of lineOwners(booking)) {
        if (!known) w1.push({ fact: { kind: 'LINE', line }, owners: [owner] });
      }
    } else if (booking.payments.some((p) => !p.stored) || !booking.parkedAtStart) {
      w1.push({ fact: { kind: 'PARKED', bookingId: booking.bookingId }, owners: booking.payments });
    }
  }
  const [r2] = await Promise.all([
    readFor([...stored, ...parkedOnly], () =>
      ledger.find({
        lines: stored.flatMap((b) =>
          lineOwners(b)
            .filter((l) => l.known)
            .map((l) => l.line),
        ),
        parked: stored.map((b) => b.bookingId),
        invoices: parkedOnly.map((b) => b.bookingId),
      }),
    ),
    writeFacts(ledger, w1),
  ]);

  // W2: lines of stored effects that R2 did not find (a crash between storing an effect and its line).
  const w2: Array<{ fact: BillingFact; owners: Effect[] }> = [];
  const toSettle = new Map<string, Invoice>();
  for (const booking of stored) {
    if (!healthy(booking) || !r2) continue;
    for (const { line, owner, known } of lineOwners(booking)) {
      if (known && !r2.lines.has(statementLineId(line)))
        w2.push({ fact: { kind: 'LINE', line }, owners: [owner] });
    }
    if (booking.parkedAtStart || r2.parked.has(booking.bookingId)) {
      toSettle.set(booking.bookingId, booking.invoice as Invoice);
    }
  }
  for (const booking of parkedOnly) {
    const found = r2?.invoices.get(booking.bookingId);
    if (healthy(booking) && found) {
      booking.invoice = found;
      toSettle.set(booking.bookingId, found);
    }
  }

  // R3, with W2: after W1, the mark of each invoice it created and the invoice of each payment it parked.
  const created = all.filter((b) => healthy(b) && b.invoice && !b.invoiceStored);
  const parked = all.filter(
    (b) => healthy(b) && !b.invoice && (b.payments.some((p) => !p.stored) || !b.parkedAtStart),
  );
  const [r3] = await Promise.all([
    readFor([...created, ...parked], () =>
      ledger.find({ parked: created.map((b) => b.bookingId), invoices: parked.map((b) => b.bookingId) }),
    ),
    writeFacts(ledger, w2),
  ]);
  for (const booking of created) {
    if (r3?.parked.has(booking.bookingId)) toSettle.set(booking.bookingId, booking.invoice as Invoice);
  }
  for (const booking of parked) {
    const found = r3?.invoices.get(booking.bookingId);
    if (found) {
      booking.invoice = found;
      toSettle.set(booking.bookingId, found);
    }
  }

  await settle(ledger, toSettle, bookings, concurrency);

  let applied = 0;
  let alreadyApplied = 0;
  const failures: RecordFailure[] = [];
  for (const booking of all) {
    for (const effect of effectsOf(booking)) {
      if (effect.error !== undefined) {
        for (const record of effect.records) failures.push({ record, error: effect.error });
      } else if (effect.wrote) applied += effect.records.length;
      else alreadyApplied += effect.records.length;
    }
  }
  return { failures, applied, alreadyApplied, duplicateEvents };
}

/**
 * For each booking whose invoice exists and that had a payment before it: every payment's statement line, then
 * the PARKED mark removed (only after the lines are stored, so a crash in between is settled again).
 */
async function settle(
  ledger: BillingLedger,
  toSettle: Map<string, Invoice>,
  bookings: Map<string, Booking>,
  concurrency: number,
): Promise<void> {
  const entries = [...toSettle.entries()].filter(([id]) => healthy(bookings.get(id) as Booking));
  if (entries.length === 0) return;
  const payments = await mapBounded(entries, concurrency, async ([bookingId]) => {
    try {
      return await ledger.paymentsOf(bookingId);
    } catch (error) {
      failBooking(bookings.get(bookingId) as Booking, error);
      return [];
    }
  });
  const planned: Array<{ fact: BillingFact; owners: Effect[] }> = [];
  entries.forEach(([bookingId, invoice], i) => {
    const booking = bookings.get(bookingId) as Booking;
    if (!healthy(booking)) return;
    for (const payment of payments[i] ?? []) {
      planned.push({
        fact: { kind: 'LINE', line: paymentLine(invoice, payment) },
        owners: effectsOf(booking),
      });
    }
  });
  await writeFacts(ledger, planned);
  const done = entries.map(([id]) => id).filter((id) => healthy(bookings.get(id) as Booking));
  if (done.length === 0) return;
  let failed: Awaited<ReturnType<BillingLedger['unpark']>>;
  try {
    failed = await ledger.unpark(done);
  } catch (error) {
    failed = done.map((bookingId) => ({ bookingId, error }));
  }
  for (const { bookingId, error } of failed) failBooking(bookings.get(bookingId) as Booking, error);
}
