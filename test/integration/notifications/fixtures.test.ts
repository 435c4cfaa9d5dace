import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listOutbox } from '../../../functions/notifications/outbox-channel';
import type { KafkaBatchResponse, KafkaEvent } from '../../../shared/msk';
import { createTable, localDynamoDb } from '../../support/dynamodb';
import { lambdaContext } from '../../support/lambda-context';
import { loadEvent } from '../../support/load-event';

/**
 * The sample events of the two functions that run notifications' code (events/notifications, events/oncall-paging)
 * through the handler with the local outbox channel: the log and the outbox are one table, as deployed.
 */
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
  // Any channel variable would make it send through AWS.
  for (const name of ['CHANNEL', 'ONCALL_TOPIC_ARN', 'CUSTOMER_TOPIC_ARN', 'EMAIL_FROM', 'REVIEWERS_EMAIL'])
    delete process.env[name];
  ({ handler } = await import('../../../functions/notifications/handler'));
});
afterAll(async () => dynamo?.stop());

// In the order of their offsets on each topic-partition, as an ESM delivers them: a batch behind the kept lease
// of higher offsets would wait for it to lapse (30 s). poison.json's genai.hitl.requested-4 (400-401) comes
// before genai-hitl-requested.json's (500-502).
const fixtures = [
  ...['poison.json', 'genai-hitl-requested.json', 'payment-failed.json', 'booking-created.json'].map(
    (file) => `notifications/${file}`,
  ),
  ...['incident-detected.json', 'poison.json'].map((file) => `oncall-paging/${file}`),
  ...['multi-partition.json', 'tombstone.json'].flatMap((file) => [
    `notifications/${file}`,
    `oncall-paging/${file}`,
  ]),
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
      const event = loadEvent(fixture);
      const response = await handler(event, lambdaContext(fixture.split('/')[0] as string));
      expectTails(event, response);
      responses.set(fixture, response);
    }
    for (const fixture of fixtures.filter((name) => !name.endsWith('/poison.json'))) {
      expect(responses.get(fixture)?.batchItemFailures, fixture).toEqual([]);
    }
    // The undecodable record (offset 901) and its successor; the other partition is notified.
    expect(responses.get('oncall-paging/poison.json')?.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'incident.detected-2', offset: 901 } },
      { itemIdentifier: { partition: 'incident.detected-2', offset: 902 } },
    ]);
    expect(responses.get('notifications/poison.json')?.batchItemFailures).toEqual([
      { itemIdentifier: { partition: 'genai.hitl.requested-2', offset: 901 } },
      { itemIdentifier: { partition: 'genai.hitl.requested-2', offset: 902 } },
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
      await handler(loadEvent(fixture), lambdaContext(fixture.split('/')[0] as string));
    }
    expect(await listOutbox(dynamo.documents, table)).toHaveLength(outbox.length);
  });
});
