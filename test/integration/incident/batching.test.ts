import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DynamoDbExplanationRecords,
  DynamoDbReviewTasks,
} from '../../../functions/incident-explanation/dynamodb-stores';
import type { Incident } from '../../../functions/incident-explanation/incident';
import {
  type ConsumedEvent,
  createIncidentBatchProcessor,
} from '../../../functions/incident-explanation/incident-batch';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { batchSizeOf, type Consumer, consumers } from '../../../local/consumers';
import { countRequests, createTable, localDynamoDb } from '../../support/dynamodb';
import { CountingExplainer, InMemoryGenAiEventPublisher, sampleIncident } from '../../unit/incident/fakes';

/*
 * incident-explanation's batching against dynalite: DynamoDB requests per record, counted on the SDK client
 * (not timed), first delivery and redelivery, and produce calls per batch.
 */
let dynamo: Awaited<ReturnType<typeof localDynamoDb>>;
let documents: DynamoDBDocumentClient;
let requests: ReturnType<typeof countRequests>;

beforeAll(async () => {
  dynamo = await localDynamoDb();
  const client = new DynamoDBClient({
    endpoint: dynamo.env.AWS_ENDPOINT_URL_DYNAMODB,
    region: dynamo.env.AWS_REGION,
    credentials: {
      accessKeyId: dynamo.env.AWS_ACCESS_KEY_ID as string,
      secretAccessKey: dynamo.env.AWS_SECRET_ACCESS_KEY as string,
    },
  });
  documents = DynamoDBDocumentClient.from(client, { marshallOptions: { removeUndefinedValues: true } });
  requests = countRequests(documents);
});
afterAll(async () => {
  documents?.destroy();
  await dynamo?.stop();
});

/** incident-explanation's batch size on incident.detected in the consumers map: what that ESM hands it at most. */
const DEPLOYED_BATCH_SIZE = batchSizeOf(consumers['incident-explanation'] as Consumer, 'incident.detected');
/** Its batch size on genai.hitl.resolved: resolutions never ask the model, so theirs is larger. */
const RESOLUTIONS_BATCH_SIZE = batchSizeOf(
  consumers['incident-explanation'] as Consumer,
  'genai.hitl.resolved',
);

const severities: Incident['severity'][] = ['LOW', 'MEDIUM', 'HIGH', 'CRITICAL'];

/** A processor on fresh tables, the rules explainer counted, and a batch of `size` incidents of one partition. */
async function incidentBatch(size: number) {
  const incidentsTable = await createTable(dynamo.client, 'IncidentsTable');
  const idempotencyTable = await createTable(dynamo.client, 'IncidentIdempotencyTable');
  const explainer = new CountingExplainer(new RulesIncidentExplainer());
  const publisher = new InMemoryGenAiEventPublisher();
  const reviews = new DynamoDbReviewTasks(documents, incidentsTable);
  const processor = createIncidentBatchProcessor({
    explainer,
    reviews,
    records: new DynamoDbExplanationRecords(documents, incidentsTable, idempotencyTable),
    publisher,
  });
  const run = Date.now().toString(36);
  const batch: ConsumedEvent[] = Array.from({ length: size }, (_, i) => ({
    topic: 'incident.detected',
    position: { partition: 0, offset: i },
    id: `ce-${run}-${i}`,
    time: '2026-12-06T10:00:00.000Z',
    data: sampleIncident({ incidentId: `${run}-inc-${i}`, severity: severities[i % 4] }),
  }));
  return { explainer, publisher, reviews, processor, run, batch };
}

