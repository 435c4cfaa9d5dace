import { type DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { afterRequestsAreSent, allSettledOrThrow, chunk } from '../../shared/concurrency';
import { batchGetAll, batchPutAll, insertAll, WRITE_BATCH } from '../../shared/dynamodb';
import { explanationKey, legacyOutcomeOf, outcomeAttributes, storedOutcomeOf } from './explanation-records';
import type {
  CompletedExplanation,
  ExplanationRecords,
  OpenReviews,
  ReviewResolution,
  ReviewTask,
  ReviewTasks,
  StoredExplanation,
} from './ports';
import { reviewOf } from './resolve-review';

// IncidentsTable layout: pk INCIDENT#<incidentId>, sk VIEW (the explanation, with the outcome it came from:
// explanation-records.ts) | REVIEW (the human review task) | RESOLUTION (the first decision on it, written once,
// conditionally, by keepDecisions only). An open review also carries reviewQueue = OPEN, the key of the sparse index
// OpenReviews (serverless.yml).
const OPEN_REVIEWS_INDEX = 'OpenReviews';
const OPEN = 'OPEN';
type IncidentItem = 'VIEW' | 'REVIEW' | 'RESOLUTION';
const incidentKey = (incidentId: string, sk: IncidentItem) => ({ pk: `INCIDENT#${incidentId}`, sk });
const INCIDENT_KEY = ['pk', 'sk'];
const incidentIdOf = (item: Record<string, unknown>) => String(item.pk).slice('INCIDENT#'.length);
/** Batch requests of one call in flight at once (100 keys or 25 items each: a 6-partition batch writes 24 of views). */
const BATCH_REQUESTS_IN_FLIGHT = 8;

/**
 * Review tasks and their decisions. A batch opens a review with a blind put (saveAll: no condition, so that 100
 * of them cost 4 requests, not 100), which can land after a resolution its read did not see and write the task
 * OPEN again. The decision is therefore also kept in an item of its own, RESOLUTION, written once (the first
 * decision, keepDecisions): what `get` and `listOpen` tell is the task with that decision on it, whatever
 * the task item says. README, "Reviews"; the rules are resolve-review.ts's.
 */
export class DynamoDbReviewTasks implements ReviewTasks, OpenReviews {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** One consistent BatchGetItem per 100 incidents: the task items. */
  async findAll(incidentIds: readonly string[]): Promise<Map<string, ReviewTask>> {
    const items = await this.read(incidentIds, 'REVIEW');
    return new Map(items.map((item) => [incidentIdOf(item), toReviewTask(item)]));
  }

  /** One consistent BatchGetItem per 100 incidents: the kept decisions (begun with findAll, one request). */
  async findKept(incidentIds: readonly string[]): Promise<Map<string, ReviewResolution>> {
    const items = await this.read(incidentIds, 'RESOLUTION');
    return new Map(items.map((item) => [incidentIdOf(item), decisionOf(item)]));
  }

  /**
   * Batched unconditional puts (25 a request), instead of a conditional write each: a batch writes only what its
   * consistent read did not find or found stale (reviewToOpen, planResolution). A resolution landing between that
   * read and this write is overwritten here and kept in its RESOLUTION item (README, "Reviews").
   */
  async saveAll(tasks: readonly ReviewTask[]): Promise<void> {
    await batchPutAll(
      this.client,
      this.tableName,
      INCIDENT_KEY,
      tasks.map(taskItem),
      BATCH_REQUESTS_IN_FLIGHT,
    );
  }

  /** Keeps each decision unless one is kept (a PartiQL INSERT of its RESOLUTION item each, 25 a request). */
  keepDecisions(decisions: readonly ReviewResolution[]): Promise<PromiseSettledResult<boolean>[]> {
    const items = decisions.map((decision) => ({
      ...incidentKey(decision.incidentId, 'RESOLUTION'),
      ...decision,
    }));
    return insertAll(this.client, this.tableName, items, BATCH_REQUESTS_IN_FLIGHT);
  }

  /** Writes each task unless its REVIEW item exists (a PartiQL INSERT each, 25 a request). */
  saveAllIfAbsent(tasks: readonly ReviewTask[]): Promise<PromiseSettledResult<boolean>[]> {
    return insertAll(this.client, this.tableName, tasks.map(taskItem), BATCH_REQUESTS_IN_FLIGHT);
  }

  /** The review of an incident with its decision (one consistent BatchGetItem of both items). */
  async get(incidentId: string): Promise<ReviewTask | undefined> {
    const [tasks, kept] = await Promise.all([this.findAll([incidentId]), this.findKept([incidentId])]);
    return reviewOf({ task: tasks.get(incidentId), kept: kept.get(incidentId) });
  }

  /** The open tasks, oldest first, less those whose decision is kept (a task written OPEN again after it). */
  async listOpen(limit: number): Promise<ReviewTask[]> {
    const tasks: ReviewTask[] = [];
    let from: Record<string, unknown> | undefined;
    do {
      const page = await this.client.send(
        new QueryCommand({
          TableName: this.tableName,
          IndexName: OPEN_REVIEWS_INDEX,
          KeyConditionExpression: 'reviewQueue = :open',
          ExpressionAttributeValues: { ':open': OPEN },
          Limit: limit - tasks.length,
          ...(from ? { ExclusiveStartKey: from } : {}),
        }),
      );
      const items = page.Items ?? [];
      const decided = new Set(
        (
          await batchGetAll(
            this.client,
            this.tableName,
            items.map((item) => incidentKey(incidentIdOf(item), 'RESOLUTION')),
            BATCH_REQUESTS_IN_FLIGHT,
            ['pk'],
          )
        ).map(incidentIdOf),
      );
      tasks.push(...items.filter((item) => !decided.has(incidentIdOf(item))).map(toReviewTask));
      from = page.LastEvaluatedKey;
    } while (from && tasks.length < limit);
    return tasks;
  }

  private async read(incidentIds: readonly string[], sk: IncidentItem): Promise<Record<string, unknown>[]> {
    if (incidentIds.length === 0) return [];
    return batchGetAll(
      this.client,
      this.tableName,
      incidentIds.map((incidentId) => incidentKey(incidentId, sk)),
      BATCH_REQUESTS_IN_FLIGHT,
    );
  }
}

/** A task's item: an OPEN one carries the key of the open reviews' index. */
function taskItem(task: ReviewTask): Record<string, unknown> {
  return {
    ...incidentKey(task.incidentId, 'REVIEW'),
    ...task,
    ...(task.status === OPEN ? { reviewQueue: OPEN } : {}),
  };
}

function decisionOf(item: Record<string, unknown>): ReviewResolution {
  return {
    reviewId: String(item.reviewId),
    incidentId: String(item.incidentId),
    decision: String(item.decision),
    reviewer: String(item.reviewer),
    resolvedAt: String(item.resolvedAt),
    ...(typeof item.comment === 'string' && item.comment !== '' ? { comment: item.comment } : {}),
  };
}

function toReviewTask(item: Record<string, unknown>): ReviewTask {
  const { pk: _pk, sk: _sk, reviewQueue: _queue, ...task } = item;
  return task as unknown as ReviewTask;
}

/**
 * Outcomes stored with their views (IncidentsTable, explanation-records.ts): one consistent BatchGetItem per 100
 * incidents, one BatchWriteItem per 25 outcomes with their views. Views without an outcome (written by an earlier
 * release) are looked up in the legacy table, the earlier releases' idempotency table, when one is given.
 */
export class DynamoDbExplanationRecords implements ExplanationRecords {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
    /** The earlier releases' table (IncidentIdempotencyTable), read for views stored without an outcome. */
    private readonly legacyTable: string,
  ) {}

  async find(incidentIds: readonly string[]): Promise<Map<string, StoredExplanation>> {
    const found = new Map<string, StoredExplanation>();
    if (incidentIds.length === 0) return found;
    // What a replay needs (the view's own attributes are in the outcome); the whole item when the request is
    // shared with the reviews' read, which wants theirs whole.
    const views = await batchGetAll(
      this.client,
      this.tableName,
      incidentIds.map((incidentId) => incidentKey(incidentId, 'VIEW')),
      BATCH_REQUESTS_IN_FLIGHT,
      ['pk', 'sk', 'outcome', 'validation'],
    );
    const legacy: string[] = [];
    for (const item of views) {
      const incidentId = String(item.pk).slice('INCIDENT#'.length);
      const stored = storedOutcomeOf(item, incidentId);
      if (stored) found.set(incidentId, stored);
      else legacy.push(incidentId);
    }
    if (legacy.length > 0) {
      for (const [incidentId, stored] of await this.findLegacy(legacy)) found.set(incidentId, stored);
    }
    return found;
  }

  /** A second round, only for views an earlier release wrote (its outcome, if stored, is there). */
  private async findLegacy(incidentIds: readonly string[]): Promise<Map<string, StoredExplanation>> {
    const byKey = new Map(incidentIds.map((incidentId) => [explanationKey(incidentId), incidentId]));
    const items = await batchGetAll(
      this.client,
      this.legacyTable,
      [...byKey.keys()].map((id) => ({ id })),
      BATCH_REQUESTS_IN_FLIGHT,
    );
    const now = Date.now();
    const found = new Map<string, StoredExplanation>();
    for (const item of items) {
      const incidentId = byKey.get(item.id as string);
      if (incidentId === undefined) continue;
      const stored = legacyOutcomeOf(item, incidentId, now);
      if (stored) found.set(incidentId, stored);
    }
    return found;
  }

  async complete(explanations: readonly CompletedExplanation[]): Promise<void> {
    // A request's worth at a time, each sent before the next is packed: packing (gzip) is ~0.1 ms an outcome, so
    // the store works on the first 25 while the handler packs the rest. A loop, not mapBounded: its workers would
    // queue every yield at once, all run in one check phase, and the requests would leave together after the last
    // pack (traced: the 4 outcome requests sent within 1 ms of each other instead of 3-4 ms apart).
    const sent: Promise<void>[] = [];
    let failed = false;
    for (const part of chunk(explanations, WRITE_BATCH)) {
      const slot = sent[sent.length - BATCH_REQUESTS_IN_FLIGHT];
      if (slot) await slot.catch(() => (failed = true));
      if (failed) break; // the call fails anyway: start nothing more
      const put = batchPutAll(
        this.client,
        this.tableName,
        INCIDENT_KEY,
        part.map((explanation) => ({
          ...incidentKey(explanation.outcome.incidentId, 'VIEW'),
          ...explanation.outcome.view,
          ...outcomeAttributes(explanation),
        })),
        1,
      );
      put.catch(() => undefined); // awaited below
      sent.push(put);
      await afterRequestsAreSent();
    }
    // Settled, not raced: the caller never goes on while a write of its own is still in flight.
    await allSettledOrThrow(sent);
  }
}
