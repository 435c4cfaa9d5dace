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
   * failure-then-success both end PAID.
   */
  async applyPayment(payment: PaymentRecord): Promise<ApplyPaymentResult> {
    const succeeded = payment.outcome === 'SUCCEEDED';
    const applied = await this.tryUpdate(payment, succeeded ? 'PAID' : 'PAYMENT_FAILED');
    if (applied) return { status: 'APPLIED', invoice: applied };
    const invoice = await this.get(payment.bookingId);
    if (!invoice) return { status: 'PARKED' };
    if (invoice.payments[paymentKey(payment)]) return { status: 'ALREADY_APPLIED', invoice };
    // A failure after a success: record it, keep PAID.
    const recorded = await this.tryUpdate(payment, undefined);
    if (recorded) return { status: 'APPLIED', invoice: recorded };
    const latest = await this.get(payment.bookingId);
    return latest ? { status: 'ALREADY_APPLIED', invoice: latest } : { status: 'PARKED' };
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
      values[':paid'] = 'PAID';
      conditions.push('#status <> :paid');
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
