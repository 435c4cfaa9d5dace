// The Kafka client needs Promise.withResolvers (Node 22); local Node is 20.
import '../../../shared/kafka/node20-polyfills';
import { Admin } from '@platformatic/kafka';
import type { Context } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KafkaBatchResponse, KafkaEvent } from '../../../shared/msk';
import { createTable, incidentView, localDynamoDb } from '../../support/dynamodb';
import { kafkaBrokers } from '../../support/kafka';
import { lambdaContext } from '../../support/lambda-context';
import { loadEvent } from '../../support/load-event';

/**
 * The sample events of events/incident-explanation through the handler as it runs locally: the rules
 * explainer (no BEDROCK_MODEL_ID), dynalite, and a real broker for the genai.* events (KAFKA_BROKERS).
 */
let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
let handler: (event: KafkaEvent, context: Context) => Promise<KafkaBatchResponse>;

const fixtures = [
  'incident-detected.json',
  'multi-partition.json',
  'tombstone.json',
  'poison.json',
  'genai-hitl-resolved.json',
];

describe('incident-explanation handler on the sample events (rules explainer)', () => {
  beforeAll(async () => {
    const admin = new Admin({
      clientId: 'incident-fixtures',
      bootstrapBrokers: kafkaBrokers(),
    });
    try {
      const topics = ['genai.request', 'genai.response', 'genai.hitl.requested'];
      const existing = new Set(await admin.listTopics());
      const missing = topics.filter((topic) => !existing.has(topic));
      if (missing.length > 0) await admin.createTopics({ topics: missing, partitions: 1, replicas: 1 });
    } finally {
      await admin.close();
    }
    dynamo = await localDynamoDb();
    Object.assign(process.env, {
      ...dynamo.env,
      INCIDENTS_TABLE: await createTable(dynamo.client, 'IncidentsTable'),
      IDEMPOTENCY_TABLE: await createTable(dynamo.client, 'IncidentIdempotencyTable'),
      POWERTOOLS_LOG_LEVEL: 'CRITICAL',
      POWERTOOLS_METRICS_DISABLED: 'true',
    });
    delete process.env.BEDROCK_MODEL_ID;
    delete process.env.EXPLAINER;
    ({ handler } = await import('../../../functions/incident-explanation/handler'));
  }, 60_000);
  afterAll(async () => dynamo?.stop());

  it('explains every sample incident with the rules, labelled RULES_FALLBACK; only the poison record fails', async () => {
    for (const fixture of fixtures) {
      const event = loadEvent(`incident-explanation/${fixture}`);
      const response = await handler(event, lambdaContext('incident-explanation'));
      if (fixture === 'poison.json') {
        // The undecodable record (offset 901) and its successor; the other partition is explained.
        expect(response.batchItemFailures).toEqual([
          { itemIdentifier: { partition: 'incident.detected-2', offset: 901 } },
          { itemIdentifier: { partition: 'incident.detected-2', offset: 902 } },
        ]);
      } else {
        expect(response.batchItemFailures, fixture).toEqual([]);
      }
    }
    const event = loadEvent('incident-explanation/incident-detected.json');
    const keys = Object.values(event.records).flatMap((records) => records.map((r) => r.key as string));
    expect(keys.length).toBeGreaterThan(1);
    for (const key of keys) {
      const incidentId = Buffer.from(key, 'base64').toString('utf8');
      expect(
        await incidentView(dynamo.documents, process.env.INCIDENTS_TABLE as string, incidentId),
        incidentId,
      ).toMatchObject({
        explainer: 'RULES_FALLBACK',
        modelId: 'rules/incident-explainer-v1',
      });
    }
  }, 60_000);
});
