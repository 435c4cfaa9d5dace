import { BatchLevelError, ServiceUnavailableError } from '../../shared/msk/errors';
import { MAX_TEXT_BYTES, textLengthProblem } from '../../shared/msk/invalid-field';
import { isoInstant } from '../../shared/time';
import type { ResolveOutcome, ReviewResolution, ReviewTask, ReviewTasks } from './ports';

/** What is stored of one incident's review: the task item, and the decision kept apart (the first one). */
export interface StoredReview {
  task?: ReviewTask;
  kept?: ReviewResolution;
}

export class InvalidResolutionError extends Error {
  override name = 'InvalidResolutionError';
}

/**
 * A reviewer's comment is stored with the decision and on the task (DynamoDB items hold at most 400 KB): bounded
 * well below, as the ids are (MAX_TEXT_BYTES, shared/msk/invalid-field.ts), since one key DynamoDB refuses fails
 * the batch's whole read, not the one record.
 */
export const MAX_COMMENT_BYTES = 8_192;

/** Reads a genai.hitl.resolved event's data (reviewId, incidentId, decision, reviewer, resolvedAt), bounded. */
export function toResolution(data: unknown, eventTime: string): ReviewResolution {
  const value = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const problems: string[] = [];
  const text = (name: string, maxBytes = MAX_TEXT_BYTES): string | undefined => {
    const raw = value[name];
    const found =
      typeof raw === 'string'
        ? raw
        : typeof raw === 'object' && raw !== null && typeof (raw as { string?: unknown }).string === 'string'
          ? (raw as { string: string }).string
          : undefined;
    if (found === undefined || found === '') return undefined;
    const tooLong = textLengthProblem(found, maxBytes);
    if (tooLong) problems.push(`${name} ${tooLong}`);
    return found;
  };
  const fields = {
    reviewId: text('reviewId'),
    incidentId: text('incidentId'),
    decision: text('decision'),
    reviewer: text('reviewer'),
  };
  const comment = text('comment', MAX_COMMENT_BYTES);
  const missing = Object.entries(fields).flatMap(([name, found]) => (found === undefined ? [name] : []));
  if (missing.length > 0) {
    throw new InvalidResolutionError(`Invalid genai.hitl.resolved data: missing ${missing.join(', ')}`);
  }
  if (problems.length > 0) {
    throw new InvalidResolutionError(`Invalid genai.hitl.resolved data: ${problems.join('; ')}`);
  }
  const resolvedAtRaw = value.resolvedAt;
  const resolvedAt =
    resolvedAtRaw === undefined || resolvedAtRaw === null ? eventTime : isoInstant(resolvedAtRaw);
  if (resolvedAt === undefined) {
    throw new InvalidResolutionError(
      `Invalid genai.hitl.resolved data: resolvedAt is not a time: ${JSON.stringify(String(resolvedAtRaw))}`,
    );
  }
  return {
    reviewId: fields.reviewId as string,
    incidentId: fields.incidentId as string,
    decision: fields.decision as string,
    reviewer: fields.reviewer as string,
    ...(comment ? { comment } : {}),
    resolvedAt,
  };
}

export function sameDecision(a: ReviewResolution, b: ReviewResolution): boolean {
  return (
    a.reviewId === b.reviewId &&
    a.decision === b.decision &&
    a.reviewer === b.reviewer &&
    a.resolvedAt === b.resolvedAt &&
    (a.comment ?? '') === (b.comment ?? '')
  );
}

/** The decision a task item carries (a RESOLVED one), if any. */
export function decisionOn(task: ReviewTask | undefined): ReviewResolution | undefined {
  if (task?.status !== 'RESOLVED' || !task.decision || !task.reviewer || !task.resolvedAt) return undefined;
  return {
    reviewId: task.reviewId,
    incidentId: task.incidentId,
    decision: task.decision,
    reviewer: task.reviewer,
    resolvedAt: task.resolvedAt,
    ...(task.comment ? { comment: task.comment } : {}),
  };
}

/**
 * The task closed with a decision: RESOLVED, the decision's fields, and no comment but the decision's. A task not
 * stored yet has no reasons: its incident's batch adds them (review-policy.ts, reviewToOpen).
 */
export function closedTask(task: Partial<ReviewTask>, decision: ReviewResolution): ReviewTask {
  const { comment: _comment, ...open } = task;
  return { ...open, ...decision, status: 'RESOLVED' } as ReviewTask;
}

/**
 * A review as the reviewer sees it: the task, with the kept decision on it when there is one (the task item may
 * say OPEN: written again after the decision). Undefined when neither is stored.
 */
