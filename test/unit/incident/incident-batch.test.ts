import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { explainIncident } from '../../../functions/incident-explanation/explain-incident';
import type { ExplainerResult, IncidentExplainer } from '../../../functions/incident-explanation/explanation';
import {
  explanationKey,
  legacyOutcomeOf,
  outcomeAttributes,
  payloadHash,
  storedOutcomeOf,
} from '../../../functions/incident-explanation/explanation-records';
import type { Incident } from '../../../functions/incident-explanation/incident';
import {
  type ConsumedEvent,
  createIncidentBatchProcessor,
  type EventResult,
  type IncidentBatchOptions,
} from '../../../functions/incident-explanation/incident-batch';
import {
  IdempotencyPayloadMismatchError,
  planIncidents,
} from '../../../functions/incident-explanation/plan-incidents';
import type { ReviewResolution, StoredExplanation } from '../../../functions/incident-explanation/ports';
import {
  CountingExplainer,
  InMemoryExplanationRecords,
  InMemoryGenAiEventPublisher,
  InMemoryReviewTasks,
  ScriptedModelExplainer,
  sampleIncident,
} from './fakes';

const incident = (incidentId: string, severity: Incident['severity'] = 'MEDIUM') =>
  sampleIncident({ incidentId, severity });
const planned = (value: Incident) => ({ incident: value, hash: payloadHash(value) });

async function completed(value: Incident, hashed = true): Promise<StoredExplanation> {
  const outcome = await explainIncident(
    value,
    {},
    { explainer: new ScriptedModelExplainer({ confidence: 0.9 }) },
  );
  return { status: 'COMPLETED', outcome, ...(hashed ? { payloadHash: payloadHash(value) } : {}) };
}

