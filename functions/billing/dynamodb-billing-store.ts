import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { chunk, mapBounded } from '../../shared/concurrency';
import { batchDeleteAll, batchGetAll, batchPutAll, WRITE_BATCH } from '../../shared/dynamodb';
import { invoiceView, statementOf } from './payment-status';
import {
  type BillingFact,
  type BillingFound,
  type BillingLedger,
  type BillingLookup,
  type CustomerStatement,
  type FailedFact,
  type Invoice,
  type InvoiceReader,
  type InvoiceView,
  type PaymentRecord,
  paymentKey,
  paymentRef,
  type StatementLine,
  type StatementReader,
  statementLineId,
} from './ports';

/*
 * BillingTable layout (access patterns are documented next to the table in serverless.yml):
 *   pk INVOICE#<bookingId>    sk INVOICE                                 the invoice (immutable)
 *   pk INVOICE#<bookingId>    sk PAYMENT#<paymentId>:<outcome>            a payment of the booking (immutable)
 *   pk INVOICE#<bookingId>    sk PARKED                                  a payment came before the invoice
 *   pk CUSTOMER#<customerId>  sk STATEMENT#<YYYY-MM>#INVOICE#<invoiceId>  statement line of an invoice
 *   pk CUSTOMER#<customerId>  sk STATEMENT#<YYYY-MM>#PAYMENT#<key>        statement line of a payment
 */
type Key = { pk: string; sk: string };
const invoiceKey = (bookingId: string): Key => ({ pk: `INVOICE#${bookingId}`, sk: 'INVOICE' });
const parkedKey = (bookingId: string): Key => ({ pk: `INVOICE#${bookingId}`, sk: 'PARKED' });
const paymentItemKey = (bookingId: string, key: string): Key => ({
  pk: `INVOICE#${bookingId}`,
  sk: `PAYMENT#${key}`,
});
const statementPrefix = (month: string) => `STATEMENT#${month}#`;
const lineKey = (line: StatementLine): Key => ({
  pk: `CUSTOMER#${line.customerId}`,
  sk: `${statementPrefix(line.month)}${line.kind === 'INVOICE' ? `INVOICE#${line.invoiceId}` : `PAYMENT#${line.paymentKey}`}`,
});
const keyId = (key: Key) => `${key.pk}\u0000${key.sk}`;
const KEY = ['pk', 'sk'];

function withoutKeys<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

function itemOf(fact: BillingFact): Record<string, unknown> {
  switch (fact.kind) {
    case 'INVOICE':
      return { ...invoiceKey(fact.invoice.bookingId), ...fact.invoice };
    case 'PAYMENT':
      return { ...paymentItemKey(fact.payment.bookingId, paymentKey(fact.payment)), ...fact.payment };
    case 'PARKED':
      return { ...parkedKey(fact.bookingId), bookingId: fact.bookingId };
    case 'LINE':
      return { ...lineKey(fact.line), ...fact.line };
  }
}

/** Billing on one DynamoDB table: batched consistent reads, batched unconditional writes of immutable facts. */
export class DynamoDbBillingLedger implements BillingLedger {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** Batch requests in flight at once: 16 writes 400 facts (a 6-partition batch's rides) in one round trip. */
    private readonly concurrency = 16,
  ) {}

  async find(lookup: BillingLookup): Promise<BillingFound> {
    const keys = new Map<string, Key>();
    const add = (key: Key) => keys.set(keyId(key), key);
    for (const bookingId of lookup.invoices ?? []) add(invoiceKey(bookingId));
    for (const bookingId of lookup.parked ?? []) add(parkedKey(bookingId));
    for (const { bookingId, paymentKey: key } of lookup.payments ?? []) add(paymentItemKey(bookingId, key));
    for (const line of lookup.lines ?? []) add(lineKey(line));
    const items = await batchGetAll(this.client, this.tableName, [...keys.values()], this.concurrency);
    const found: BillingFound = {
      invoices: new Map(),
      parked: new Set(),
      payments: new Map(),
      lines: new Set(),
    };
    for (const item of items) {
      const sk = item.sk as string;
      if (sk === 'INVOICE') {
        const invoice = withoutKeys<Invoice>(item);
        found.invoices.set(invoice.bookingId, invoice);
      } else if (sk === 'PARKED') found.parked.add(item.bookingId as string);
      else if (sk.startsWith('PAYMENT#')) {
        const payment = withoutKeys<PaymentRecord>(item);
        found.payments.set(paymentRef(payment.bookingId, paymentKey(payment)), payment);
      } else if (sk.startsWith('STATEMENT#'))
        found.lines.add(statementLineId(withoutKeys<StatementLine>(item)));
    }
    return found;
  }

