import {
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  type ApplyPaymentResult,
  type CustomerStatement,
  type CustomerStatements,
  type Invoice,
  type InvoiceStore,
  type PaymentRecord,
  paymentKey,
  settledStatus,
} from './ports';

/*
 * BillingTable layout (access patterns are documented next to the table in serverless.yml):
 *   pk INVOICE#<bookingId>   sk INVOICE                       the invoice (conditional put: one per booking)
 *   pk INVOICE#<bookingId>   sk PAYMENT#<paymentId>:<outcome>  the booking's payment ledger (parked until invoiced)
 *   pk CUSTOMER#<customerId> sk STATEMENT#<YYYY-MM>            monthly statement; id sets make each count once
 */
const invoiceKey = (bookingId: string) => ({ pk: `INVOICE#${bookingId}`, sk: 'INVOICE' });
const ledgerKey = (payment: PaymentRecord) => ({
  pk: `INVOICE#${payment.bookingId}`,
  sk: `PAYMENT#${paymentKey(payment)}`,
});
const statementKey = (customerId: string, month: string) => ({
  pk: `CUSTOMER#${customerId}`,
  sk: `STATEMENT#${month}`,
});

function isConditionalCheckFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

function withoutKeys<T>(item: Record<string, unknown>): T {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
}

export class DynamoDbInvoiceStore implements InvoiceStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async create(invoice: Invoice): Promise<'CREATED' | 'EXISTS'> {
    try {
      await this.client.send(
        new PutCommand({
          TableName: this.tableName,
          Item: { ...invoiceKey(invoice.bookingId), ...invoice },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return 'CREATED';
    } catch (error) {
      if (isConditionalCheckFailure(error)) return 'EXISTS';
      throw error;
    }
  }

  async get(bookingId: string): Promise<Invoice | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({ TableName: this.tableName, Key: invoiceKey(bookingId), ConsistentRead: true }),
    );
    return Item ? withoutKeys<Invoice>(Item) : undefined;
  }

  async recordPayment(payment: PaymentRecord): Promise<void> {
    // A plain put: the ledger entry is a pure function of the event, so rewriting it on a retry changes nothing.
    await this.client.send(
      new PutCommand({ TableName: this.tableName, Item: { ...ledgerKey(payment), ...payment } }),
    );
  }

  async payments(bookingId: string): Promise<PaymentRecord[]> {
    const payments: PaymentRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :payment)',
          ExpressionAttributeValues: { ':pk': `INVOICE#${bookingId}`, ':payment': 'PAYMENT#' },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of page.Items ?? []) payments.push(withoutKeys<PaymentRecord>(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return payments;
  }

  /**
   * One conditional update keyed by the payment: applied at most once, and order-independent: a success sets
   * PAID; a failure sets PAYMENT_FAILED only while no success is in, so success-then-failure and
   * failure-then-success both end PAID. PAID is the expected outcome of a success; when the amounts do not add
   * up to the total, `settle` corrects it to PAYMENT_MISMATCH (a second request only in that case).
   */
  async applyPayment(payment: PaymentRecord): Promise<ApplyPaymentResult> {
    const succeeded = payment.outcome === 'SUCCEEDED';
    const applied = await this.tryUpdate(payment, succeeded ? 'PAID' : 'PAYMENT_FAILED');
    if (applied) return { status: 'APPLIED', invoice: await this.settle(applied) };
    const invoice = await this.get(payment.bookingId);
    if (!invoice) return { status: 'PARKED' };
    // Settled here too: a crash between the update and `settle` is repaired when the payment comes back.
    if (invoice.payments[paymentKey(payment)]) {
      return { status: 'ALREADY_APPLIED', invoice: await this.settle(invoice) };
    }
    // A failure after a success: record it, keep the status.
    const recorded = await this.tryUpdate(payment, undefined);
    if (recorded) return { status: 'APPLIED', invoice: await this.settle(recorded) };
    const latest = await this.get(payment.bookingId);
    return latest ? { status: 'ALREADY_APPLIED', invoice: await this.settle(latest) } : { status: 'PARKED' };
  }

  /**
   * Brings the stored status in line with `settledStatus`. Conditional on the paid amount and status it was
   * computed from; when a concurrent payment changed them, it reads the invoice again and recomputes.
   */
  private async settle(invoice: Invoice): Promise<Invoice> {
    let current = invoice;
    for (let attempt = 1; ; attempt++) {
      const status = settledStatus(current);
      if (status === current.status) return current;
      try {
        const { Attributes } = await this.client.send(
          new UpdateCommand({
            TableName: this.tableName,
            Key: invoiceKey(current.bookingId),
            UpdateExpression: 'SET #status = :status',
            ConditionExpression: '#paidMinor = :paid AND #status = :seen',
            ExpressionAttributeNames: { '#status': 'status', '#paidMinor': 'paidMinor' },
            ExpressionAttributeValues: {
              ':status': status,
              ':paid': current.paidMinor,
              ':seen': current.status,
            },
            ReturnValues: 'ALL_NEW',
          }),
        );
        return Attributes ? withoutKeys<Invoice>(Attributes) : { ...current, status };
      } catch (error) {
        if (!isConditionalCheckFailure(error) || attempt >= 10) throw error;
        const latest = await this.get(current.bookingId);
        if (!latest)
          throw new Error(`Invoice of booking ${current.bookingId} vanished while settling its status`);
        current = latest;
      }
    }
  }

  private async tryUpdate(
    payment: PaymentRecord,
    status: Invoice['status'] | undefined,
  ): Promise<Invoice | undefined> {
    const names: Record<string, string> = { '#payments': 'payments', '#key': paymentKey(payment) };
    const values: Record<string, unknown> = { ':payment': payment };
    const sets = ['#payments.#key = :payment'];
    const conditions = ['attribute_exists(pk)', 'attribute_not_exists(#payments.#key)'];
    let add = '';
    if (status !== undefined) {
      names['#status'] = 'status';
      values[':status'] = status;
      sets.push('#status = :status');
    }
    if (status === 'PAYMENT_FAILED') {
      // Only while no success is in: after one the invoice is PAID or PAYMENT_MISMATCH and stays so.
      values[':open'] = 'OPEN';
      values[':failed'] = 'PAYMENT_FAILED';
      conditions.push('#status IN (:open, :failed)');
    }
    if (payment.outcome === 'SUCCEEDED') {
      names['#paidMinor'] = 'paidMinor';
      values[':amount'] = payment.amountMinor;
      add = ' ADD #paidMinor :amount';
    }
    try {
      const { Attributes } = await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: invoiceKey(payment.bookingId),
          UpdateExpression: `SET ${sets.join(', ')}${add}`,
          ConditionExpression: conditions.join(' AND '),
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? withoutKeys<Invoice>(Attributes) : undefined;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return undefined;
      throw error;
    }
  }

  /** Deletes every item of the billing table: the first step of a rebuild. */
  async clear(): Promise<number> {
    return clearTable(this.client, this.tableName, ['pk', 'sk']);
  }
}

