import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listOutbox } from '../../../functions/notifications/outbox-channel';
import type { KafkaBatchResponse, KafkaEvent } from '../../../shared/msk';
import { createTable, localDynamoDb } from '../../support/dynamodb';
import { lambdaContext } from '../../support/lambda-context';
import { loadEvent } from '../../support/load-event';

/** The sample events of events/notifications through the handler with the local outbox channel. */
let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
let handler: (event: KafkaEvent, context: Context) => Promise<KafkaBatchResponse>;
let table: string;

beforeAll(async () => {
  dynamo = await localDynamoDb();
  table = await createTable(dynamo.client, 'NotificationsTable');
  Object.assign(process.env, {
    ...dynamo.env,
    NOTIFICATIONS_TABLE: table,
    POWERTOOLS_LOG_LEVEL: 'CRITICAL',
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
  delete process.env.CHANNEL;
  delete process.env.ONCALL_TOPIC_ARN;
  ({ handler } = await import('../../../functions/notifications/handler'));
});
afterAll(async () => dynamo?.stop());

const fixtures = [
  'incident-detected.json',
  'genai-hitl-requested.json',
  'payment-failed.json',
  'booking-created.json',
  'multi-partition.json',
  'tombstone.json',
  'poison.json',
];

/** Failures must be, per partition, a tail of that partition's offsets (the failed record + successors). */
function expectTails(event: KafkaEvent, response: KafkaBatchResponse) {
  for (const [key, records] of Object.entries(event.records)) {
    const failed = response.batchItemFailures
      .filter((failure) => failure.itemIdentifier.partition === key)
      .map((failure) => failure.itemIdentifier.offset);
    const offsets = records.map((record) => record.offset);
    expect(failed).toEqual(offsets.slice(offsets.length - failed.length));
  }
}

describe('notifications handler on the sample events (outbox channel)', () => {
  it('processes every fixture, reports the poison record with its successors, and a redelivery adds nothing', async () => {
    const responses = new Map<string, KafkaBatchResponse>();
    for (const fixture of fixtures) {
      const event = loadEvent(`notifications/${fixture}`);
      const response = await handler(event, lambdaContext('notifications'));
      expectTails(event, response);
      responses.set(fixture, response);
    }
    for (const fixture of fixtures.filter((name) => name !== 'poison.json')) {
      expect(responses.get(fixture)?.batchItemFailures, fixture).toEqual([]);
    }
    // The undecodable record (offset 901) and its successor; the other partition is notified.
    expect(responses.get('poison.json')?.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'incident.detected-2', offset: 901 } },
      { itemIdentifier: { partition: 'incident.detected-2', offset: 902 } },
    ]);

    const outbox = await listOutbox(dynamo.documents, table);
    const templates = new Set(outbox.map((entry) => entry.template));
    expect(templates).toEqual(
      new Set([
        'incident-critical-oncall',
        'hitl-review-requested',
        'payment-failed-customer',
        'booking-confirmed-customer',
      ]),
    );
    for (const entry of outbox) expect(entry.body).not.toMatch(/\{\{/);
    console.log(
      `outbox after the fixtures: ${outbox.length} messages; e.g.\n${outbox[0]?.subject}\n${outbox[0]?.body}`,
    );

    for (const fixture of fixtures) {
      await handler(loadEvent(`notifications/${fixture}`), lambdaContext('notifications'));
    }
    expect(await listOutbox(dynamo.documents, table)).toHaveLength(outbox.length);
  });
});
