import { mapBounded } from '../../shared/concurrency';
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

/** Reads a genai.hitl.resolved event's data (reviewId, incidentId, decision, reviewer, resolvedAt). */
export function toResolution(data: unknown, eventTime: string): ReviewResolution {
  const value = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const text = (name: string): string | undefined => {
    const raw = value[name];
    if (typeof raw === 'string' && raw !== '') return raw;
    if (typeof raw === 'object' && raw !== null && typeof (raw as { string?: unknown }).string === 'string') {
      return (raw as { string: string }).string;
    }
    return undefined;
  };
  const missing = ['reviewId', 'incidentId', 'decision', 'reviewer'].filter(
    (name) => text(name) === undefined,
  );
  if (missing.length > 0) {
    throw new InvalidResolutionError(`Invalid genai.hitl.resolved data: missing ${missing.join(', ')}`);
  }
  const resolvedAtRaw = value.resolvedAt;
  const resolvedAt =
    resolvedAtRaw === undefined || resolvedAtRaw === null ? eventTime : isoInstant(resolvedAtRaw);
  if (resolvedAt === undefined) {
    throw new InvalidResolutionError(
      `Invalid genai.hitl.resolved data: resolvedAt is not a time: ${JSON.stringify(String(resolvedAtRaw))}`,
    );
  }
  const comment = text('comment');
  return {
    reviewId: text('reviewId') as string,
    incidentId: text('incidentId') as string,
    decision: text('decision') as string,
    reviewer: text('reviewer') as string,
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
  /** The decision that stands: the kept one; else the one a task resolved earlier carries; else the resolution's. */
  winner: ReviewResolution;
  /** The winner, to keep (conditional): none is kept yet. */
  keep?: ReviewResolution;
  /** The task closed with the winner, where the stored one does not show it yet (unconditional put). */
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
  else if (!sameAs(decisionOn(task), winner)) plan.close = closedTask(task, winner);
  return plan;
}

const sameAs = (a: ReviewResolution | undefined, b: ReviewResolution) =>
  a !== undefined && sameDecision(a, b);

/**
 * Resolves a batch's reviews, first decision wins, in O(1) round trips per batch:
 * 1. one consistent read of every incident's task and kept decision (a BatchGetItem per 50 incidents);
 * 2. in one round, each decision not kept yet kept (a conditional write each: the first decision wins, whoever
 *    else resolves the incident at the same time), the tasks found closed with it (batched puts, 25 a request), and
 *    a task not found created closed (conditional: its incident's batch may be opening it);
 * 3. only where step 2 lost a race (another decision kept, or the task opened meanwhile): that incident read again
 *    and its task closed with what is kept.
 * A redelivery finds its decision kept and its task closed, and writes nothing. An incident's resolutions of one
 * batch are decided by the first; the winner's first resolution is RESOLVED if this call kept it or closed the task
 * with it, every other one ALREADY_RESOLVED. A failed write fails that incident's resolutions only.
 */
export async function resolveAll(
  resolutions: readonly ReviewResolution[],
  reviews: ReviewTasks,
  concurrency: number,
): Promise<PromiseSettledResult<ResolveOutcome>[]> {
  const byIncident = new Map<string, number[]>();
  resolutions.forEach((resolution, index) => {
    const indexes = byIncident.get(resolution.incidentId);
    if (indexes) indexes.push(index);
    else byIncident.set(resolution.incidentId, [index]);
  });
  const results = new Array<PromiseSettledResult<ResolveOutcome>>(resolutions.length);
  const fail = (incidentId: string, reason: unknown) => {
    for (const index of byIncident.get(incidentId) ?? []) results[index] = { status: 'rejected', reason };
  };
  let stored: Map<string, StoredReview>;
  try {
    stored = await findStored(reviews, [...byIncident.keys()]);
  } catch (reason) {
    for (const incidentId of byIncident.keys()) fail(incidentId, reason);
    return results;
  }
  const plans = new Map(
    [...byIncident].map(([incidentId, [first]]) => [
      incidentId,
      planResolution(resolutions[first as number] as ReviewResolution, stored.get(incidentId)),
    ]),
  );

  // Step 2: the puts begun first, so that they are in flight while the conditional writes go out.
  const closes = [...plans.values()].flatMap((plan) => (plan.close ? [plan.close] : []));
  const closed = closes.length > 0 ? reviews.saveAll(closes) : Promise.resolve();
  closed.catch(() => undefined); // awaited below
  const conditional = [...plans].filter(([, plan]) => plan.keep || plan.create);
  const settled = await mapBounded(conditional, concurrency, async ([, plan]) =>
    Promise.allSettled([
      plan.keep ? reviews.keepDecision(plan.keep) : true,
      plan.create ? reviews.saveIfAbsent(plan.create) : true,
    ]),
  );
  const writesOf = new Map(conditional.map(([incidentId], i) => [incidentId, settled[i] ?? []]));
  const closeFailure = await closed.then(
    () => undefined,
    (reason: unknown) => ({ reason }),
  );
  /** Incidents whose task or decision this call wrote, and those whose conditional writes lost a race. */
  const worked = new Set<string>();
  const lost: string[] = [];
  for (const [incidentId, plan] of plans) {
    const writes: PromiseSettledResult<boolean>[] = writesOf.get(incidentId) ?? [];
    const rejected = writes.find((write): write is PromiseRejectedResult => write.status === 'rejected');
    if (rejected) fail(incidentId, rejected.reason);
    else if (plan.close && closeFailure) fail(incidentId, closeFailure.reason);
    else if (writes.some((write) => write.status === 'fulfilled' && !write.value)) lost.push(incidentId);
    else if (plan.close || writes.length > 0) worked.add(incidentId);
  }

  // Step 3: the incidents whose conditional writes lost a race, from what is stored now.
  if (lost.length > 0) {
    try {
      const now = await findStored(reviews, lost);
      const again = lost.map((incidentId) => {
        const first = resolutions[(byIncident.get(incidentId) as number[])[0] as number] as ReviewResolution;
        const plan = planResolution(first, now.get(incidentId));
        plans.set(incidentId, plan);
        return plan;
      });
      // What is kept now is kept (keep is unset); a task still missing is the incident batch's to open.
      const tasks = again.flatMap((plan) => (plan.close ? [plan.close] : []));
      if (tasks.length > 0) await reviews.saveAll(tasks);
      again.forEach((plan, i) => {
        if (plan.close) worked.add(lost[i] as string);
      });
    } catch (reason) {
      for (const incidentId of lost) fail(incidentId, reason);
    }
  }

  for (const [incidentId, indexes] of byIncident) {
    const plan = plans.get(incidentId) as ResolutionPlan;
    let answered = false;
    for (const index of indexes) {
      if (results[index]) continue;
      const mine =
        !answered &&
        worked.has(incidentId) &&
        sameDecision(resolutions[index] as ReviewResolution, plan.winner);
      if (mine) answered = true;
      results[index] = { status: 'fulfilled', value: mine ? 'RESOLVED' : 'ALREADY_RESOLVED' };
    }
  }
  return results;
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
