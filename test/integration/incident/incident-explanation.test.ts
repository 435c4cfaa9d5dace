import { gzipSync } from 'node:zlib';
import { IdempotencyConfig, makeIdempotent } from '@aws-lambda-powertools/idempotency';
import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { incidentArtefactId } from '../../../functions/incident-explanation/deterministic-id';
import {
  DynamoDbExplanationRecords,
  DynamoDbReviewTasks,
} from '../../../functions/incident-explanation/dynamodb-stores';
import { explanationKey, payloadHash } from '../../../functions/incident-explanation/explanation-records';
import { FallbackIncidentExplainer } from '../../../functions/incident-explanation/fallback-explainer';
import { toIncident } from '../../../functions/incident-explanation/incident';
import {
  type ConsumedEvent,
  createIncidentBatchProcessor,
  type IncidentBatchProcessor,
  type ProcessedEvent,
} from '../../../functions/incident-explanation/incident-batch';
import { IdempotencyPayloadMismatchError } from '../../../functions/incident-explanation/plan-incidents';
import type { IncidentOutcome } from '../../../functions/incident-explanation/ports';
import { resolveAll } from '../../../functions/incident-explanation/resolve-review';
import { RulesIncidentExplainer } from '../../../functions/incident-explanation/rules-explainer';
import { countRequests, createTable, incidentView, localDynamoDb } from '../../support/dynamodb';
import { lambdaContext } from '../../support/lambda-context';
import {
  CountingExplainer,
  InMemoryGenAiEventPublisher,
  ScriptedModelExplainer,
} from '../../unit/incident/fakes';

let dynamo: { client: DynamoDBClient; documents: DynamoDBDocumentClient; stop: () => Promise<void> };
let incidentsTable: string;
let idempotencyTable: string;

beforeAll(async () => {
  dynamo = await localDynamoDb();
  incidentsTable = await createTable(dynamo.client, 'IncidentsTable');
  idempotencyTable = await createTable(dynamo.client, 'IncidentIdempotencyTable');
});
afterAll(async () => dynamo?.stop());

function incidentEvent(incidentId: string, severity: string, anomalyType = 'HARSH_BRAKING'): ConsumedEvent {
  return {
    topic: 'incident.detected',
    id: `ce-${incidentId}`,
    time: '2026-11-23T10:00:00.000Z',
    correlationId: `corr-${incidentId}`,
    data: {
      incidentId,
      vehicleId: 'veh-7',
      severity,
      anomalyType,
      location: { lat: 48.85, lon: 2.35 },
      telemetry: { speedKmh: 28, accelerationG: -0.8 },
      detectedAt: '2026-11-23T10:00:00.000Z',
    },
  };
}

let runId = 0;
function setUp(explainer = new CountingExplainer(new ScriptedModelExplainer({ confidence: 0.9 }))) {
  const publisher = new InMemoryGenAiEventPublisher();
  const views = { get: (incidentId: string) => incidentView(dynamo.documents, incidentsTable, incidentId) };
  const reviews = new DynamoDbReviewTasks(dynamo.documents, incidentsTable);
  const records = new DynamoDbExplanationRecords(dynamo.documents, incidentsTable, idempotencyTable);
  const batches = createIncidentBatchProcessor({ explainer, reviews, records, publisher });
  // One event as a batch of its own: its result, or its failure thrown.
  const processor = { process: (event: ConsumedEvent) => single(batches, event) };
  return { explainer, publisher, views, reviews, records, processor, batches };
}

async function single(batches: IncidentBatchProcessor, event: ConsumedEvent): Promise<ProcessedEvent> {
  const [result] = await batches.process([event]);
  if (!result?.ok) throw result?.error;
  return result.value;
}

/** A view as every earlier release wrote it before storing the outcome in the idempotency table: no outcome. */
async function legacyView(incidentId: string): Promise<void> {
  await dynamo.documents.send(
    new PutCommand({
      TableName: incidentsTable,
      Item: { pk: `INCIDENT#${incidentId}`, sk: 'VIEW', incidentId, severity: 'LOW', explainer: 'MODEL' },
    }),
  );
}

