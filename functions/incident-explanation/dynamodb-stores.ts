import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { afterRequestsAreSent, allSettledOrThrow, chunk } from '../../shared/concurrency';
import { batchGetAll, batchPutAll, isConditionalCheckFailure, WRITE_BATCH } from '../../shared/dynamodb';
import { explanationKey, legacyOutcomeOf, outcomeAttributes, storedOutcomeOf } from './explanation-records';
import type {
  CompletedExplanation,
  ExplanationRecords,
  OpenReviews,
  ResolveOutcome,
  ReviewResolution,
  ReviewTask,
  ReviewTasks,
  StoredExplanation,
} from './ports';

// IncidentsTable layout: pk INCIDENT#<incidentId>, sk VIEW (the explanation, with the outcome it came from:
// explanation-records.ts) | REVIEW (the human review). An open review also carries reviewQueue = OPEN, the key of
// the sparse index OpenReviews (serverless.yml).
const OPEN_REVIEWS_INDEX = 'OpenReviews';
const OPEN = 'OPEN';
const incidentKey = (incidentId: string, sk: 'VIEW' | 'REVIEW') => ({ pk: `INCIDENT#${incidentId}`, sk });
/** Batch requests of one call in flight at once (100 keys or 25 items each: a 6-partition batch writes 24 of views). */
const BATCH_REQUESTS_IN_FLIGHT = 8;

export class DynamoDbReviewTasks implements ReviewTasks, OpenReviews {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** One consistent BatchGetItem per 100 incidents. */
  async findAll(incidentIds: readonly string[]): Promise<Map<string, ReviewTask>> {
    if (incidentIds.length === 0) return new Map();
    const items = await batchGetAll(
      this.client,
      this.tableName,
      incidentIds.map((incidentId) => incidentKey(incidentId, 'REVIEW')),
      BATCH_REQUESTS_IN_FLIGHT,
    );
    return new Map(items.map((item) => [String(item.pk).slice('INCIDENT#'.length), toReviewTask(item)]));
  }

  /**
   * Batched unconditional puts (25 a request), instead of a conditional write each: the batch writes only what its
   * consistent read did not find (reviewToOpen). Why no condition is needed, and the one race it leaves (a
   * resolution landing between the read and this write): README, "Reviews".
   */
  async saveAll(tasks: readonly ReviewTask[]): Promise<void> {
    await batchPutAll(
      this.client,
      this.tableName,
      tasks.map((task) => ({
        ...incidentKey(task.incidentId, 'REVIEW'),
        ...task,
        ...(task.status === OPEN ? { reviewQueue: OPEN } : {}),
      })),
      BATCH_REQUESTS_IN_FLIGHT,
    );
  }

  async resolve(resolution: ReviewResolution): Promise<ResolveOutcome> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: incidentKey(resolution.incidentId, 'REVIEW'),
          UpdateExpression:
            'SET #status = :resolved, reviewId = :reviewId, incidentId = :incidentId, decision = :decision, ' +
            'reviewer = :reviewer, resolvedAt = :resolvedAt' +
            (resolution.comment ? ', #comment = :comment' : '') +
            ' REMOVE reviewQueue',
          // First resolution wins; a redelivered or late second resolution changes nothing.
          ConditionExpression: 'attribute_not_exists(#status) OR #status = :open',
          ExpressionAttributeNames: {
            '#status': 'status',
            ...(resolution.comment ? { '#comment': 'comment' } : {}),
          },
          ExpressionAttributeValues: {
            ':resolved': 'RESOLVED',
            ':open': 'OPEN',
            ':reviewId': resolution.reviewId,
            ':incidentId': resolution.incidentId,
            ':decision': resolution.decision,
            ':reviewer': resolution.reviewer,
            ':resolvedAt': resolution.resolvedAt,
            ...(resolution.comment ? { ':comment': resolution.comment } : {}),
          },
        }),
      );
      return 'RESOLVED';
    } catch (error) {
      if (isConditionalCheckFailure(error)) return 'ALREADY_RESOLVED';
      throw error;
    }
  }

  async get(incidentId: string): Promise<ReviewTask | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: incidentKey(incidentId, 'REVIEW'),
        ConsistentRead: true,
      }),
    );
    return Item ? toReviewTask(Item) : undefined;
  }

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
      tasks.push(...(page.Items ?? []).map(toReviewTask));
      from = page.LastEvaluatedKey;
    } while (from && tasks.length < limit);
    return tasks;
  }
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
    // Only what a replay needs: the view's own attributes are in the outcome.
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
