import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OutboxChannel } from '../../../functions/notifications/outbox-channel';
import type { NotificationMessage } from '../../../functions/notifications/ports';
import { outboxPanel } from '../../../local/outbox-panel';
import { createTable, localDynamoDb } from '../../support/dynamodb';

let dynamo: { client: DynamoDBClient; documents: DynamoDBDocumentClient; stop: () => Promise<void> };
beforeAll(async () => {
  dynamo = await localDynamoDb();
});
afterAll(async () => dynamo?.stop());

const T0 = Date.parse('2026-11-23T10:00:00Z');

function message(n: number): NotificationMessage {
  return {
    notificationId: `n-${n}`,
    eventSource: 'test/outbox-panel',
    eventId: `evt-${n}`,
    eventType: 'booking.created',
    recipient: { kind: 'CUSTOMER', id: `cust-${n}` },
    channel: 'PUSH',
    template: 'booking-confirmed-customer',
    subject: `Booking ${n} confirmed`,
    body: `Your booking ${n} is confirmed.`,
  };
}

describe('the outbox panel of `dev`', () => {
  it('shows the latest outbox messages, newest first, with the total', async () => {
    const table = await createTable(dynamo.client, 'NotificationsTable');
    const errors: string[] = [];
    const panel = outboxPanel(dynamo.documents, { NOTIFICATIONS_TABLE: table }, (e) => errors.push(e));
    if (!panel) throw new Error('expected an outbox panel for the default (outbox) channel');

    await panel.refresh();
    expect(panel.render()).toBe('outbox: 0 messages');

    // Sent out of id order, one minute apart: the panel orders by delivery time, not by key.
    const order = [3, 1, 9, 4, 7, 2, 8, 5, 6, 10];
    for (const [i, n] of order.entries()) {
      await new OutboxChannel(dynamo.documents, table, () => T0 + i * 60_000).send([message(n)]);
    }
    // A repeated delivery is deduplicated by the outbox: still ten messages.
    await new OutboxChannel(dynamo.documents, table, () => T0 + 99 * 60_000).send([message(3)]);

    await panel.refresh();
    const lines = panel.render().split('\n');
    expect(lines[0]).toBe('outbox: 10 messages, latest 8');
    expect(lines[1]).toMatch(/^delivered\s+channel\s+recipient\s+event\s+subject$/);
    expect(lines.slice(2).map((line) => line.match(/Booking (\d+) confirmed/)?.[1])).toEqual(
      [10, 6, 5, 8, 2, 7, 4, 9].map(String),
    );
    expect(lines[2]).toMatch(/^2026-11-23T10:09:00.000Z\s+PUSH\s+CUSTOMER cust-10\s+booking.created\s+/);
    expect(errors).toEqual([]);
  });

  it('is absent when notifications send through SNS/SES, and reports a missing table by name', async () => {
    const documents = dynamo.documents;
    expect(outboxPanel(documents, { NOTIFICATIONS_TABLE: 't', CHANNEL: 'aws' }, () => {})).toBeUndefined();
    expect(outboxPanel(documents, { NOTIFICATIONS_TABLE: 't', ONCALL_TOPIC_ARN: 'arn:x' }, () => {})).toBe(
      undefined,
    );

    const errors: string[] = [];
    const panel = outboxPanel(documents, { NOTIFICATIONS_TABLE: 'no-such-table' }, (e) => errors.push(e));
    expect(panel?.render()).toBe('outbox: reading no-such-table...');
    await panel?.refresh();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^outbox \(no-such-table\): /);
  });
});
