import { describe, expect, it } from 'vitest';
import type { ReviewResolution, ReviewTask } from '../../../functions/incident-explanation/ports';
import { planResolution, resolveAll } from '../../../functions/incident-explanation/resolve-review';
import { isBatchLevelError, isStoreOutage } from '../../../shared/msk/errors';
import { InMemoryReviewTasks } from './fakes';

const decision = (
  incidentId: string,
  verdict: string,
  extra: Partial<ReviewResolution> = {},
): ReviewResolution => ({
  reviewId: `r-${incidentId}`,
  incidentId,
  decision: verdict,
  reviewer: 'ana',
  resolvedAt: '2026-11-23T10:05:00.000Z',
  ...extra,
});

const openTask = (incidentId: string, extra: Partial<ReviewTask> = {}): ReviewTask => ({
  reviewId: `r-${incidentId}`,
  incidentId,
  status: 'OPEN',
  reasons: ['SEVERITY_HIGH'],
  openedAt: '2026-11-23T10:00:00.000Z',
  ...extra,
});

const outcomes = (settled: PromiseSettledResult<unknown>[]) =>
  settled.map((s) => (s.status === 'fulfilled' ? s.value : `failed ${(s.reason as Error).message}`));

describe('planResolution', () => {
  it('nothing stored: keeps the decision and creates the task closed, without reasons (its incident adds them)', () => {
    const plan = planResolution(decision('i1', 'CONFIRMED'), undefined);
    expect(plan.keep).toEqual(decision('i1', 'CONFIRMED'));
    expect(plan.create).toEqual({ ...decision('i1', 'CONFIRMED'), status: 'RESOLVED' });
    expect(plan.close).toBeUndefined();
  });

  it('an open task: keeps the decision and closes the task with it, reasons kept, no comment but the decision’s', () => {
    const plan = planResolution(decision('i1', 'CONFIRMED'), { task: openTask('i1', { comment: 'stale' }) });
    expect(plan.keep?.decision).toBe('CONFIRMED');
    expect(plan.close).toEqual({
      ...decision('i1', 'CONFIRMED'),
      status: 'RESOLVED',
      reasons: ['SEVERITY_HIGH'],
      openedAt: '2026-11-23T10:00:00.000Z',
    });
    expect(plan.create).toBeUndefined();
  });

  it('a task resolved before decisions were kept apart: its decision wins and is kept, the task is left as it is', () => {
    const earlier = decision('i1', 'CONFIRMED', { reviewer: 'bo' });
    const plan = planResolution(decision('i1', 'DISMISSED'), {
      task: { ...openTask('i1'), ...earlier, status: 'RESOLVED' },
    });
    expect(plan).toEqual({ winner: earlier, keep: earlier });
  });

  it('a decision kept and the task written OPEN again after it: the task is closed with the kept one, nothing kept', () => {
    const kept = decision('i1', 'DISMISSED');
    const plan = planResolution(decision('i1', 'CONFIRMED'), { task: openTask('i1'), kept });
    expect(plan.winner).toEqual(kept);
    expect(plan.keep).toBeUndefined();
    expect(plan.close).toMatchObject({
      status: 'RESOLVED',
      decision: 'DISMISSED',
      reasons: ['SEVERITY_HIGH'],
    });
  });

  it('a task a resolution created (no reasons yet) is not put again, whatever it says: its incident may be adding them', () => {
    const kept = decision('i1', 'DISMISSED');
    const created = { ...decision('i1', 'CONFIRMED', { reviewer: 'bo' }), status: 'RESOLVED' } as ReviewTask;
    expect(planResolution(decision('i1', 'CONFIRMED'), { task: created, kept })).toEqual({ winner: kept });
  });

  it('a decision kept and the task showing it: nothing to write', () => {
    const kept = decision('i1', 'DISMISSED', { comment: 'seen on camera' });
    expect(planResolution(kept, { task: { ...openTask('i1'), ...kept, status: 'RESOLVED' }, kept })).toEqual({
      winner: kept,
    });
  });
});