export class DynamoDbCustomerStatements implements CustomerStatements {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async addInvoice(invoice: Invoice): Promise<void> {
    await this.countOnce(invoice, 'invoiceIds', invoice.invoiceId, {
      '#invoiceCount': ['invoiceCount', 1],
      '#invoicedMinor': ['invoicedMinor', invoice.totalMinor],
    });
  }

  async addPayment(invoice: Invoice, payment: PaymentRecord): Promise<void> {
    if (payment.outcome === 'SUCCEEDED') {
      await this.countOnce(invoice, 'paymentIds', paymentKey(payment), {
        '#paidMinor': ['paidMinor', payment.amountMinor],
      });
    } else {
      await this.countOnce(invoice, 'failedPaymentIds', paymentKey(payment), {});
    }
  }

  /** Adds `id` to the statement's set and the amounts, unless the set already holds it. */
  private async countOnce(
    invoice: Invoice,
    setAttribute: string,
    id: string,
    sums: Record<string, [attribute: string, amount: number]>,
  ): Promise<void> {
    const names: Record<string, string> = {
      '#customerId': 'customerId',
      '#month': 'month',
      '#currency': 'currency',
      '#set': setAttribute,
    };
    const values: Record<string, unknown> = {
      ':customerId': invoice.customerId,
      ':month': invoice.month,
      ':currency': invoice.currency,
      ':ids': new Set([id]),
      ':id': id,
    };
    const adds = ['#set :ids'];
    for (const [placeholder, [attribute, amount]] of Object.entries(sums)) {
      names[placeholder] = attribute;
      values[`:${attribute}`] = amount;
      adds.push(`${placeholder} :${attribute}`);
    }
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: statementKey(invoice.customerId, invoice.month),
          UpdateExpression: `SET #customerId = :customerId, #month = :month, #currency = :currency ADD ${adds.join(', ')}`,
          ConditionExpression: 'attribute_not_exists(#set) OR NOT contains(#set, :id)',
          ExpressionAttributeNames: names,
          ExpressionAttributeValues: values,
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
    }
  }

  async get(customerId: string, month: string): Promise<CustomerStatement | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: statementKey(customerId, month),
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const ids = (value: unknown) => [...((value as Set<string> | undefined) ?? [])].sort();
    return {
      customerId,
      month,
      currency: Item.currency as string,
      invoiceCount: (Item.invoiceCount as number | undefined) ?? 0,
      invoicedMinor: (Item.invoicedMinor as number | undefined) ?? 0,
      paidMinor: (Item.paidMinor as number | undefined) ?? 0,
      invoiceIds: ids(Item.invoiceIds),
      paymentIds: ids(Item.paymentIds),
      failedPaymentIds: ids(Item.failedPaymentIds),
    };
  }
}

/** Scans a table and deletes every item in batches of 25. */
export async function clearTable(
  client: DynamoDBDocumentClient,
  tableName: string,
  keyAttributes: string[],
): Promise<number> {
  let deleted = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ProjectionExpression: keyAttributes.map((_, i) => `#k${i}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(keyAttributes.map((name, i) => [`#k${i}`, name])),
        ExclusiveStartKey: startKey,
        ConsistentRead: true,
      }),
    );
    const keys = page.Items ?? [];
    for (let i = 0; i < keys.length; i += 25) {
      let requests: unknown[] | undefined = keys
        .slice(i, i + 25)
        .map((key) => ({ DeleteRequest: { Key: key } }));
      while (requests && requests.length > 0) {
        const result: BatchWriteCommandOutput = await client.send(
          new BatchWriteCommand({ RequestItems: { [tableName]: requests as never } }),
        );
        requests = result.UnprocessedItems?.[tableName];
      }
    }
    deleted += keys.length;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}