/** What Powertools' makeIdempotent (this function's design before batching) reads and writes, configured as it was. */
function powertoolsExplainOnce<T>(
  explain: (input: { incidentId: string; incident: unknown }) => Promise<T>,
  withValidation = true,
) {
  const config = new IdempotencyConfig({
    eventKeyJmesPath: 'incidentId',
    ...(withValidation ? { payloadValidationJmesPath: 'incident' } : {}),
    throwOnNoIdempotencyKey: true,
  });
  config.registerLambdaContext(lambdaContext('incident-explanation'));
  const persistenceStore = new DynamoDBPersistenceLayer({
    tableName: idempotencyTable,
    awsSdkV3Client: dynamo.client,
  });
  return {
    call: makeIdempotent(explain, { persistenceStore, config, keyPrefix: 'incident-explanation' }),
    persistenceStore,
    // What makeIdempotent does on its first call: the key prefix and payload validation.
    configure: () => persistenceStore.configure({ config, keyPrefix: 'incident-explanation' }),
  };
}

describe('incident-explanation with DynamoDB idempotency', () => {
  let prefix: string;
  beforeEach(() => {
    runId += 1;
    prefix = `run${Date.now().toString(36)}-${runId}`;
  });

  it('explains an incident once; a redelivery re-produces identical events without asking the explainer', async () => {
    const first = setUp();
    const event = incidentEvent(`${prefix}-inc-1`, 'MEDIUM');
    await first.processor.process(event);
    expect(first.explainer.calls).toBe(1);

    // A redelivery, as after a crash: a new processor (new container), same tables.
    const second = setUp();
    await second.processor.process(event);
    await second.processor.process(event);
    expect(second.explainer.calls).toBe(0);
    expect(second.publisher.published).toEqual([...first.publisher.published, ...first.publisher.published]);
    expect(first.publisher.published.map((e) => e.id)).toEqual([
      incidentArtefactId(`${prefix}-inc-1`, 'genai.request'),
      incidentArtefactId(`${prefix}-inc-1`, 'genai.response'),
    ]);
    expect(await first.views.get(`${prefix}-inc-1`)).toMatchObject({
      explainer: 'MODEL',
      severity: 'MEDIUM',
    });
  });

  it.each([
    ['LOW', 0.9, false],
    ['MEDIUM', 0.9, false],
    ['HIGH', 0.9, true],
    ['CRITICAL', 0.9, true],
    ['MEDIUM', 0.4, true],
  ] as const)('severity %s at confidence %s opens a review: %s', async (severity, confidence, opens) => {
    const { processor, reviews, publisher } = setUp(
      new CountingExplainer(new ScriptedModelExplainer({ confidence })),
    );
    const incidentId = `${prefix}-inc-${severity}-${confidence}`;
    const result = await processor.process(incidentEvent(incidentId, severity));
    expect(result).toMatchObject({ kind: 'explained', reviewOpened: opens });
    const task = await reviews.get(incidentId);
    expect(task?.status).toBe(opens ? 'OPEN' : undefined);
    expect(publisher.published.some((e) => e.topic === 'genai.hitl.requested')).toBe(opens);
  });

  it('opens a review when the model fails and labels the rules answer RULES_FALLBACK', async () => {
    const { processor, reviews, publisher, views } = setUp(
      new CountingExplainer(
        new FallbackIncidentExplainer(
          new ScriptedModelExplainer(new Error('ThrottlingException after retries')),
          new RulesIncidentExplainer(),
        ),
      ),
    );
    const incidentId = `${prefix}-inc-failed`;
    await processor.process(incidentEvent(incidentId, 'LOW'));
    expect((await reviews.get(incidentId))?.reasons).toEqual(['EXPLANATION_FAILED']);
    expect((await views.get(incidentId))?.explainer).toBe('RULES_FALLBACK');
    expect(publisher.published.find((e) => e.topic === 'genai.response')?.data).toMatchObject({
      explainer: 'RULES_FALLBACK',
      attemptedModelId: 'test.scripted-model-v1',
    });
  });

  it('closes the review on genai.hitl.resolved; a redelivered or second resolution changes nothing', async () => {
    const { processor, reviews, publisher } = setUp();
    const incidentId = `${prefix}-inc-review`;
    await processor.process(incidentEvent(incidentId, 'CRITICAL'));
    const requested = publisher.published.find((e) => e.topic === 'genai.hitl.requested');
    const reviewId = requested?.data.reviewId as string;
    const resolved: ConsumedEvent = {
      topic: 'genai.hitl.resolved',
      id: 'ce-resolved-1',
      time: '2026-11-23T10:05:00.000Z',
      data: { reviewId, incidentId, decision: 'CONFIRMED', reviewer: 'ops-lead@example.com' },
    };
    expect(await processor.process(resolved)).toMatchObject({ outcome: 'RESOLVED' });
    expect(await processor.process(resolved)).toMatchObject({ outcome: 'ALREADY_RESOLVED' });
    expect(
      await processor.process({ ...resolved, data: { ...(resolved.data as object), decision: 'REJECTED' } }),
    ).toMatchObject({ outcome: 'ALREADY_RESOLVED' });
    expect(await reviews.get(incidentId)).toMatchObject({
      status: 'RESOLVED',
      decision: 'CONFIRMED',
      reviewer: 'ops-lead@example.com',
      reasons: ['SEVERITY_CRITICAL'],
      resolvedAt: '2026-11-23T10:05:00.000Z',
    });
    // The incident redelivered after the resolution does not reopen the review.
    await processor.process(incidentEvent(incidentId, 'CRITICAL'));
    expect((await reviews.get(incidentId))?.status).toBe('RESOLVED');
  });

  it('a resolution that arrives before the review was opened is kept', async () => {
    const { processor, reviews } = setUp();
    const incidentId = `${prefix}-inc-early`;
    await processor.process({
      topic: 'genai.hitl.resolved',
      id: 'ce-early',
      time: '2026-11-23T10:05:00.000Z',
      data: { reviewId: 'r-early', incidentId, decision: 'DISMISSED', reviewer: 'ana' },
    });
    await processor.process(incidentEvent(incidentId, 'HIGH'));
    expect(await reviews.get(incidentId)).toMatchObject({
      status: 'RESOLVED',
      decision: 'DISMISSED',
      reasons: ['SEVERITY_HIGH'],
    });
    // Its reasons were added without putting it back in the open reviews.
    expect((await reviews.listOpen(1000)).map((task) => task.incidentId)).not.toContain(incidentId);
  });

  it('a resolution landing between the batch review read and its write is not lost: the first decision stands', async () => {
    const { batches, reviews } = setUp();
    const incidentId = `${prefix}-inc-race`;
    const resolution = (decision: string, id: string): ConsumedEvent => ({
      topic: 'genai.hitl.resolved',
      id,
      time: '2026-11-23T10:05:00.000Z',
      data: { reviewId: 'r-race', incidentId, decision, reviewer: 'ana' },
    });
    // The resolution is consumed (another ESM) after this batch read the reviews and before it writes them.
    const resolver = setUp();
    const findAll = reviews.findAll.bind(reviews);
    reviews.findAll = async (ids) => {
      const found = await findAll(ids);
      await resolver.processor.process(resolution('DISMISSED', 'ce-race-1'));
      return found;
    };
    await batches.process([incidentEvent(incidentId, 'HIGH')]);
    expect(await reviews.get(incidentId)).toMatchObject({
      status: 'RESOLVED',
      decision: 'DISMISSED',
      reviewer: 'ana',
    });
    expect((await reviews.listOpen(1000)).map((task) => task.incidentId)).not.toContain(incidentId);
    // A second decision (with a comment) on the task written OPEN again: refused, and the task gets the first
    // decision back, with no comment left from the second.
    const second = resolution('CONFIRMED', 'ce-race-2');
    expect(
      await resolver.processor.process({
        ...second,
        data: { ...(second.data as object), comment: 'looks fine' },
      }),
    ).toMatchObject({ outcome: 'ALREADY_RESOLVED' });
    expect(await reviews.get(incidentId)).toMatchObject({ status: 'RESOLVED', decision: 'DISMISSED' });
    const task = (
      await dynamo.documents.send(
        new GetCommand({ TableName: incidentsTable, Key: { pk: `INCIDENT#${incidentId}`, sk: 'REVIEW' } }),
      )
    ).Item;
    expect(task).toMatchObject({ status: 'RESOLVED', decision: 'DISMISSED', reasons: ['SEVERITY_HIGH'] });
    expect(task?.reviewQueue).toBeUndefined();
    expect(task?.comment).toBeUndefined();
  });

  it('a resolution whose decision a concurrent delivery of it already kept, its task still OPEN, is RESOLVED (it closes the task), not ALREADY_RESOLVED', async () => {
    const { reviews } = setUp();
    const incidentId = `${prefix}-inc-twice`;
    const decision = {
      reviewId: 'r-twice',
      incidentId,
      decision: 'CONFIRMED',
      reviewer: 'ana',
      resolvedAt: '2026-11-23T10:05:00.000Z',
    };
    // The other delivery found the task closed by this one and kept the decision before this one could.
    for (const item of [
      { sk: 'REVIEW', reviewId: 'r-twice', incidentId, status: 'OPEN', reasons: ['SEVERITY_HIGH'] },
      { sk: 'RESOLUTION', ...decision },
    ]) {
      await dynamo.documents.send(
        new PutCommand({ TableName: incidentsTable, Item: { pk: `INCIDENT#${incidentId}`, ...item } }),
      );
    }
    const resolve = async (resolution: typeof decision) => {
      const [outcome] = await resolveAll([resolution], reviews);
      return outcome?.status === 'fulfilled' ? outcome.value : outcome?.reason;
    };
    expect(await resolve(decision)).toBe('RESOLVED');
    expect(await resolve({ ...decision, decision: 'REJECTED' })).toBe('ALREADY_RESOLVED');
    expect(await reviews.get(incidentId)).toMatchObject({ status: 'RESOLVED', decision: 'CONFIRMED' });
  });

  it('keeps the decision of a review resolved before the decision was kept apart (or whose second write was lost)', async () => {
    const { processor, reviews } = setUp();
    const incidentId = `${prefix}-inc-legacy-resolved`;
    await dynamo.documents.send(
      new PutCommand({
        TableName: incidentsTable,
        Item: {
          pk: `INCIDENT#${incidentId}`,
          sk: 'REVIEW',
          reviewId: 'r-legacy',
          incidentId,
          status: 'RESOLVED',
          reasons: ['SEVERITY_HIGH'],
          decision: 'CONFIRMED',
          reviewer: 'bo',
          resolvedAt: '2026-11-23T10:00:00.000Z',
        },
      }),
    );
    // A second decision: refused, and the first one kept apart from now on.
    expect(
      await processor.process({
        topic: 'genai.hitl.resolved',
        id: 'ce-legacy-2',
        time: '2026-11-23T10:06:00.000Z',
        data: { reviewId: 'r-legacy', incidentId, decision: 'DISMISSED', reviewer: 'ana' },
      }),
    ).toMatchObject({ outcome: 'ALREADY_RESOLVED' });
    const kept = (
      await dynamo.documents.send(
        new GetCommand({
          TableName: incidentsTable,
          Key: { pk: `INCIDENT#${incidentId}`, sk: 'RESOLUTION' },
        }),
      )
    ).Item;
    expect(kept).toMatchObject({ decision: 'CONFIRMED', reviewer: 'bo' });
    expect(await reviews.get(incidentId)).toMatchObject({ status: 'RESOLVED', decision: 'CONFIRMED' });
  });

  it('opens the review of an outcome stored without it (its write failed) when two records of the incident are redelivered in one batch, once, before the events', async () => {
    const first = setUp();
    const incidentId = `${prefix}-inc-review-lost`;
    const saveAll = first.reviews.saveAll.bind(first.reviews);
    first.reviews.saveAll = async () => {
      throw new Error('the reviews write failed');
    };
    await expect(first.processor.process(incidentEvent(incidentId, 'CRITICAL'))).rejects.toThrow(
      'the reviews write failed',
    );
    first.reviews.saveAll = saveAll;
    expect((await first.records.find([incidentId])).get(incidentId)?.status).toBe('COMPLETED');
    expect(await first.reviews.get(incidentId)).toBeUndefined();

    const redelivery = setUp();
    const event = incidentEvent(incidentId, 'CRITICAL');
    const results = await redelivery.batches.process([event, { ...event, id: 'ce-again' }]);
    expect(results.map((r) => r.ok && r.value)).toMatchObject([
      { kind: 'explained', replayed: true, reviewOpened: true },
      { kind: 'explained', replayed: true, reviewOpened: false },
    ]);
    expect(redelivery.explainer.calls).toBe(0);
    expect((await redelivery.reviews.get(incidentId))?.status).toBe('OPEN');
    expect((await redelivery.reviews.listOpen(1000)).map((task) => task.incidentId)).toContain(incidentId);
    expect(redelivery.publisher.published.map((e) => e.topic)).toEqual([
      'genai.request',
      'genai.response',
      'genai.hitl.requested',
    ]);
  });

  it('a review opened by an attempt that stored no outcome, then resolved, is not reopened by the redelivery', async () => {
    // The first attempt writes the review, and fails to store its outcome with its view (as if killed there).
    const first = setUp();
    const incidentId = `${prefix}-inc-unstored`;
    const complete = first.records.complete.bind(first.records);
    first.records.complete = async () => {
      throw new Error('killed before the outcome was stored');
    };
    await expect(first.processor.process(incidentEvent(incidentId, 'CRITICAL'))).rejects.toThrow('killed');
    first.records.complete = complete;
    expect((await first.reviews.get(incidentId))?.status).toBe('OPEN');
    expect((await first.reviews.listOpen(1000)).map((task) => task.incidentId)).toContain(incidentId);

    // A reviewer decides on it (`review list` shows it), then the incident is redelivered to a new container.
    await first.processor.process({
      topic: 'genai.hitl.resolved',
      id: 'ce-unstored-resolution',
      time: '2026-11-23T10:05:00.000Z',
      data: {
        reviewId: (await first.reviews.get(incidentId))?.reviewId,
        incidentId,
        decision: 'CONFIRMED',
        reviewer: 'ana',
      },
    });
    const redelivery = setUp();
    expect(await redelivery.processor.process(incidentEvent(incidentId, 'CRITICAL'))).toMatchObject({
      kind: 'explained',
      replayed: false,
    });
    expect(redelivery.explainer.calls).toBe(1);
    // Its batch read found the resolved review: not written again, so not reopened nor back in the open list.
    expect(await redelivery.reviews.get(incidentId)).toMatchObject({
      status: 'RESOLVED',
      decision: 'CONFIRMED',
      reviewer: 'ana',
      reasons: ['SEVERITY_CRITICAL'],
    });
    expect((await redelivery.reviews.listOpen(1000)).map((task) => task.incidentId)).not.toContain(
      incidentId,
    );
  });

  it('a failing publish is retried from the stored outcome, not with a new model call', async () => {
    const explainer = new CountingExplainer(new ScriptedModelExplainer({ confidence: 0.9 }));
    const { processor, publisher } = setUp(explainer);
    const original = publisher.publish.bind(publisher);
    let failures = 1;
    publisher.publish = async (events) => {
      if (failures-- > 0) throw new Error('broker unavailable');
      return original(events);
    };
    const event = incidentEvent(`${prefix}-inc-publish`, 'LOW');
    await expect(processor.process(event)).rejects.toThrow('broker unavailable');
    await processor.process(event);
    expect(explainer.calls).toBe(1);
    expect(publisher.published.map((e) => e.topic)).toEqual(['genai.request', 'genai.response']);
  });

  it('explains an incident a killed invocation left INPROGRESS at once, stores it, and replays it afterwards', async () => {
    // The first invocation hangs inside the model call (like one killed there): it stores nothing and never
    // produces anything.
    const hung = setUp(
      new CountingExplainer({
        modelId: 'test.hung-model',
        parameters: { maxTokens: 1, temperature: 0 },
        explain: () => new Promise(() => {}),
      }),
    );
    const event = incidentEvent(`${prefix}-inc-stranded`, 'HIGH');
    void hung.processor.process(event);
    await vi.waitUntil(() => hung.explainer.calls === 1);

    // The redelivery (a new container, as after the crash) explains it instead of failing "already in progress".
    const redelivery = setUp();
    expect(await redelivery.processor.process(event)).toMatchObject({
      kind: 'explained',
      reviewOpened: true,
    });
    expect(redelivery.explainer.calls).toBe(1);
    expect(redelivery.publisher.published.map((e) => e.topic)).toEqual([
      'genai.request',
      'genai.response',
      'genai.hitl.requested',
    ]);
    expect((await redelivery.reviews.get(`${prefix}-inc-stranded`))?.status).toBe('OPEN');

    // Its outcome replaced the stale record: a later redelivery replays it without asking the model.
    const later = setUp();
    await later.processor.process(event);
    expect(later.explainer.calls).toBe(0);
    expect(later.publisher.published).toEqual(redelivery.publisher.published);
  });

  it('fails a re-detection with other data (HIGH escalated to CRITICAL) instead of replaying the old outcome', async () => {
    const first = setUp();
    const incidentId = `${prefix}-inc-escalated`;
    await first.processor.process(incidentEvent(incidentId, 'HIGH'));

    const escalated = setUp();
    const failure = escalated.processor.process({ ...incidentEvent(incidentId, 'CRITICAL'), id: 'ce-again' });
    await expect(failure).rejects.toThrow(IdempotencyPayloadMismatchError);
    await expect(failure).rejects.toThrow(
      `incident ${incidentId} was already explained from other data (severity HIGH, detected 2026-11-23T10:00:00.000Z) than this record (severity CRITICAL`,
    );
    expect(escalated.explainer.calls).toBe(0);
    expect(escalated.publisher.published).toEqual([]);

    // The original detection, redelivered, is still answered from its stored outcome.
    await escalated.processor.process(incidentEvent(incidentId, 'HIGH'));
    expect(escalated.publisher.published).toEqual(first.publisher.published);
  });

  it('replays an outcome stored before payload validation was configured (no hash to compare)', async () => {
    const incidentId = `${prefix}-inc-legacy`;
    const event = incidentEvent(incidentId, 'LOW');
    const legacy = setUp();
    // What the function stored before payload validation: its view, then its record under the same key and
    // prefix, with no payload hash.
    await legacyView(incidentId);
    const oldOutcome = await powertoolsExplainOnce(
      async (input) => ({ incidentId: input.incidentId, events: [], view: {} }),
      false,
    ).call({ incidentId, incident: toIncident(event.data) });

    expect(await legacy.processor.process(event)).toMatchObject({ kind: 'explained', events: 0 });
    expect(legacy.explainer.calls).toBe(0);
    expect(oldOutcome.events).toEqual([]);
  });

  it('stores 60 outcomes (three write requests of at most 25), every one; a refused write fails the call', async () => {
    const { records } = setUp();
    const explanations = Array.from({ length: 60 }, (_, i) => {
      const incidentId = `${prefix}-inc-many-${i}`;
      return {
        outcome: { incidentId, view: { incidentId }, events: [] } as unknown as IncidentOutcome,
        payloadHash: `h${i}`,
      };
    });
    const requests = countRequests(dynamo.documents);
    await records.complete(explanations);
    expect(Object.fromEntries(requests.byCommand)).toEqual({ BatchWriteItemCommand: 3 });
    const found = await records.find(explanations.map((e) => e.outcome.incidentId));
    expect(found.size).toBe(60);
    expect(found.get(`${prefix}-inc-many-59`)).toMatchObject({ status: 'COMPLETED', payloadHash: 'h59' });

    const nowhere = new DynamoDbExplanationRecords(
      dynamo.documents,
      `${incidentsTable}-missing`,
      idempotencyTable,
    );
    await expect(nowhere.complete(explanations)).rejects.toThrow(/non-existent table|not found/i);
  });

  it('stores the outcome packed in its view item, with the payload hash; the view reads back without them; nothing goes to the legacy table', async () => {
    const event = incidentEvent(`${prefix}-inc-packed`, 'HIGH');
    const incident = toIncident(event.data);
    const ours = setUp();
    await ours.processor.process(event);
    const { Item: item } = await dynamo.documents.send(
      new GetCommand({
        TableName: incidentsTable,
        Key: { pk: `INCIDENT#${incident.incidentId}`, sk: 'VIEW' },
        ConsistentRead: true,
      }),
    );
    expect(item).toMatchObject({ severity: 'HIGH', explainer: 'MODEL', validation: payloadHash(incident) });
    expect(item?.outcome).toBeInstanceOf(Uint8Array);
    const packed = (item as { outcome: Uint8Array }).outcome.length;
    const outcome = (await ours.records.find([incident.incidentId])).get(incident.incidentId) as {
      outcome: unknown;
    };
    expect(packed).toBeLessThan(JSON.stringify(outcome.outcome).length / 2);
    const view = await ours.views.get(incident.incidentId);
    expect(view).toMatchObject({ incidentId: incident.incidentId, severity: 'HIGH' });
    expect(view).not.toHaveProperty('outcome');
    expect(view).not.toHaveProperty('validation');
    const { Item: legacy } = await dynamo.documents.send(
      new GetCommand({ TableName: idempotencyTable, Key: { id: explanationKey(incident.incidentId) } }),
    );
    expect(legacy).toBeUndefined();
  });

  it('replays the outcomes earlier releases stored in the idempotency table (Powertools data, packed) for their views; a view with no outcome anywhere is explained', async () => {
    // Powertools' design: the view, then the record with the outcome in `data`.
    const powertools = incidentEvent(`${prefix}-inc-compat-1`, 'LOW');
    await legacyView(`${prefix}-inc-compat-1`);
    await powertoolsExplainOnce(async (input) => ({
      incidentId: input.incidentId,
      events: [],
      view: {},
    })).call({
      incidentId: `${prefix}-inc-compat-1`,
      incident: toIncident(powertools.data),
    });
    // The release before this one: the view, then the record with the outcome packed.
    const packed = incidentEvent(`${prefix}-inc-compat-2`, 'MEDIUM');
    const packedIncident = toIncident(packed.data);
    await legacyView(packedIncident.incidentId);
    const packedOutcome = { incidentId: packedIncident.incidentId, events: [], view: {} };
    await dynamo.documents.send(
      new PutCommand({
        TableName: idempotencyTable,
        Item: {
          id: explanationKey(packedIncident.incidentId),
          status: 'COMPLETED',
          expiration: Math.round(Date.now() / 1000) + 3600,
          outcome: gzipSync(JSON.stringify(packedOutcome)),
          validation: payloadHash(packedIncident),
        },
      }),
    );
    // An earlier release's view whose outcome was never stored (its write failed).
    const unstored = incidentEvent(`${prefix}-inc-compat-3`, 'LOW');
    await legacyView(`${prefix}-inc-compat-3`);

    const after = setUp();
    const results = await after.batches.process([powertools, packed, unstored]);
    expect(results.map((r) => r.ok && r.value)).toMatchObject([
      { kind: 'explained', replayed: true, events: 0 },
      { kind: 'explained', replayed: true, events: 0 },
      { kind: 'explained', replayed: false, events: 2 },
    ]);
    expect(after.explainer.calls).toBe(1);

    // The same key with other data, against a legacy record: a mismatch here too.
    await expect(
      after.processor.process({ ...incidentEvent(`${prefix}-inc-compat-1`, 'CRITICAL'), id: 'ce-other' }),
    ).rejects.toThrow(IdempotencyPayloadMismatchError);
  });

  it('fails only the records of an incident whose stored outcome cannot be read, naming the incident and the item', async () => {
    const broken = incidentEvent(`${prefix}-inc-broken`, 'LOW');
    const fine = incidentEvent(`${prefix}-inc-fine`, 'LOW');
    const first = setUp();
    await first.batches.process([broken, fine]);
    const key = { pk: `INCIDENT#${prefix}-inc-broken`, sk: 'VIEW' };
    await dynamo.documents.send(
      new UpdateCommand({
        TableName: incidentsTable,
        Key: key,
        UpdateExpression: 'SET outcome = :garbage',
        ExpressionAttributeValues: { ':garbage': new Uint8Array([1, 2, 3]) },
      }),
    );
    const again = setUp();
    const [brokenResult, fineResult] = await again.batches.process([broken, fine]);
    expect(brokenResult).toMatchObject({ ok: false });
    expect(String((brokenResult as { error: Error }).error.message)).toContain(
      `the stored outcome of incident ${prefix}-inc-broken (item ${key.pk} VIEW) cannot be read`,
    );
    expect(fineResult).toMatchObject({ ok: true, value: { kind: 'explained', replayed: true } });
    expect(again.explainer.calls).toBe(0);
  });

  it('takes over a record the Powertools design left INPROGRESS (a dead invocation) at once, with or without its view; with other data, a mismatch', async () => {
    const { persistenceStore, configure } = powertoolsExplainOnce(async () => ({}));
    configure();
    // Killed inside the model call (no view yet), and killed after writing its view: INPROGRESS until its
    // deadline, 60 s away. The second is found through its view (the legacy read).
    const beforeView = incidentEvent(`${prefix}-inc-powertools-stranded-1`, 'MEDIUM');
    const afterView = incidentEvent(`${prefix}-inc-powertools-stranded-2`, 'MEDIUM');
    await legacyView(`${prefix}-inc-powertools-stranded-2`);
    for (const event of [beforeView, afterView]) {
      const incident = toIncident(event.data);
      await persistenceStore.saveInProgress({ incidentId: incident.incidentId, incident } as never, 60_000);
    }
    // The same incident id with other data against the INPROGRESS record found through the view.
    const other = setUp();
    await expect(
      other.processor.process({
        ...incidentEvent(`${prefix}-inc-powertools-stranded-2`, 'CRITICAL'),
        id: 'ce-x',
      }),
    ).rejects.toThrow(IdempotencyPayloadMismatchError);
    expect(other.explainer.calls).toBe(0);

    const redelivery = setUp();
    for (const event of [beforeView, afterView]) {
      expect(await redelivery.processor.process(event)).toMatchObject({ kind: 'explained', replayed: false });
    }
    expect(redelivery.explainer.calls).toBe(2);
    const later = setUp();
    for (const event of [beforeView, afterView]) await later.processor.process(event);
    expect(later.explainer.calls).toBe(0);
    expect(later.publisher.published).toEqual(redelivery.publisher.published);
  });
});