export function reviewOf(stored: StoredReview | undefined): ReviewTask | undefined {
  if (!stored?.kept) return stored?.task;
  return closedTask(stored.task ?? {}, stored.kept);
}

/** What resolving an incident's review does, given what is stored (see resolveAll). */
export interface ResolutionPlan {
  /**
   * The decision that stands: the kept one; else the one a resolved task carries (an earlier release, or a
   * resolution whose keep failed after its close); else the resolution's.
   */
  winner: ReviewResolution;
  /** The winner, to keep (conditional): none is kept yet. */
  keep?: ReviewResolution;
  /**
   * The task as read, closed with the winner, where it does not show it yet (an unconditional put). Only a task
   * with its reasons: one without (created by a resolution) may be getting them from its incident's batch right
   * now, and a put of it as read would lose them; its kept decision wins over what it says all the same.
   */
  close?: ReviewTask;
  /** The task closed with the winner, where none is stored yet (conditional: an incident batch may open it). */
  create?: ReviewTask;
}

/** The plan for one incident's review, from its first resolution of the batch and what is stored. */
export function planResolution(first: ReviewResolution, stored: StoredReview | undefined): ResolutionPlan {
  const winner = stored?.kept ?? decisionOn(stored?.task) ?? first;
  const plan: ResolutionPlan = { winner };
  if (!stored?.kept) plan.keep = winner;
  const task = stored?.task;
  if (!task) plan.create = closedTask({}, winner);
  else if (task.reasons !== undefined && !sameAs(decisionOn(task), winner))
    plan.close = closedTask(task, winner);
  return plan;
}

const sameAs = (a: ReviewResolution | undefined, b: ReviewResolution) =>
  a !== undefined && sameDecision(a, b);

/**
 * Resolves a batch's reviews, first decision wins, in a few round trips whatever the batch's size:
 * 1. one consistent read of every incident's task and kept decision (a BatchGetItem per 50 incidents);
 * 2. in one round: each decision not kept yet kept (conditional, the first decision kept wins, whoever else
 *    resolves the incident meanwhile), a task not found created closed (conditional: its incident's batch may be
 *    opening it), both in batched requests (DynamoDbReviewTasks: PartiQL INSERTs, 25 a request), and the tasks
 *    found closed (unconditional puts, sent together: one BatchWriteItem per 25); a failed item fails its
 *    incident only;
 * 3. only where a conditional write lost a race (another decision kept, or the task written meanwhile): that
 *    incident read again and its task closed with what is kept (a task step 2 closed with a decision that lost is
 *    put right here).
 * A redelivery finds its decision kept and its task closed: the read, nothing written. An incident's resolutions
 * of one batch are decided by its first; the winner's first resolution is RESOLVED if this call kept it or closed
 * the task with it (a redelivery that closes a task written OPEN again included), every other one
 * ALREADY_RESOLVED. A failed write fails that incident's resolutions only.
 */