describe('incident-explanation batches on the DynamoDB stand-in', () => {
  it('100 incidents, half of them reviewed: at most 0.10 DynamoDB requests per record first delivery (one read and one write request per table and 100 or 25), whatever the reviews, 0.02 redelivered; one produce per batch', async () => {
    const { explainer, publisher, reviews, processor, run, batch } = await incidentBatch(100);

    const before = requests.count;
    requests.byCommand.clear();
    const first = await processor.process(batch);
    expect(first.filter((r) => !r.ok)).toEqual([]);
    const firstRequests = requests.count - before;
    const reviewed = first.filter((r) => r.ok && r.value.kind === 'explained' && r.value.reviewOpened).length;
    // HIGH and CRITICAL, and the rules' low-confidence answers among the others.
    expect(reviewed).toBeGreaterThanOrEqual(50);
    // 1 BatchGetItem of the views (with their outcomes) and 1 of the review items; 4 BatchWriteItem of views with
    // their outcomes and 1 per 25 reviews opened. No request per review, none to the legacy table (no view there
    // lacks its outcome).
    expect(Object.fromEntries(requests.byCommand)).toEqual({
      BatchGetItemCommand: 2,
      BatchWriteItemCommand: 4 + Math.ceil(reviewed / 25),
    });
    expect(firstRequests / 100).toBeLessThanOrEqual(0.1);
    expect(publisher.calls).toBe(1);
    expect(explainer.calls).toBe(100);
    expect((await reviews.get(`${run}-inc-3`))?.status).toBe('OPEN');

    const again = requests.count;
    const redelivered = await processor.process(batch);
    expect(redelivered.every((r) => r.ok && r.value.kind === 'explained' && r.value.replayed)).toBe(true);
    // The views with their outcomes and the review items, read together (the reviews for nothing, on a redelivery).
    expect((requests.count - again) / 100).toBe(0.02);
    expect(publisher.calls).toBe(2);
    expect(explainer.calls).toBe(100);
    expect(publisher.published.slice(publisher.published.length / 2)).toEqual(
      publisher.published.slice(0, publisher.published.length / 2),
    );
    console.log(
      `100 incidents (${reviewed} reviews): ${firstRequests / 100} DynamoDB requests per record first delivery, ` +
        `${(requests.count - again) / 100} redelivered; 1 produce per batch`,
    );
  });

  it('a batch of 10, reviews included (n + r <= 25): its reads share one BatchGetItem and its writes, views and reviews, one BatchWriteItem', async () => {
    const { publisher, processor, batch } = await incidentBatch(10);
    requests.byCommand.clear();
    const first = await processor.process(batch);
    expect(first.filter((r) => !r.ok)).toEqual([]);
    expect(first.some((r) => r.ok && r.value.kind === 'explained' && r.value.reviewOpened)).toBe(true);
    expect(Object.fromEntries(requests.byCommand)).toEqual({
      BatchGetItemCommand: 1,
      BatchWriteItemCommand: 1,
    });
    expect(publisher.calls).toBe(1);
  });

  it(`a batch of the deployed size (${DEPLOYED_BATCH_SIZE}), reviews included: its reads share BatchGetItems (100 keys each) and its writes BatchWriteItems (25 items each), one produce; redelivered: the read only`, async () => {
    const { publisher, processor, batch } = await incidentBatch(DEPLOYED_BATCH_SIZE);
    requests.byCommand.clear();
    const first = await processor.process(batch);
    expect(first.filter((r) => !r.ok)).toEqual([]);
    const opened = first.filter((r) => r.ok && r.value.kind === 'explained' && r.value.reviewOpened).length;
    expect(opened).toBeGreaterThan(0);
    // Each incident's view and review read in one round; each view (with its outcome) and each review opened
    // written in one round: requests per batch, not per record.
    expect(Object.fromEntries(requests.byCommand)).toEqual({
      BatchGetItemCommand: Math.ceil((2 * DEPLOYED_BATCH_SIZE) / 100),
      BatchWriteItemCommand: Math.ceil((DEPLOYED_BATCH_SIZE + opened) / 25),
    });
    expect(publisher.calls).toBe(1);

    requests.byCommand.clear();
    const redelivered = await processor.process(batch);
    expect(redelivered.every((r) => r.ok && r.value.kind === 'explained' && r.value.replayed)).toBe(true);
    expect(Object.fromEntries(requests.byCommand)).toEqual({
      BatchGetItemCommand: Math.ceil((2 * DEPLOYED_BATCH_SIZE) / 100),
    });
  });

  it(`the resolutions of a batch of the deployed size (${RESOLUTIONS_BATCH_SIZE}): one read round (BatchGetItems of 100 keys), the decisions kept and the missing reviews created by PartiQL INSERTs 25 a request, 1 BatchWriteItem per 25 tasks closed; redelivered: the read only`, async () => {
    const n = RESOLUTIONS_BATCH_SIZE;
    const { processor, reviews, run, batch } = await incidentBatch(n);
    const explained = await processor.process(batch);
    const opened = explained.filter(
      (r) => r.ok && r.value.kind === 'explained' && r.value.reviewOpened,
    ).length;
    const resolutions: ConsumedEvent[] = batch.map((event, i) => ({
      topic: 'genai.hitl.resolved',
      position: { partition: 0, offset: i },
      id: `ce-${run}-resolved-${i}`,
      time: '2026-12-06T10:05:00.000Z',
      data: {
        reviewId: `r-${i}`,
        incidentId: (event.data as { incidentId: string }).incidentId,
        decision: 'CONFIRMED',
        reviewer: 'ana',
      },
    }));

    requests.byCommand.clear();
    const before = requests.count;
    const first = await processor.process(resolutions);
    expect(first.map((r) => r.ok && r.value.kind === 'review-resolved' && r.value.outcome)).toEqual(
      Array(n).fill('RESOLVED'),
    );
    // The tasks and the kept decisions of n incidents: 2n keys. n decisions kept, and a review created for the
    // incidents without one (conditional: BatchExecuteStatement INSERTs), the others' closed (batched puts).
    expect(Object.fromEntries(requests.byCommand)).toEqual({
      BatchGetItemCommand: Math.ceil((2 * n) / 100),
      BatchExecuteStatementCommand: Math.ceil(n / 25) + Math.ceil((n - opened) / 25),
      BatchWriteItemCommand: Math.ceil(opened / 25),
    });
    expect((await reviews.get(`${run}-inc-3`))?.status).toBe('RESOLVED');
    console.log(
      `${n} resolutions (${opened} reviews open): ${(requests.count - before) / n} DynamoDB requests per record first delivery`,
    );

    requests.byCommand.clear();
    const redelivered = await processor.process(resolutions);
    expect(redelivered.every((r) => r.ok && r.value.kind === 'review-resolved')).toBe(true);
    expect(Object.fromEntries(requests.byCommand)).toEqual({ BatchGetItemCommand: Math.ceil((2 * n) / 100) });
  });
});
