import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  DynamoDbBillingLedger,
  DynamoDbCustomerStatements,
  DynamoDbInvoiceStore,
} from '../../../functions/billing/dynamodb-billing-store';
import type { BillingLedger } from '../../../functions/billing/ports';
import type { KafkaEventRecord } from '../../../shared/msk';
import { countRequests, createTable, documentClient, snapshot } from '../../support/dynamodb';
import { deliverBatch } from './deliver';
import { billingRecord, point, T0 } from './records';

/*
 * Billing's batching against dynalite: DynamoDB requests per record (counted on the SDK client, not timed),
 * redelivery of a partially applied batch, duplicates within a batch, payments before and racing their invoice.
 */
const PARTITIONS = 6;

/** Ride n of customer n % 37: 13 started minutes of SCOOTER plus n seconds. */
function ride(n: number, offset = Math.floor(n / PARTITIONS)): KafkaEventRecord {
  return billingRecord('booking.completed', n % PARTITIONS, offset, `evt-ride-${n}`, {
    bookingId: `b-${n}`,
    customerId: `cust-${n % 37}`,
    vehicleId: 'veh-1',
    vehicleType: 'SCOOTER',
    zoneId: 'zone-berlin-mitte',
    pickup: point,
    dropoff: point,
    distanceMeters: 2_400,
    durationSeconds: 750 + n,
    currency: 'EUR',
    startedAt: T0 - 750_000,
    completedAt: T0,
  });
}

function paid(n: number, offset = Math.floor(n / PARTITIONS), id = `evt-pay-${n}`): KafkaEventRecord {
  return billingRecord('payment.succeeded', n % PARTITIONS, offset, id, {
    paymentId: `pay-${n}`,
    bookingId: `b-${n}`,
    customerId: `cust-${n % 37}`,
    invoiceId: null,
    amount: { amountMinor: 425, currency: 'EUR' },
    method: 'CARD',
    pspReference: `psp-${n}`,
    succeededAt: T0 + 60_000,
  });
}

const range = (count: number, from = 0) => Array.from({ length: count }, (_, i) => from + i);