describe('resolveAll', () => {
  it('another decision kept between the read and the conditional write: that one wins, the task is closed with it', async () => {
    const reviews = new InMemoryReviewTasks();
    reviews.tasks.set('i1', openTask('i1'));
    const keep = reviews.keepDecision.bind(reviews);
    reviews.keepDecision = async (resolution) => {
      // Another reviewer's decision, kept by a concurrent invocation just before this write.
      await keep(decision('i1', 'DISMISSED', { reviewer: 'bo' }));
      return keep(resolution);
    };
    expect(outcomes(await resolveAll([decision('i1', 'CONFIRMED')], reviews))).toEqual(['ALREADY_RESOLVED']);
    expect(reviews.tasks.get('i1')).toMatchObject({
      status: 'RESOLVED',
      decision: 'DISMISSED',
      reviewer: 'bo',
    });
    expect(reviews.finds).toHaveLength(2);
  });

  it('a task opened by its incident between the read and the create: closed with the decision, its reasons kept', async () => {
    const reviews = new InMemoryReviewTasks();
    const saveIfAbsent = reviews.saveIfAbsent.bind(reviews);
    reviews.saveIfAbsent = async (task) => {
      reviews.tasks.set('i1', openTask('i1'));
      return saveIfAbsent(task);
    };
    expect(outcomes(await resolveAll([decision('i1', 'CONFIRMED')], reviews))).toEqual(['RESOLVED']);
    expect(await reviews.get('i1')).toMatchObject({
      status: 'RESOLVED',
      decision: 'CONFIRMED',
      reasons: ['SEVERITY_HIGH'],
    });
    expect(reviews.tasks.get('i1')?.status).toBe('RESOLVED');
  });

  it('two resolutions of one incident at once, each winning one conditional write: the kept decision stands, the call that kept it answers RESOLVED', async () => {
    const reviews = new InMemoryReviewTasks();
    let releaseA: () => void = () => undefined;
    const aCreates = new Promise<void>((resolve) => {
      releaseA = resolve;
    });
    const keep = reviews.keepDecision.bind(reviews);
    const saveIfAbsent = reviews.saveIfAbsent.bind(reviews);
    // A keeps its decision at once but creates the task late; B creates the task first and keeps late.
    reviews.keepDecision = async (resolution) => {
      if (resolution.reviewer === 'bo') await aCreates;
      return keep(resolution);
    };
    reviews.saveIfAbsent = async (task) => {
      if (task.reviewer === 'ana') await new Promise((r) => setTimeout(r, 5));
      const written = await saveIfAbsent(task);
      if (task.reviewer === 'ana') releaseA();
      return written;
    };
    const [a, b] = await Promise.all([
      resolveAll([decision('i1', 'CONFIRMED')], reviews),
      resolveAll([decision('i1', 'DISMISSED', { reviewer: 'bo' })], reviews),
    ]);
    expect([...outcomes(a), ...outcomes(b)]).toEqual(['RESOLVED', 'ALREADY_RESOLVED']);
    expect(reviews.kept.get('i1')?.decision).toBe('CONFIRMED');
    expect(await reviews.get('i1')).toMatchObject({
      status: 'RESOLVED',
      decision: 'CONFIRMED',
      reviewer: 'ana',
    });
  });

  it('a failed write fails its incident’s resolutions only; a failed read fails them all', async () => {
    const reviews = new InMemoryReviewTasks();
    reviews.tasks.set('closed-by-put', openTask('closed-by-put'));
    const keep = reviews.keepDecision.bind(reviews);
    reviews.keepDecision = async (resolution) => {
      if (resolution.incidentId === 'bad') throw new Error('ValidationException: item too large');
      return keep(resolution);
    };
    const batch = [
      decision('ok', 'CONFIRMED'),
      decision('bad', 'CONFIRMED'),
      decision('bad', 'DISMISSED'),
      decision('closed-by-put', 'CONFIRMED'),
    ];
    expect(outcomes(await resolveAll(batch, reviews))).toEqual([
      'RESOLVED',
      'failed ValidationException: item too large',
      'failed ValidationException: item too large',
      'RESOLVED',
    ]);

    // A task put that fails (an item DynamoDB refuses) fails its incident, not the others closed beside it.
    const failingPuts = new InMemoryReviewTasks();
    for (const id of ['closed', 'refused']) failingPuts.tasks.set(id, openTask(id));
    const saveAll = failingPuts.saveAll.bind(failingPuts);
    failingPuts.saveAll = async (tasks) => {
      if (tasks.some((task) => task.incidentId === 'refused'))
        throw new Error('ValidationException: item size');
      return saveAll(tasks);
    };
    expect(
      outcomes(
        await resolveAll(
          [decision('new', 'CONFIRMED'), decision('refused', 'X'), decision('closed', 'Y')],
          failingPuts,
        ),
      ),
    ).toEqual(['RESOLVED', 'failed ValidationException: item size', 'RESOLVED']);
    expect(failingPuts.tasks.get('closed')?.status).toBe('RESOLVED');

    const unreadable = new InMemoryReviewTasks();
    unreadable.findKept = async () => {
      throw new Error('ProvisionedThroughputExceededException');
    };
    expect(outcomes(await resolveAll([decision('a', 'X'), decision('b', 'Y')], unreadable))).toEqual([
      'failed ProvisionedThroughputExceededException',
      'failed ProvisionedThroughputExceededException',
    ]);
  });

  it('the conditional writes of a batch in one call of each kind, all at once; a redelivery only reads', async () => {
    const reviews = new InMemoryReviewTasks();
    for (let i = 0; i < 5; i++) reviews.tasks.set(`i${i}`, openTask(`i${i}`));
    const keep = reviews.keepDecision.bind(reviews);
    let inFlight = 0;
    let most = 0;
    reviews.keepDecision = async (resolution) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      return keep(resolution);
    };
    // Five incidents with a task (a keep each), five without (a keep and a create each).
    const batch = Array.from({ length: 10 }, (_, i) => decision(`i${i}`, 'CONFIRMED'));
    expect(outcomes(await resolveAll(batch, reviews))).toEqual(Array(10).fill('RESOLVED'));
    expect(reviews.conditionalCalls).toEqual([
      { kind: 'keep', items: 10 },
      { kind: 'create', items: 5 },
    ]);
    expect(most).toBe(10);
    const writes = reviews.conditional.length + reviews.saves.length;
    expect(outcomes(await resolveAll(batch, reviews))).toEqual(Array(10).fill('ALREADY_RESOLVED'));
    expect(reviews.conditional.length + reviews.saves.length).toBe(writes);
    expect(reviews.conditionalCalls).toHaveLength(2);
    expect(reviews.finds).toHaveLength(2);
  });

  it('a batched conditional write answering fewer outcomes than items: none taken for a write, batch-level', async () => {
    const reviews = new InMemoryReviewTasks();
    reviews.keepDecisions = async () => [{ status: 'fulfilled', value: true }];
    const results = await resolveAll([decision('a', 'X'), decision('b', 'Y')], reviews);
    for (const result of results) {
      expect(result.status).toBe('rejected');
      expect(isBatchLevelError((result as PromiseRejectedResult).reason)).toBe(true);
    }
  });

  it('a keep refused for a taken key whose decision the re-read does not find: the incident fails as an outage, not answered', async () => {
    const reviews = new InMemoryReviewTasks();
    reviews.tasks.set('i1', openTask('i1'));
    const keep = reviews.keepDecision.bind(reviews);
    reviews.keepDecision = async (resolution) => (resolution.incidentId === 'i1' ? false : keep(resolution));
    const results = await resolveAll([decision('i1', 'CONFIRMED'), decision('i2', 'CONFIRMED')], reviews);
    expect(results[0]?.status).toBe('rejected');
    expect(isStoreOutage((results[0] as PromiseRejectedResult).reason)).toBe(true);
    expect(outcomes(results.slice(1))).toEqual(['RESOLVED']);

    // The create's refusal likewise: no task stored, and none written by the re-read's plan.
    const creates = new InMemoryReviewTasks();
    creates.saveIfAbsent = async () => false;
    const [created] = await resolveAll([decision('i3', 'CONFIRMED')], creates);
    expect(isStoreOutage((created as PromiseRejectedResult).reason)).toBe(true);
    expect(creates.tasks.has('i3')).toBe(false);
  });

  it('a batched conditional write that fails as a whole fails the incidents it carried, not the others', async () => {
    const reviews = new InMemoryReviewTasks();
    reviews.tasks.set('has-task', openTask('has-task'));
    reviews.saveAllIfAbsent = async () => {
      throw new Error('ProvisionedThroughputExceededException');
    };
    expect(
      outcomes(
        await resolveAll([decision('has-task', 'CONFIRMED'), decision('no-task', 'DISMISSED')], reviews),
      ),
    ).toEqual(['RESOLVED', 'failed ProvisionedThroughputExceededException']);
  });
});