export async function resolveAll(
  resolutions: readonly ReviewResolution[],
  reviews: ReviewTasks,
): Promise<PromiseSettledResult<ResolveOutcome>[]> {
  const byIncident = new Map<string, number[]>();
  resolutions.forEach((resolution, index) => {
    const indexes = byIncident.get(resolution.incidentId);
    if (indexes) indexes.push(index);
    else byIncident.set(resolution.incidentId, [index]);
  });
  const firstOf = (incidentId: string) =>
    resolutions[(byIncident.get(incidentId) as number[])[0] as number] as ReviewResolution;
  const results = new Array<PromiseSettledResult<ResolveOutcome>>(resolutions.length);
  const failedIncidents = new Set<string>();
  const fail = (incidentId: string, reason: unknown) => {
    failedIncidents.add(incidentId);
    for (const index of byIncident.get(incidentId) ?? []) results[index] = { status: 'rejected', reason };
  };
  /** Incidents whose decision this call kept or whose task it wrote. */
  const worked = new Set<string>();
  /** Closes one task per call, all begun in one tick: they share requests, and a bad item fails its own. */
  const closeAll = (plans: Array<[string, ResolutionPlan]>) =>
    Promise.all(
      plans.map(async ([incidentId, plan]) => {
        if (!plan.close) return;
        try {
          await reviews.saveAll([plan.close]);
          worked.add(incidentId);
        } catch (reason) {
          fail(incidentId, reason);
        }
      }),
    );

  let stored: Map<string, StoredReview>;
  try {
    stored = await findStored(reviews, [...byIncident.keys()]);
  } catch (reason) {
    for (const incidentId of byIncident.keys()) fail(incidentId, reason);
    return results;
  }
  const plans = new Map(
    [...byIncident.keys()].map((incidentId) => [
      incidentId,
      planResolution(firstOf(incidentId), stored.get(incidentId)),
    ]),
  );

  // Step 2: the puts begun first, so that they are in flight while the conditional writes go out; the keeps and
  // the creates each in batched requests of their own, all in the same round.
  const closed = closeAll([...plans]);
  const toKeep = [...plans].filter(([, plan]) => plan.keep);
  const toCreate = [...plans].filter(([, plan]) => plan.create);
  const [keeps, creates] = await Promise.all([
    settledEach(toKeep.length, () =>
      reviews.keepDecisions(toKeep.map(([, plan]) => plan.keep as ReviewResolution)),
    ),
    settledEach(toCreate.length, () =>
      reviews.saveAllIfAbsent(toCreate.map(([, plan]) => plan.create as ReviewTask)),
    ),
  ]);
  const writes = new Map<string, PromiseSettledResult<boolean>[]>();
  const collect = (planned: Array<[string, ResolutionPlan]>, settled: PromiseSettledResult<boolean>[]) =>
    planned.forEach(([incidentId], i) => {
      const write = settled[i] as PromiseSettledResult<boolean>;
      writes.set(incidentId, [...(writes.get(incidentId) ?? []), write]);
    });
  collect(toKeep, keeps);
  collect(toCreate, creates);
  const lost: string[] = [];
  for (const [incidentId, settled] of writes) {
    const rejected = settled.find((write): write is PromiseRejectedResult => write.status === 'rejected');
    if (rejected) {
      fail(incidentId, rejected.reason);
      continue;
    }
    const written = settled.map((write) => (write as PromiseFulfilledResult<boolean>).value);
    if (written.includes(true)) worked.add(incidentId);
    if (written.includes(false)) lost.push(incidentId);
  }
  await closed;

  // Step 3: the incidents whose conditional writes lost a race, from what is stored now.
  const again = lost.filter((incidentId) => !failedIncidents.has(incidentId));
  if (again.length > 0) {
    try {
      const now = await findStored(reviews, again);
      // What is kept now is kept (no keep is planned), and a task is stored (no create): a write refused for a
      // taken key whose item the consistent read does not find is not taken for done.
      const settled: string[] = [];
      for (const incidentId of again) {
        const plan = planResolution(firstOf(incidentId), now.get(incidentId));
        plans.set(incidentId, plan);
        if (plan.keep || plan.create)
          fail(
            incidentId,
            new ServiceUnavailableError(
              `incident ${incidentId}: a conditional write was refused for a taken key, but the item is not stored`,
            ),
          );
        else settled.push(incidentId);
      }
      await closeAll(settled.map((incidentId) => [incidentId, plans.get(incidentId) as ResolutionPlan]));
    } catch (reason) {
      for (const incidentId of again) fail(incidentId, reason);
    }
  }

  for (const [incidentId, indexes] of byIncident) {
    if (failedIncidents.has(incidentId)) continue;
    const { winner } = plans.get(incidentId) as ResolutionPlan;
    let answered = false;
    for (const index of indexes) {
      const mine =
        !answered && worked.has(incidentId) && sameDecision(resolutions[index] as ReviewResolution, winner);
      if (mine) answered = true;
      results[index] = { status: 'fulfilled', value: mine ? 'RESOLVED' : 'ALREADY_RESOLVED' };
    }
  }
  return results;
}

/** A batched write's outcomes, one per item: a call that fails as a whole fails each of them. */
async function settledEach(
  count: number,
  write: () => Promise<PromiseSettledResult<boolean>[]>,
): Promise<PromiseSettledResult<boolean>[]> {
  if (count === 0) return [];
  const each = (reason: unknown) =>
    Array.from({ length: count }, () => ({ status: 'rejected', reason }) as const);
  try {
    const settled = await write();
    if (settled.length === count) return settled;
    // Which outcome is whose cannot be told: none is taken for a write.
    return each(
      new BatchLevelError(`a batched conditional write answered ${settled.length} of ${count} items`),
    );
  } catch (reason) {
    return each(reason);
  }
}

/** Tasks and kept decisions, read in one tick: one BatchGetItem per 50 incidents (shared/dynamodb.ts). */
async function findStored(reviews: ReviewTasks, incidentIds: string[]): Promise<Map<string, StoredReview>> {
  const [tasks, kept] = await Promise.all([reviews.findAll(incidentIds), reviews.findKept(incidentIds)]);
  const stored = new Map<string, StoredReview>();
  for (const incidentId of incidentIds) {
    const task = tasks.get(incidentId);
    const decision = kept.get(incidentId);
    if (task || decision)
      stored.set(incidentId, { ...(task ? { task } : {}), ...(decision ? { kept: decision } : {}) });
  }
  return stored;
}