describe('billing batches on the DynamoDB stand-in', () => {
  let client: DynamoDBDocumentClient;
  let table: string;
  let requests: ReturnType<typeof countRequests>;

  beforeAll(async () => {
    client = await documentClient();
    requests = countRequests(client);
  });
  beforeEach(async () => {
    table = await createTable(client, 'BillingTable');
  });

  const deliver = async (
    records: KafkaEventRecord[],
    ledger: BillingLedger = new DynamoDbBillingLedger(client, table),
  ) => {
    return deliverBatch(records, ledger);
  };

  /** Requests per record of delivering `records` once. */
  const costOf = async (records: KafkaEventRecord[]) => {
    const before = requests.count;
    const outcome = await deliver(records);
    expect(outcome.response.batchItemFailures).toEqual([]);
    return (requests.count - before) / records.length;
  };

  /** What the table holds after the batches are delivered once each, in order, to a fresh table. */
  const reference = async (batches: KafkaEventRecord[][]) => {
    const fresh = await createTable(client, 'BillingTable');
    for (const batch of batches) await deliver(batch, new DynamoDbBillingLedger(client, fresh));
    return snapshot(client, fresh);
  };

  it('costs at most 0.5 DynamoDB requests per record on first delivery and 0.3 on redelivery', async () => {
    const rides = range(100).map((n) => ride(n));
    const payments = range(100).map((n) => paid(n));
    const firstRides = await costOf(rides);
    const firstPayments = await costOf(payments);
    const again = await costOf([...rides, ...payments]);
    console.info(JSON.stringify({ firstRides, firstPayments, redelivered: again }));
    expect(firstRides).toBeLessThanOrEqual(0.5);
    // Exactly: one BatchGetItem of the 100 invoices (no PARKED marks: R3 reads those after W1), 8 BatchWriteItem
    // of invoices and statement lines, one BatchGetItem of the marks.
    expect(firstRides).toBe(0.1);
    expect(firstPayments).toBeLessThanOrEqual(0.5);
    expect(again).toBeLessThanOrEqual(0.3);
    // Everything billed: 100 invoices of 4.25 + n/60 started minutes... each paid 4.25 (some mismatch).
    const invoices = new DynamoDbInvoiceStore(client, table);
    expect(await invoices.get('b-0')).toMatchObject({ status: 'PAID', paidMinor: 425 });
    expect(await new DynamoDbCustomerStatements(client, table).get('cust-0', '2026-11')).toMatchObject({
      invoiceCount: 3,
      paidMinor: 3 * 425,
    });
  });

  it('completes a partially applied batch on redelivery: the same table as one clean delivery', async () => {
    const parked = range(10, 100).map((n) => paid(n)); // payments before their rides
    const batch = [
      ...range(30).map((n) => ride(n)),
      ...range(10, 100).map((n) => ride(n, 30 + n)),
      ...range(20).map((n) => paid(n)),
    ];
    const expected = await reference([parked, batch]);

    await deliver(parked);
    // The invocation dies inside its write: only the first 40% of the facts are stored.
    const real = new DynamoDbBillingLedger(client, table);
    const crashing: BillingLedger = {
      find: (lookup) => real.find(lookup),
      paymentsOf: (bookingId) => real.paymentsOf(bookingId),
      unpark: (bookingIds) => real.unpark(bookingIds),
      record: async (facts) => {
        await real.record(facts.slice(0, Math.floor(facts.length * 0.4)));
        throw new Error('Runtime exited (SIGKILL)');
      },
    };
    await expect(deliver(batch, crashing)).resolves.toMatchObject({ failed: batch.length });
    expect(await snapshot(client, table)).not.toBe(expected);

    // And a second attempt dies after storing the statement lines of the parked payments, before unparking.
    const unparkDies: BillingLedger = {
      ...crashing,
      record: (facts) => real.record(facts),
      unpark: async () => {
        throw new Error('Runtime exited (SIGKILL)');
      },
    };
    expect((await deliver(batch, unparkDies)).failed).toBe(10);

    const redelivered = await deliver(batch);
    expect(redelivered.response.batchItemFailures).toEqual([]);
    expect(await snapshot(client, table)).toBe(expected);
  });

  it('bills duplicate events within a batch once: the same event twice, and a payment re-sent under a new id', async () => {
    const clean = [ride(1), ride(2), paid(1), paid(2)];
    const expected = await reference([clean]);
    const outcome = await deliver([
      ride(1),
      ride(1, 9),
      ride(2),
      paid(1),
      paid(1, 8),
      paid(1, 9, 'evt-pay-1-resent'),
      paid(2),
    ]);
    expect(outcome).toMatchObject({ duplicateEvents: 2, failed: 0 });
    expect(await snapshot(client, table)).toBe(expected);
    expect(await new DynamoDbCustomerStatements(client, table).get('cust-1', '2026-11')).toMatchObject({
      invoiceCount: 1,
      paidMinor: 425,
      paymentIds: ['pay-1:SUCCEEDED'],
    });
  });

  /** A ledger that stops before its `at`-th call of `method` until released. */
  function pausing(method: 'find' | 'record', at: number) {
    const real = new DynamoDbBillingLedger(client, table);
    let calls = 0;
    let release: () => void = () => {};
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let paused: () => void = () => {};
    const reached = new Promise<void>((resolve) => {
      paused = resolve;
    });
    const hold = async () => {
      if (++calls === at) {
        paused();
        await released;
      }
    };
    const ledger: BillingLedger = {
      find: async (lookup) => {
        if (method === 'find') await hold();
        return real.find(lookup);
      },
      record: async (facts) => {
        if (method === 'record') await hold();
        return real.record(facts);
      },
      paymentsOf: (bookingId) => real.paymentsOf(bookingId),
      unpark: (bookingIds) => real.unpark(bookingIds),
    };
    return { ledger, reached, release };
  }

  it('never loses a payment that races its invoice, in either interleaving, and leaves no PARKED mark', async () => {
    const rides = range(12).map((n) => ride(n));
    const payments = range(12).map((n) => paid(n));
    const expected = await reference([rides, payments]);

    // The ride batch read "no payments parked" and stalls before writing the invoices; the payments park.
    const stalledRides = pausing('record', 1);
    const ridesDone = deliver(rides, stalledRides.ledger);
    await stalledRides.reached;
    expect((await deliver(payments)).failed).toBe(0);
    stalledRides.release();
    expect((await ridesDone).failed).toBe(0);
    expect(await snapshot(client, table)).toBe(expected);

    // The payments stored themselves and their marks, then stall before reading the invoices again (R3).
    table = await createTable(client, 'BillingTable');
    const stalledPayments = pausing('find', 2);
    const paymentsDone = deliver(payments, stalledPayments.ledger);
    await stalledPayments.reached;
    expect((await deliver(rides)).failed).toBe(0);
    stalledPayments.release();
    expect((await paymentsDone).failed).toBe(0);
    expect(await snapshot(client, table)).toBe(expected);

    // And both batches at once, no stalls.
    table = await createTable(client, 'BillingTable');
    const both = await Promise.all([deliver(payments), deliver(rides)]);
    expect(both.map((outcome) => outcome.failed)).toEqual([0, 0]);
    expect(await snapshot(client, table)).toBe(expected);
    expect(expected).not.toContain('"sk": "PARKED"');
  });
});