describe('explanation records (Powertools item format)', () => {
  it('keys by the md5 of the JSON incident id under the prefix and hashes the incident whatever its key order', () => {
    expect(explanationKey('inc-1')).toBe('incident-explanation#ykziEoFqPDJQgl7jHJGKQQ==');
    const value = incident('inc-1');
    const reordered = Object.fromEntries(Object.entries(value).reverse()) as unknown as Incident;
    expect(payloadHash(reordered)).toBe(payloadHash(value));
    expect(payloadHash(incident('inc-1', 'HIGH'))).not.toBe(payloadHash(value));
  });

  it('reads back the outcome stored with a view; a view without one (an earlier release wrote it) has none', async () => {
    const stored = (await completed(incident('inc-1'))) as Extract<
      StoredExplanation,
      { status: 'COMPLETED' }
    >;
    const view = { pk: 'INCIDENT#inc-1', sk: 'VIEW', ...stored.outcome.view };
    const item = {
      ...view,
      ...outcomeAttributes({ outcome: stored.outcome, payloadHash: stored.payloadHash as string }),
    };
    expect(item.validation).toBe(stored.payloadHash);
    expect(storedOutcomeOf(item, 'inc-1')).toEqual(stored);
    expect(storedOutcomeOf(view, 'inc-1')).toBeUndefined();
    for (const broken of [
      { ...view, outcome: 'not binary' },
      { ...view, outcome: new Uint8Array([1, 2, 3]) },
      { ...view, outcome: gzipSync('{"incidentId":"inc-1"}') },
      // A few KB that would unpack to 2 MB: refused before it is inflated.
      {
        ...view,
        outcome: gzipSync(`{"incidentId":"inc-1","events":[],"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`),
      },
    ]) {
      const read = storedOutcomeOf(broken, 'inc-1');
      expect(read?.status).toBe('UNREADABLE');
      expect(String((read as { error: Error }).error.message)).toMatch(
        /^the stored outcome of incident inc-1 \(item INCIDENT#inc-1 VIEW\) cannot be read: /,
      );
    }
  });

  it('reads the legacy table: packed and Powertools outcomes, INPROGRESS, an expired record as absent; one that is not an outcome is UNREADABLE naming the incident', async () => {
    const stored = (await completed(incident('inc-2'))) as Extract<
      StoredExplanation,
      { status: 'COMPLETED' }
    >;
    const now = Date.parse('2026-12-06T10:00:00Z');
    const legacy = {
      id: explanationKey('inc-2'),
      status: 'COMPLETED',
      expiration: now / 1000 + 60,
      data: stored.outcome,
      validation: 'h',
    };
    const read = { status: 'COMPLETED', outcome: stored.outcome, payloadHash: 'h' };
    expect(legacyOutcomeOf(legacy, 'inc-2', now)).toEqual(read);
    const packed = { ...legacy, data: undefined, outcome: gzipSync(JSON.stringify(stored.outcome)) };
    expect(legacyOutcomeOf(packed, 'inc-2', now)).toEqual(read);
    expect(legacyOutcomeOf(packed, 'inc-2', now + 61_000)).toBeUndefined();
    expect(legacyOutcomeOf({ ...legacy, status: 'INPROGRESS' }, 'inc-2', now)).toEqual({
      status: 'INPROGRESS',
      payloadHash: 'h',
    });
    for (const broken of [
      { ...legacy, data: undefined },
      { ...legacy, data: { view: {} } },
      { ...legacy, data: undefined, outcome: new Uint8Array([1, 2, 3]) },
      { ...legacy, data: undefined, outcome: gzipSync('{"incidentId":"inc-2"}') },
    ]) {
      const unreadable = legacyOutcomeOf(broken, 'inc-2', now);
      expect(unreadable?.status).toBe('UNREADABLE');
      expect(String((unreadable as { error: Error }).error.message)).toMatch(
        /^the stored outcome of incident inc-2 \(item incident-explanation#.*\) cannot be read: /,
      );
    }
  });
});

describe('planIncidents', () => {
  it('explains the first record of an incident nothing is stored for; later records of the same detection get its outcome', () => {
    const a = incident('a');
    const b = incident('b');
    expect(planIncidents([planned(a), planned(b), planned(a)], new Map())).toEqual([
      { kind: 'explain' },
      { kind: 'explain' },
      { kind: 'same-as', owner: 0 },
    ]);
  });

  it('replays a stored outcome of the same detection (or of a record stored without a hash); other data is a mismatch', async () => {
    const a = incident('a', 'HIGH');
    const stored = await completed(a);
    const legacy = await completed(incident('b'), false);
    const decisions = planIncidents(
      [planned(a), planned(incident('a', 'CRITICAL')), planned(incident('b', 'LOW'))],
      new Map([
        ['a', stored],
        ['b', legacy],
      ]),
    );
    expect(decisions[0]).toEqual({ kind: 'replay', outcome: (stored as { outcome: unknown }).outcome });
    expect(decisions[1]?.kind).toBe('mismatch');
    expect(decisions[1]?.kind === 'mismatch' && decisions[1].error).toBeInstanceOf(
      IdempotencyPayloadMismatchError,
    );
    expect(decisions[1]?.kind === 'mismatch' && decisions[1].error.message).toBe(
      'incident a was already explained from other data (severity HIGH, detected 2026-11-23T10:00:00.000Z) than this ' +
        'record (severity CRITICAL, detected 2026-11-23T10:00:00.000Z); its stored outcome is not replayed for it',
    );
    expect(decisions[2]?.kind).toBe('replay');
  });

  it('takes over an INPROGRESS record of the same detection at once; other data is a mismatch', () => {
    const a = incident('a');
    const b = incident('b');
    const decisions = planIncidents(
      [planned(a), planned(incident('b', 'HIGH')), planned(a)],
      new Map<string, StoredExplanation>([
        ['a', { status: 'INPROGRESS', payloadHash: payloadHash(a) }],
        ['b', { status: 'INPROGRESS', payloadHash: payloadHash(b) }],
      ]),
    );
    expect(decisions.map((d) => d.kind)).toEqual(['explain', 'mismatch', 'same-as']);
    expect(decisions[1]?.kind === 'mismatch' && decisions[1].error.message).toMatch(
      /^incident b was already explained from other data than this record \(severity HIGH/,
    );
  });

  it('a re-detection with other data later in the same batch is a mismatch with the first, in offset order', () => {
    const decisions = planIncidents(
      [planned(incident('a', 'HIGH')), planned(incident('a', 'CRITICAL'))],
      new Map(),
    );
    expect(decisions[0]).toEqual({ kind: 'explain' });
    expect(decisions[1]?.kind === 'mismatch' && decisions[1].error.message).toMatch(
      /^incident a was already explained from other data \(severity HIGH, .*\(severity CRITICAL/,
    );
  });
});

/** An explainer whose calls wait until released, counting how many are in flight (per partition via the incident id). */
class GatedExplainer implements IncidentExplainer {
  readonly modelId = 'test.gated';
  readonly parameters = { maxTokens: 1, temperature: 0 };
  inFlight = new Map<string, number>();
  most = new Map<string, number>();
  calls = 0;
  async explain(value: Incident): Promise<ExplainerResult> {
    const partition = value.incidentId.split('-')[0] as string;
    this.calls++;
    this.inFlight.set(partition, (this.inFlight.get(partition) ?? 0) + 1);
    this.most.set(partition, Math.max(this.most.get(partition) ?? 0, this.inFlight.get(partition) ?? 0));
    await new Promise((resolve) => setTimeout(resolve, 2));
    this.inFlight.set(partition, (this.inFlight.get(partition) ?? 0) - 1);
    return new ScriptedModelExplainer({ confidence: 0.9 }).explain();
  }
}

function setUp(overrides: Partial<IncidentBatchOptions> = {}) {
  const fakes = {
    explainer: new CountingExplainer(new ScriptedModelExplainer({ confidence: 0.9 })),
    reviews: new InMemoryReviewTasks(),
    records: new InMemoryExplanationRecords(),
    publisher: new InMemoryGenAiEventPublisher(),
  };
  return { ...fakes, processor: createIncidentBatchProcessor({ ...fakes, ...overrides }) };
}

let offset = 0;
const detected = (value: Incident, partition = 0): ConsumedEvent => ({
  topic: 'incident.detected',
  position: { partition, offset: offset++ },
  id: `ce-${value.incidentId}-${offset}`,
  time: '2026-11-23T10:00:00.000Z',
  data: value,
});
const resolved = (incidentId: string, decision: string, partition = 0): ConsumedEvent => ({
  topic: 'genai.hitl.resolved',
  position: { partition, offset: offset++ },
  id: `ce-resolved-${incidentId}-${decision}`,
  time: '2026-11-23T10:05:00.000Z',
  data: { reviewId: `r-${incidentId}`, incidentId, decision, reviewer: 'ana' },
});
const kinds = (results: EventResult[]) =>
  results.map((r) => (r.ok ? r.value.kind : `failed ${String(r.error)}`));

describe('the incident batch', () => {
  it('reads once, explains each incident once, produces once for the whole batch; a redelivery only reads and produces', async () => {
    const { processor, explainer, records, publisher } = setUp();
    const batch = [
      ...Array.from({ length: 30 }, (_, i) => detected(incident(`inc-${i}`))),
      detected(incident('inc-3')),
    ];
    const first = await processor.process(batch);
    expect(first.every((r) => r.ok)).toBe(true);
    expect(explainer.calls).toBe(30);
    expect(records.finds).toHaveLength(1);
    expect(records.finds[0]).toHaveLength(30);
    expect(publisher.calls).toBe(1);
    // Each incident's events once, the duplicate record included.
    expect(publisher.published).toHaveLength(60);
    expect(records.records.size).toBe(30);
    expect(records.view('inc-3')?.incidentId).toBe('inc-3');
    expect(first[31 - 1]).toEqual({
      ok: true,
      value: { kind: 'explained', incidentId: 'inc-3', events: 2, reviewOpened: false, replayed: true },
    });

    const again = await processor.process(batch);
    expect(again.every((r) => r.ok && r.value.kind === 'explained' && r.value.replayed)).toBe(true);
    expect(explainer.calls).toBe(30);
    expect(publisher.calls).toBe(2);
    expect(publisher.published.slice(60)).toEqual(publisher.published.slice(0, 60));
  });

  it('runs at most explainConcurrency explainer calls per partition, the partitions at once', async () => {
    const explainer = new GatedExplainer();
    const { processor } = setUp({ explainer, explainConcurrency: 3 });
    const batch = [0, 1].flatMap((p) =>
      Array.from({ length: 12 }, (_, i) => detected(incident(`p${p}-${i}`), p)),
    );
    expect((await processor.process(batch)).every((r) => r.ok)).toBe(true);
    expect(explainer.calls).toBe(24);
    expect(Object.fromEntries(explainer.most)).toEqual({ p0: 3, p1: 3 });
  });

  it('fails only the invalid record and the mismatched re-detection; the rest of the batch is answered', async () => {
    const { processor, publisher } = setUp();
    const results = await processor.process([
      detected(incident('x', 'HIGH')),
      { ...detected(incident('y')), data: { incidentId: 'y' } },
      detected(incident('x', 'CRITICAL')),
      detected(incident('z')),
    ]);
    expect(kinds(results)).toEqual([
      'explained',
      expect.stringMatching(/^failed InvalidIncidentError/),
      expect.stringMatching(/^failed IdempotencyPayloadMismatchError: incident x was already explained/),
      'explained',
    ]);
    expect(publisher.published.map((e) => e.subject)).toEqual(['x', 'x', 'x', 'z', 'z']);
  });

  it('a failed write fails the explained records and produces none of their events (a replay in the batch is still answered); running the batch again reuses the outcomes instead of asking again', async () => {
    const setup = setUp();
    const { processor, explainer, publisher, records } = setup;
    await processor.process([detected(incident('w0'))]);
    publisher.published.length = 0;
    publisher.calls = 0;
    const complete = records.complete.bind(records);
    let failures = 1;
    records.complete = async (list) => {
      if (failures-- > 0) throw new Error('DynamoDB unavailable');
      return complete(list);
    };
    const batch = [detected(incident('w0')), detected(incident('w1', 'HIGH')), detected(incident('w2'))];
    expect(kinds(await processor.process(batch))).toEqual([
      'explained',
      'failed Error: DynamoDB unavailable',
      'failed Error: DynamoDB unavailable',
    ]);
    expect(records.records.size).toBe(1);
    // One send, the replay's events only: the one prepared for the whole batch was never sent.
    expect(publisher.calls).toBe(1);
    expect(publisher.published.map((e) => e.subject)).toEqual(['w0', 'w0']);

    expect(kinds(await processor.process(batch))).toEqual(['explained', 'explained', 'explained']);
    expect(explainer.calls).toBe(3);
    expect(records.records.size).toBe(3);
    expect(publisher.published.slice(2).map((e) => e.topic)).toEqual([
      'genai.request',
      'genai.response',
      'genai.request',
      'genai.response',
      'genai.hitl.requested',
      'genai.request',
      'genai.response',
    ]);
  });

  it('writes the outcomes with their views and the reviews in one round, and produces only once both are stored', async () => {
    const gated = () => {
      let release: () => void = () => undefined;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      return { gate, release: () => release() };
    };
    const pause = () => new Promise((resolve) => setTimeout(resolve, 5));
    const { processor, publisher, records, reviews } = setUp();
    const [reviewsGate, outcomesGate] = [gated(), gated()];
    const started: string[] = [];
    const saveAll = reviews.saveAll.bind(reviews);
    reviews.saveAll = async (tasks) => {
      started.push('reviews');
      await reviewsGate.gate;
      return saveAll(tasks);
    };
    const complete = records.complete.bind(records);
    records.complete = async (list) => {
      started.push('outcomes');
      await outcomesGate.gate;
      return complete(list);
    };
    let answered = false;
    const running = processor.process([detected(incident('o1', 'HIGH'))]).then((results) => {
      answered = true;
      return results;
    });
    await pause();
    // Both writes in flight at once: one round trip.
    expect(started).toEqual(['reviews', 'outcomes']);
    outcomesGate.release();
    await pause();
    // The outcome is stored, the review not yet: nothing produced (genai.hitl.requested names the review).
    expect([records.records.size, publisher.calls, answered]).toEqual([1, 0, false]);
    reviewsGate.release();
    expect(kinds(await running)).toEqual(['explained']);
    expect((await reviews.get('o1'))?.status).toBe('OPEN');
    expect(publisher.calls).toBe(1);
  });

  it('answers a batch whose outcomes failed only once its reviews have settled, producing nothing', async () => {
    const { processor, publisher, records, reviews } = setUp();
    records.complete = async () => {
      throw new Error('outcomes refused');
    };
    let reviewsDone = false;
    const saveAll = reviews.saveAll.bind(reviews);
    reviews.saveAll = async (tasks) => {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await saveAll(tasks);
      reviewsDone = true;
    };
    expect(kinds(await processor.process([detected(incident('f1', 'HIGH'))]))).toEqual([
      'failed Error: outcomes refused',
    ]);
    expect(reviewsDone).toBe(true);
    expect([records.records.size, publisher.calls]).toEqual([0, 0]);
  });

  it("opens a replayed outcome's review when its write failed while the outcome's succeeded, once however many of its records come, before producing; a failed repair fails that incident's records alone", async () => {
    const { processor, publisher, records, reviews } = setUp();
    // The first delivery stored both outcomes, the reviews' write failed.
    const saveAll = reviews.saveAll.bind(reviews);
    reviews.saveAll = async () => {
      throw new Error('reviews refused');
    };
    const batch = [
      detected(incident('h1', 'HIGH')),
      detected(incident('m1')),
      detected(incident('h1', 'HIGH')),
    ];
    expect(kinds(await processor.process(batch))).toEqual([
      'failed Error: reviews refused',
      'failed Error: reviews refused',
      'failed Error: reviews refused',
    ]);
    expect([records.records.size, await reviews.get('h1'), publisher.calls]).toEqual([2, undefined, 0]);

    // Redelivered while the reviews still fail: h1's replays need their review and fail, m1's is answered.
    expect(kinds(await processor.process(batch))).toEqual([
      'failed Error: reviews refused',
      'explained',
      'failed Error: reviews refused',
    ]);
    expect(publisher.published.map((e) => e.subject)).toEqual(['m1', 'm1']);

    reviews.saveAll = saveAll;
    const again = await processor.process(batch);
    expect(again.map((r) => r.ok && r.value)).toMatchObject([
      { kind: 'explained', replayed: true, reviewOpened: true },
      { kind: 'explained', replayed: true, reviewOpened: false },
      { kind: 'explained', replayed: true, reviewOpened: false },
    ]);
    // One write of h1's review, not one per record.
    expect(reviews.saves.at(-1)?.map((task) => task.incidentId)).toEqual(['h1']);
    expect((await reviews.get('h1'))?.status).toBe('OPEN');
    expect(publisher.published.slice(2).map((e) => `${e.subject} ${e.topic}`)).toContain(
      'h1 genai.hitl.requested',
    );
  });

  it("resolves a review of the batch after the batch's explanations, so the resolution is not overwritten by the opening", async () => {
    const { processor, reviews } = setUp();
    const results = await processor.process([
      resolved('m1', 'CONFIRMED'),
      detected(incident('m1', 'CRITICAL')),
    ]);
    expect(kinds(results)).toEqual(['review-resolved', 'explained']);
    expect(await reviews.get('m1')).toMatchObject({ status: 'RESOLVED', decision: 'CONFIRMED' });
  });

  it('a failed produce fails every answered record; the retry replays the stored outcomes without the explainer', async () => {
    const { processor, explainer, publisher } = setUp();
    const publish = publisher.publish.bind(publisher);
    let failures = 1;
    publisher.publish = async (events) => {
      if (failures-- > 0) throw new Error('broker unavailable');
      return publish(events);
    };
    const batch = [detected(incident('k1')), detected(incident('k2'))];
    expect(kinds(await processor.process(batch))).toEqual([
      'failed Error: broker unavailable',
      'failed Error: broker unavailable',
    ]);
    expect(kinds(await processor.process(batch))).toEqual(['explained', 'explained']);
    expect(explainer.calls).toBe(2);
    expect(publisher.published).toHaveLength(4);
  });

  it('a resolution with an id no store key can hold fails alone; the others of its batch are resolved', async () => {
    const { processor, reviews } = setUp();
    const results = await processor.process([
      resolved('ok-1', 'CONFIRMED'),
      resolved('x'.repeat(3_000), 'CONFIRMED'),
      resolved('ok-2', 'DISMISSED'),
    ]);
    expect(kinds(results)).toEqual([
      'review-resolved',
      'failed InvalidResolutionError: Invalid genai.hitl.resolved data: reviewId is 3002 bytes, the limit is 512; incidentId is 3000 bytes, the limit is 512',
      'review-resolved',
    ]);
    expect(reviews.finds).toEqual([['ok-1', 'ok-2']]);
  });

  it('resolutions of a batch: one read, each incident decided by its first (the others ALREADY_RESOLVED), incidents at once; a redelivery writes nothing', async () => {
    const reviews = new InMemoryReviewTasks();
    const keep = reviews.keepDecision.bind(reviews);
    let inFlight = 0;
    let most = 0;
    reviews.keepDecision = async (resolution: ReviewResolution) => {
      inFlight++;
      most = Math.max(most, inFlight);
      await new Promise((r) => setTimeout(r, 5));
      inFlight--;
      return keep(resolution);
    };
    const { processor } = setUp({ reviews });
    const batch = [
      resolved('r1', 'CONFIRMED'),
      resolved('r2', 'CONFIRMED'),
      resolved('r1', 'REJECTED'),
      resolved('r3', 'DISMISSED'),
    ];
    const outcomes = (results: EventResult[]) =>
      results.map((r) => r.ok && r.value.kind === 'review-resolved' && r.value.outcome);
    expect(outcomes(await processor.process(batch))).toEqual([
      'RESOLVED',
      'RESOLVED',
      'ALREADY_RESOLVED',
      'RESOLVED',
    ]);
    expect(reviews.finds).toEqual([['r1', 'r2', 'r3']]);
    expect((await reviews.get('r1'))?.decision).toBe('CONFIRMED');
    expect(most).toBe(3);
    const writes = reviews.conditional.length + reviews.saves.length;
    expect(outcomes(await processor.process(batch))).toEqual([
      'ALREADY_RESOLVED',
      'ALREADY_RESOLVED',
      'ALREADY_RESOLVED',
      'ALREADY_RESOLVED',
    ]);
    expect(reviews.conditional.length + reviews.saves.length).toBe(writes);
  });
});
