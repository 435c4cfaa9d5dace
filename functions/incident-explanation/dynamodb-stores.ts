import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { batchGetAll, batchPutAll, isConditionalCheckFailure } from '../../shared/dynamodb';
import {
  DEFAULT_KEY_PREFIX,
  explanationKey,
  legacyOutcomeOf,
  outcomeAttributes,
  storedOutcomeOf,
} from './explanation-records';
import type {
  CompletedExplanation,
  ExplanationRecords,
  IncidentView,
  IncidentViewStore,
  OpenReviews,
  ResolveOutcome,
  ReviewResolution,
  ReviewTask,
  ReviewTasks,
  StoredExplanation,
} from './ports';
import { reviewToOpen } from './review-policy';

// IncidentsTable layout: pk INCIDENT#<incidentId>, sk VIEW (the explanation, with the outcome it came from:
// explanation-records.ts) | REVIEW (the human review). An open review also carries reviewQueue = OPEN, the key of
// the sparse index OpenReviews (serverless.yml).
const OPEN_REVIEWS_INDEX = 'OpenReviews';
const OPEN = 'OPEN';
const incidentKey = (incidentId: string, sk: 'VIEW' | 'REVIEW') => ({ pk: `INCIDENT#${incidentId}`, sk });
/** Batch requests of one call in flight at once (100 keys or 25 items each: a 6-partition batch writes 24 of views). */
const BATCH_REQUESTS_IN_FLIGHT = 8;

/** Reads a view (`review show`, tests); the batch writes them with their outcomes (DynamoDbExplanationRecords). */
export class DynamoDbIncidentViewStore implements IncidentViewStore {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  async get(incidentId: string): Promise<IncidentView | undefined> {
    const { Item } = await this.client.send(
      new GetCommand({
        TableName: this.tableName,
        Key: incidentKey(incidentId, 'VIEW'),
        ConsistentRead: true,
      }),
    );
    if (!Item) return undefined;
    const { pk: _pk, sk: _sk, outcome: _outcome, validation: _validation, ...view } = Item;
    return view as IncidentView;
  }
}

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
   * Batched unconditional puts of the tasks `found` (the batch's consistent read, findAll) does not hold: OPEN, in
   * the OpenReviews index. A review that exists, open or resolved, is never written as OPEN again, so a review is
   * opened in O(1) requests per batch instead of a conditional write each. Why no condition is needed, and the one
   * race it leaves (a resolution landing between the read and this write): README, "Reviews".
   */
  async openAll(tasks: readonly ReviewTask[], found: ReadonlyMap<string, ReviewTask>): Promise<void> {
    const items: Record<string, unknown>[] = [];
    for (const task of tasks) {
      const open = reviewToOpen(task, found.get(task.incidentId));
      if (!open) continue;
      items.push({
        ...incidentKey(task.incidentId, 'REVIEW'),
        ...open,
        ...(open.status === OPEN ? { reviewQueue: OPEN } : {}),
      });
    }
    await batchPutAll(this.client, this.tableName, items, BATCH_REQUESTS_IN_FLIGHT);
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
    private readonly options: { legacyTable?: string; keyPrefix?: string; now?: () => number } = {},
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
    if (legacy.length > 0 && this.options.legacyTable) {
      for (const [incidentId, stored] of await this.findLegacy(this.options.legacyTable, legacy))
        found.set(incidentId, stored);
    }
    return found;
  }

  /** A second round, only for views an earlier release wrote (its outcome, if stored, is there). */
  private async findLegacy(
    table: string,
    incidentIds: readonly string[],
  ): Promise<Map<string, StoredExplanation>> {
    const prefix = this.options.keyPrefix ?? DEFAULT_KEY_PREFIX;
    const byKey = new Map(incidentIds.map((incidentId) => [explanationKey(incidentId, prefix), incidentId]));
    const items = await batchGetAll(
      this.client,
      table,
      [...byKey.keys()].map((id) => ({ id })),
      BATCH_REQUESTS_IN_FLIGHT,
    );
    const now = (this.options.now ?? Date.now)();
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
    await batchPutAll(
      this.client,
      this.tableName,
      explanations.map((explanation) => ({
        ...incidentKey(explanation.outcome.incidentId, 'VIEW'),
        ...explanation.outcome.view,
        ...outcomeAttributes(explanation),
      })),
      BATCH_REQUESTS_IN_FLIGHT,
    );
  }
}