  async record(facts: BillingFact[]): Promise<FailedFact[]> {
    // One request must not name an item twice; facts of one key are the same fact.
    const byKey = new Map<string, { item: Record<string, unknown>; facts: BillingFact[] }>();
    for (const fact of facts) {
      const item = itemOf(fact);
      const id = keyId(item as Key);
      const entry = byKey.get(id);
      if (entry) entry.facts.push(fact);
      else byKey.set(id, { item, facts: [fact] });
    }
    const failed: FailedFact[] = [];
    // A request's worth at a time, so that a request that fails fails its own facts alone.
    await mapBounded(chunk([...byKey.values()], WRITE_BATCH), this.concurrency, async (chunk) => {
      try {
        await batchPutAll(
          this.client,
          this.tableName,
          KEY,
          chunk.map(({ item }) => item),
          1,
        );
      } catch (error) {
        for (const { facts } of chunk) for (const fact of facts) failed.push({ fact, error });
      }
    });
    return failed;
  }

  async unpark(bookingIds: string[]): Promise<{ bookingId: string; error: unknown }[]> {
    const failed: { bookingId: string; error: unknown }[] = [];
    await mapBounded(chunk([...new Set(bookingIds)], WRITE_BATCH), this.concurrency, async (chunk) => {
      try {
        await batchDeleteAll(this.client, this.tableName, chunk.map(parkedKey), 1);
      } catch (error) {
        for (const bookingId of chunk) failed.push({ bookingId, error });
      }
    });
    return failed;
  }

  paymentsOf(bookingId: string): Promise<PaymentRecord[]> {
    return paymentsOf(this.client, this.tableName, bookingId);
  }
}

/** Invoices as readers see them: one Query of the booking's items, payment state derived (payment-status.ts). */
export class DynamoDbInvoiceStore implements InvoiceReader {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(bookingId: string): Promise<InvoiceView | undefined> {
    const items = await query(this.client, this.tableName, `INVOICE#${bookingId}`);
    const invoice = items.find((item) => item.sk === 'INVOICE');
    if (!invoice) return undefined;
    const payments = items
      .filter((item) => (item.sk as string).startsWith('PAYMENT#'))
      .map((item) => withoutKeys<PaymentRecord>(item));
    return invoiceView(withoutKeys<Invoice>(invoice), payments);
  }

  payments(bookingId: string): Promise<PaymentRecord[]> {
    return paymentsOf(this.client, this.tableName, bookingId);
  }
}

/** Monthly statements as readers see them: one Query of the month's lines, summed. */
export class DynamoDbCustomerStatements implements StatementReader {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(customerId: string, month: string): Promise<CustomerStatement | undefined> {
    const lines = await query(this.client, this.tableName, `CUSTOMER#${customerId}`, statementPrefix(month));
    return statementOf(
      customerId,
      month,
      lines.map((item) => withoutKeys<StatementLine>(item)),
    );
  }
}

async function paymentsOf(
  client: DynamoDBDocumentClient,
  tableName: string,
  bookingId: string,
): Promise<PaymentRecord[]> {
  const items = await query(client, tableName, `INVOICE#${bookingId}`, 'PAYMENT#');
  return items.map((item) => withoutKeys<PaymentRecord>(item));
}

async function query(
  client: DynamoDBDocumentClient,
  tableName: string,
  pk: string,
  skPrefix?: string,
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new QueryCommand({
        TableName: tableName,
        KeyConditionExpression: skPrefix ? 'pk = :pk AND begins_with(sk, :prefix)' : 'pk = :pk',
        ExpressionAttributeValues: skPrefix ? { ':pk': pk, ':prefix': skPrefix } : { ':pk': pk },
        ConsistentRead: true,
        ExclusiveStartKey: startKey,
      }),
    );
    items.push(...(page.Items ?? []));
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return items;
}

/** Invoice views of a whole table's items (a scan): for checks over everything billed, e.g. the reliability suite. */
export function invoiceViewsOf(items: readonly Record<string, unknown>[]): Map<string, InvoiceView> {
  const payments = new Map<string, PaymentRecord[]>();
  for (const item of items) {
    if (typeof item.sk !== 'string' || !item.sk.startsWith('PAYMENT#')) continue;
    const payment = withoutKeys<PaymentRecord>(item);
    payments.set(payment.bookingId, [...(payments.get(payment.bookingId) ?? []), payment]);
  }
  const views = new Map<string, InvoiceView>();
  for (const item of items) {
    if (item.sk !== 'INVOICE') continue;
    const invoice = withoutKeys<Invoice>(item);
    views.set(invoice.bookingId, invoiceView(invoice, payments.get(invoice.bookingId) ?? []));
  }
  return views;
}
