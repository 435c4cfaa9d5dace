import { type DynamoDBDocumentClient, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
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
// explanation-records.ts) | REVIEW (the human review task) | RESOLUTION (the first decision on it, written once, by
// `resolve` only). An open review also carries reviewQueue = OPEN, the key of the sparse index OpenReviews
// (serverless.yml).
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
 * OPEN again. The decision is therefore also kept in an item of its own, RESOLUTION, which only `resolve` writes,
 * once (the first decision): what `get` and `listOpen` return is the task with that decision on it, whatever the
 * task item says. README, "Reviews".
 */
export class DynamoDbReviewTasks implements ReviewTasks, OpenReviews {
  constructor(
    private readonly client: DynamoDBDocumentClient,
    private readonly tableName: string,
  ) {}

  /** One consistent BatchGetItem per 100 incidents: the task items (a decision always comes with one). */
  async findAll(incidentIds: readonly string[]): Promise<Map<string, ReviewTask>> {
    if (incidentIds.length === 0) return new Map();
    const items = await batchGetAll(
      this.client,
      this.tableName,
      incidentIds.map((incidentId) => incidentKey(incidentId, 'REVIEW')),
      BATCH_REQUESTS_IN_FLIGHT,
    );
    return new Map(items.map((item) => [incidentIdOf(item), toReviewTask(item)]));
  }

  /**
   * Batched unconditional puts (25 a request), instead of a conditional write each: the batch writes only what its
   * consistent read did not find (reviewToOpen). A resolution landing between that read and this write is
   * overwritten here and kept in its RESOLUTION item (README, "Reviews").
   */
  async saveAll(tasks: readonly ReviewTask[]): Promise<void> {
    await batchPutAll(
      this.client,
      this.tableName,
      INCIDENT_KEY,
      tasks.map((task) => ({
        ...incidentKey(task.incidentId, 'REVIEW'),
        ...task,
        ...(task.status === OPEN ? { reviewQueue: OPEN } : {}),
      })),
      BATCH_REQUESTS_IN_FLIGHT,
    );
  }

  /**
   * The task closed with the decision (conditional: OPEN or absent), then the decision kept apart (conditional:
   * none kept yet). The first decision wins either way: a task found resolved answers ALREADY_RESOLVED (and has its
   * decision kept, should a crash have come between the two writes); one found OPEN while a decision is kept (a
   * batch wrote it OPEN again after that decision) gets the kept decision back and answers ALREADY_RESOLVED too.
   */
  async resolve(resolution: ReviewResolution): Promise<ResolveOutcome> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: incidentKey(resolution.incidentId, 'REVIEW'),
          ...closeTask(resolution, { ':open': OPEN }),
          // First resolution wins; a redelivered or late second resolution changes nothing.
          ConditionExpression: 'attribute_not_exists(#status) OR #status = :open',
        }),
      );
    } catch (error) {
      if (!isConditionalCheckFailure(error)) throw error;
      const { REVIEW: task } = await this.items(resolution.incidentId, ['REVIEW']);
      if (task?.status === 'RESOLVED') await this.keepDecision(decisionOf(task));
      return 'ALREADY_RESOLVED';
    }
    if (await this.keepDecision(resolution)) return 'RESOLVED';
    const { RESOLUTION: kept } = await this.items(resolution.incidentId, ['RESOLUTION']);
    // This very decision, kept by a concurrent delivery of it that found the task closed by this one.
    if (kept && sameDecision(decisionOf(kept), resolution)) return 'RESOLVED';
    if (kept) {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: incidentKey(resolution.incidentId, 'REVIEW'),
          ...closeTask(decisionOf(kept)),
        }),
      );
    }
    return 'ALREADY_RESOLVED';
  }

  /** The review of an incident with its decision (one consistent BatchGetItem of both items). */
  async get(incidentId: string): Promise<ReviewTask | undefined> {
    const { REVIEW: task, RESOLUTION: decision } = await this.items(incidentId, ['REVIEW', 'RESOLUTION']);
    return reviewOf(task, decision);
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

  /** Keeps the decision unless one is kept already; true if this one was. */
  private async keepDecision(decision: ReviewResolution): Promise<boolean> {
    try {
      await this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: incidentKey(decision.incidentId, 'RESOLUTION'),
          ...setDecision(decision),
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return true;
    } catch (error) {
      if (isConditionalCheckFailure(error)) return false;
      throw error;
    }
  }

  private async items(
    incidentId: string,
    kinds: IncidentItem[],
  ): Promise<Partial<Record<IncidentItem, Record<string, unknown>>>> {
    const items = await batchGetAll(
      this.client,
      this.tableName,
      kinds.map((kind) => incidentKey(incidentId, kind)),
    );
    return Object.fromEntries(items.map((item) => [item.sk, item]));
  }
}

/** The fields of a decision, as SET clauses (UpdateItem writes them whether the item exists or not). */
function setDecision(decision: ReviewResolution) {
  const comment = decision.comment ? ', #comment = :comment' : '';
  return {
    UpdateExpression:
      'SET reviewId = :reviewId, incidentId = :incidentId, decision = :decision, reviewer = :reviewer, ' +
      `resolvedAt = :resolvedAt${comment}`,
    ...(decision.comment ? { ExpressionAttributeNames: { '#comment': 'comment' } } : {}),
    ExpressionAttributeValues: {
      ':reviewId': decision.reviewId,
      ':incidentId': decision.incidentId,
      ':decision': decision.decision,
      ':reviewer': decision.reviewer,
      ':resolvedAt': decision.resolvedAt,
      ...(decision.comment ? { ':comment': decision.comment } : {}),
    },
  };
}

/**
 * A task closed with a decision: RESOLVED, the decision on it, out of the open reviews' index. `values`: those a
 * condition beside it uses (DynamoDB refuses values no expression uses).
 */
function closeTask(decision: ReviewResolution, values: Record<string, string> = {}) {
  const set = setDecision(decision);
  // A decision without a comment leaves none behind (the task may carry another decision's).
  const remove = decision.comment ? 'reviewQueue' : 'reviewQueue, #comment';
  return {
    UpdateExpression: `${set.UpdateExpression.replace('SET ', 'SET #status = :resolved, ')} REMOVE ${remove}`,
    ExpressionAttributeNames: { '#status': 'status', '#comment': 'comment', ...set.ExpressionAttributeNames },
    ExpressionAttributeValues: { ...set.ExpressionAttributeValues, ':resolved': 'RESOLVED', ...values },
  };
}

function sameDecision(a: ReviewResolution, b: ReviewResolution): boolean {
  return (
    a.reviewId === b.reviewId &&
    a.decision === b.decision &&
    a.reviewer === b.reviewer &&
    a.resolvedAt === b.resolvedAt &&
    (a.comment ?? '') === (b.comment ?? '')
  );
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

/**
 * A review as its items tell it: the task, with the kept decision on it when there is one (the task item may say
 * OPEN: written again after the decision). Undefined when neither item exists.
 */
export function reviewOf(
  task: Record<string, unknown> | undefined,
  decision: Record<string, unknown> | undefined,
): ReviewTask | undefined {
  if (!decision) return task ? toReviewTask(task) : undefined;
  const { comment: _comment, ...open } = task ? toReviewTask(task) : ({} as Partial<ReviewTask>);
  return { ...open, ...decisionOf(decision), status: 'RESOLVED' } as ReviewTask;
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
