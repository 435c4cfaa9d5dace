import type { MSKEvent } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import {
  checkTopicTarget,
  formatOutcomes,
  formatPlan,
  parseRedriveArgs,
} from '../../../../ops/redrive/command';
import { parseFailedBatch, UnreadableFailedBatch } from '../../../../ops/redrive/failed-batch';
import {
  executeRedrive,
  type FunctionInvoker,
  type InvokeResult,
  invocationSlices,
  invokeBatch,
  type ProducedRecord,
  partitionGroups,
  planRedrive,
  produceBatch,
  STATUS_TAG,
} from '../../../../ops/redrive/redrive';
import { CliError } from '../../../../shared/cli-error';
import { ESM, FUNCTION, failedObject, memoryStore, OTHER_ESM, record } from './failed-objects';

const selection = { esmUuids: [ESM], functionName: FUNCTION };

/** Answers each invocation with the partial batch response `respond` gives, and keeps the events. */
function fakeInvoker(respond: (event: MSKEvent) => InvokeResult = () => ({ ok: true, response: null })) {
  const events: MSKEvent[] = [];
  const invoker: FunctionInvoker = {
    invoke: async (_name, event) => {
      events.push(structuredClone(event));
      return respond(event);
    },
  };
  return { invoker, events };
}

/** A partial batch response naming every record whose value starts with "poison" and the rest of its partition. */
const poisonResponse = (event: MSKEvent): InvokeResult => {
  const batchItemFailures = Object.entries(event.records).flatMap(([partition, records]) => {
    const at = records.findIndex((r) =>
      Buffer.from(r.value ?? '', 'base64')
        .toString()
        .startsWith('poison'),
    );
    return at < 0 ? [] : records.slice(at).map((r) => ({ itemIdentifier: { partition, offset: r.offset } }));
  });
  return { ok: true, response: { batchItemFailures } };
};

describe('redrive arguments', () => {
  const usage = (args: string[]) => {
    try {
      parseRedriveArgs(args);
    } catch (error) {
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(2);
      return (error as Error).message;
    }
    throw new Error(`accepted: ${args.join(' ')}`);
  };

  it('reads a full selection', () => {
    expect(
      parseRedriveArgs([
        '--function',
        'billing',
        '--topic',
        'payment.failed',
        '--partition',
        '2',
        '--from',
        '2026-12-01T00:00:00Z',
        '--to',
        '1796169600',
        '--reason',
        'RecordAgeExceeded',
        '--dry-run',
        '--to-topic',
        'payment.failed',
      ]),
    ).toMatchObject({
      functionKey: 'billing',
      stage: 'local',
      topic: 'payment.failed',
      partition: 2,
      from: new Date('2026-12-01T00:00:00Z'),
      to: new Date('2026-12-02T00:00:00Z'),
      reason: 'RecordAgeExceeded',
      dryRun: true,
      list: false,
      toTopic: 'payment.failed',
      prefix: 'aws/lambda/',
      concurrency: 4,
    });
    expect(parseRedriveArgs(['--help'])).toBe('help');
  });

  it('refuses wrong usage with exit 2, naming the flag', () => {
    expect(usage([])).toContain('--function <key> is required');
    expect(usage(['--function', 'billing', '--partition=-1'])).toContain('--partition must be');
    expect(usage(['--function', 'billing', '--partition', 'x'])).toContain('got "x"');
    expect(usage(['--function', 'billing', '--reason', 'Timeout'])).toContain('--reason must be one of');
    expect(usage(['--function', 'billing', '--from', 'yesterday'])).toContain(
      '--from: cannot read "yesterday"',
    );
    expect(usage(['--function', 'billing', '--from', '2026-12-02', '--to', '2026-12-01'])).toContain(
      'must be before --to',
    );
    expect(usage(['--function', 'billing', '--to-topic', 'a topic'])).toContain(
      '--to-topic must be a Kafka topic',
    );
    expect(usage(['--function', 'billing', '--esm', 'nope'])).toContain(
      '--esm must be an event source mapping UUID',
    );
    expect(usage(['--function', 'billing', '--list', '--dry-run'])).toContain('--list only lists');
    expect(usage(['--function', 'billing', '--bogus'])).toContain("Unknown option '--bogus'");
    expect(usage(['--function', 'billing', 'extra'])).toContain('unexpected argument "extra"');
  });
});

describe('a failed-records object', () => {
  it('is read as the function, reason, time and original event the ESM wrote', () => {
    const { key, body } = failedObject({
      records: [record('payment.failed', 1, 7, 'a'), record('payment.failed', 1, 8, null)],
      condition: 'RecordAgeExceeded',
    });
    const batch = parseFailedBatch(key, body);
    expect(batch).toMatchObject({
      functionName: FUNCTION,
      condition: 'RecordAgeExceeded',
      failedAt: new Date('2026-12-01T12:00:00Z'),
      partitions: ['payment.failed-1'],
      recordCount: 2,
    });
    expect(batch.event.records['payment.failed-1']?.map((r) => r.offset)).toEqual([7, 8]);
  });

  it('is refused with the key and what is wrong when it is not an invocation record with its payload', () => {
    const { body } = failedObject({ records: [record('t', 0, 1, 'a')] });
    const withoutPayload = JSON.stringify({ ...JSON.parse(body), payload: undefined });
    expect(() => parseFailedBatch('k1', withoutPayload)).toThrow(
      new UnreadableFailedBatch(
        'k1',
        'payload (the original event) is missing: only S3 destinations keep it',
      ),
    );
    expect(() => parseFailedBatch('k2', '{')).toThrow('k2: not JSON');
    expect(() => parseFailedBatch('k3', JSON.stringify({ ...JSON.parse(body), timestamp: 'then' }))).toThrow(
      'k3: timestamp is missing or invalid',
    );
    const badRecords = JSON.stringify({
      ...JSON.parse(body),
      payload: JSON.stringify({ records: { 't-0': [{}] } }),
    });
    expect(() => parseFailedBatch('k4', badRecords)).toThrow(
      'k4: payload records of t-0 are not Kafka records',
    );
  });
});

describe('planning a redrive', () => {
  const objects = [
    failedObject({ records: [record('payment.failed', 1, 20, 'b')] }, 'b'),
    failedObject({ records: [record('payment.failed', 1, 5, 'a')] }, 'a'),
    failedObject({ records: [record('payment.failed', 0, 9, 'c')], condition: 'RecordAgeExceeded' }, 'c'),
    failedObject(
      { records: [record('payment.succeeded', 0, 1, 'd')], failedAt: new Date('2026-12-03T00:00:00Z') },
      'd',
    ),
    // Another function's ESM, and another function's object under this ESM's prefix.
    failedObject({ records: [record('payment.failed', 0, 1, 'x')], esm: OTHER_ESM }, 'x'),
    failedObject({ records: [record('payment.failed', 0, 2, 'y')], functionName: 'other-fn' }, 'y'),
  ];

  it("selects the function's objects, oldest records of a partition first", async () => {
    const plan = await planRedrive(memoryStore(objects), selection);
    expect(plan.pending.map((p) => p.batch.event.records)).toHaveLength(4);
    expect(plan.pending.map((p) => Object.values(p.batch.event.records)[0]?.[0]?.value)).toEqual(
      ['c', 'a', 'b', 'd'].map((v) => Buffer.from(v).toString('base64')),
    );
  });

  it('filters by topic, partition, time range and reason', async () => {
    const store = memoryStore(objects);
    const values = async (extra: object) =>
      (await planRedrive(store, { ...selection, ...extra })).pending.map((p) =>
        Buffer.from(Object.values(p.batch.event.records)[0]?.[0]?.value ?? '', 'base64').toString(),
      );
    expect(await values({ topic: 'payment.failed' })).toEqual(['c', 'a', 'b']);
    expect(await values({ topic: 'payment.failed', partition: 1 })).toEqual(['a', 'b']);
    expect(await values({ reason: 'RecordAgeExceeded' })).toEqual(['c']);
    expect(await values({ from: new Date('2026-12-02T00:00:00Z') })).toEqual(['d']);
    expect(await values({ to: new Date('2026-12-02T00:00:00Z') })).toEqual(['c', 'a', 'b']);
  });

  it('skips objects redriven before, keeps those that failed again, reports unreadable ones', async () => {
    const broken = { key: `aws/lambda/${ESM}/payment.failed-0/2026/12/01/broken`, body: 'not json' };
    const store = memoryStore([...objects, broken]);
    const first = await planRedrive(store, selection);
    await store.setTags(first.pending[0]?.batch.key as string, { [STATUS_TAG]: 'redriven' });
    await store.setTags(first.pending[1]?.batch.key as string, { [STATUS_TAG]: 'failed-again' });
    const plan = await planRedrive(store, selection);
    expect(plan.redriven.map((p) => p.batch.key)).toEqual([first.pending[0]?.batch.key]);
    expect(plan.pending.map((p) => p.status)).toEqual(['failed-again', undefined, undefined]);
    expect(plan.unreadable.map((u) => u.message)).toEqual([`${broken.key}: not JSON`]);
  });

  it('reports an object it cannot read or whose tags it cannot read, and plans the others', async () => {
    const store = memoryStore(objects);
    const plannable = await planRedrive(store, selection);
    const [gone, untagged] = [
      plannable.pending[0]?.batch.key as string,
      plannable.pending[1]?.batch.key as string,
    ];
    const flaky = {
      ...store,
      read: async (key: string) => {
        if (key === gone)
          throw Object.assign(new Error('The specified key does not exist.'), { name: 'NoSuchKey' });
        return store.read(key);
      },
      tags: async (key: string) => {
        if (key === untagged) throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied' });
        return store.tags(key);
      },
    };
    const plan = await planRedrive(flaky, selection);
    expect(plan.unreadable.map((u) => u.message).sort()).toEqual(
      [
        `${gone}: could not be read: NoSuchKey: The specified key does not exist.`,
        `${untagged}: could not be read: AccessDenied: Access Denied`,
      ].sort(),
    );
    expect(plan.pending).toHaveLength(2);
  });

  it("refuses --to-topic onto a topic other than the records' own", async () => {
    const plan = await planRedrive(memoryStore(objects), selection);
    expect(() => checkTopicTarget(plan, 'payment.failed')).toThrow(
      /hold records of payment.succeeded: select one topic with --topic/,
    );
    expect(() => checkTopicTarget(plan, 'payment.failed')).toThrow(CliError);
  });
});

describe('redriving by Invoke', () => {
  it('invokes with the original event and tags each object with its outcome; a second redrive sends nothing', async () => {
    const objects = [
      failedObject({ records: [record('t', 0, 1, 'ok-1'), record('t', 0, 2, 'ok-2')] }, 'a'),
      failedObject(
        { records: [record('t', 1, 4, 'ok-3'), record('t', 1, 5, 'poison'), record('t', 1, 6, 'ok-4')] },
        'b',
      ),
    ];
    const store = memoryStore(objects);
    const { invoker, events } = fakeInvoker(poisonResponse);
    const target = { kind: 'invoke', functionName: FUNCTION } as const;
    const outcomes = await executeRedrive(await planRedrive(store, selection), target, {
      store,
      invoker,
      now: () => new Date('2026-12-06T10:00:00Z'),
    });
    expect(events[0]).toEqual(JSON.parse(JSON.parse(objects[0]?.body as string).payload));
    expect(outcomes).toEqual([
      { key: objects[0]?.key, records: 2, succeeded: 2, failedAgain: [], status: 'redriven' },
      {
        key: objects[1]?.key,
        records: 3,
        succeeded: 1,
        failedAgain: [
          { partition: 't-1', offset: 5, reason: 'reported as a batch item failure' },
          { partition: 't-1', offset: 6, reason: 'reported as a batch item failure' },
        ],
        status: 'failed-again',
      },
    ]);
    expect(store.tagsOf(objects[0]?.key as string)).toEqual({
      'redrive-status': 'redriven',
      'redrive-at': '2026-12-06T10:00:00.000Z',
      'redrive-via': 'invoke',
    });
    expect(store.tagsOf(objects[1]?.key as string)?.['redrive-status']).toBe('failed-again');

    // After the fix: only the object that failed again is sent; then nothing is left.
    const fixed = fakeInvoker();
    const again = await executeRedrive(await planRedrive(store, selection), target, {
      store,
      invoker: fixed.invoker,
    });
    expect(again.map((o) => [o.key, o.status])).toEqual([[objects[1]?.key, 'redriven']]);
    const third = await planRedrive(store, selection);
    expect(third.pending).toEqual([]);
    expect(third.redriven).toHaveLength(2);
  });

  it('runs objects of different partitions at once, never two of one partition, and reports in plan order', async () => {
    const objects = [
      failedObject({ records: [record('t', 0, 1, 'a')] }, 'a'),
      failedObject({ records: [record('t', 0, 2, 'b')] }, 'b'),
      failedObject({ records: [record('t', 1, 1, 'c'), record('t', 2, 1, 'c2')] }, 'c'),
      failedObject({ records: [record('t', 2, 5, 'd')] }, 'd'),
      failedObject({ records: [record('t', 3, 1, 'e')] }, 'e'),
    ];
    const store = memoryStore(objects);
    const plan = await planRedrive(store, selection);
    const groupValues = partitionGroups(plan.pending).map((g) =>
      g.map((p) =>
        Buffer.from(Object.values(p.batch.event.records)[0]?.[0]?.value ?? '', 'base64').toString(),
      ),
    );
    expect(groupValues).toEqual([['a', 'b'], ['c', 'd'], ['e']]);

    const running = new Set<string>();
    let most = 0;
    const invoker: FunctionInvoker = {
      invoke: async (_name, event) => {
        const partitions = Object.keys(event.records);
        for (const p of partitions) {
          expect(running.has(p), `two invocations of ${p} at once`).toBe(false);
          running.add(p);
        }
        most = Math.max(most, running.size);
        await new Promise((resolve) => setTimeout(resolve, 5));
        for (const p of partitions) running.delete(p);
        return { ok: true, response: null };
      },
    };
    const outcomes = await executeRedrive(
      plan,
      { kind: 'invoke', functionName: FUNCTION },
      { store, invoker },
      4,
    );
    expect(outcomes.map((o) => o.key)).toEqual(plan.pending.map((p) => p.batch.key));
    expect(outcomes.every((o) => o.status === 'redriven')).toBe(true);
    expect(most).toBeGreaterThan(1);
  });

  it('counts every record of an invocation that failed, with the error', async () => {
    const { key, body } = failedObject({ records: [record('t', 0, 1, 'a'), record('t', 0, 2, 'b')] });
    const failing = fakeInvoker(() => ({ ok: false, error: 'Unhandled: Error: table not found' }));
    const failed = await invokeBatch(parseFailedBatch(key, body).event, FUNCTION, failing.invoker);
    expect(failed).toEqual([
      { partition: 't-0', offset: 1, reason: 'invocation failed: Unhandled: Error: table not found' },
      { partition: 't-0', offset: 2, reason: 'invocation failed: Unhandled: Error: table not found' },
    ]);
  });

  it("fails the invocation's records when the partial batch response names a record it was not sent", async () => {
    const { key, body } = failedObject({ records: [record('t', 0, 1, 'a')] });
    const lying = fakeInvoker(() => ({
      ok: true,
      response: { batchItemFailures: [{ itemIdentifier: { partition: 't-0', offset: 99 } }] },
    }));
    expect(await invokeBatch(parseFailedBatch(key, body).event, FUNCTION, lying.invoker)).toEqual([
      { partition: 't-0', offset: 1, reason: 'the partial batch response names a record that was not sent' },
    ]);
  });

  it('splits an event over the payload limit into slices in order, and stops a partition at its first failure', async () => {
    const value = (n: number) => `${n < 0 ? 'poison' : 'ok'}-${'x'.repeat(300)}`;
    const records = [
      record('t', 0, 1, value(1)),
      record('t', 0, 2, value(-2)),
      record('t', 0, 3, value(3)),
      record('t', 1, 1, value(1)),
      record('t', 1, 2, value(2)),
      record('t', 1, 3, value(3)),
    ];
    const { key, body } = failedObject({ records, condition: 'MaximumPayloadSizeExceeded' });
    const event = parseFailedBatch(key, body).event;
    const oneRecord = Buffer.byteLength(JSON.stringify(event.records['t-0']?.[0]));
    const limit = Buffer.byteLength(JSON.stringify({ ...event, records: {} })) + 2 * oneRecord + 40;
    expect(
      invocationSlices(event, limit).map((s) => s.records.map((r) => `${r.partition}@${r.record.offset}`)),
    ).toEqual([
      ['t-0@1', 't-0@2'],
      ['t-0@3', 't-1@1'],
      ['t-1@2', 't-1@3'],
    ]);
    const { invoker, events } = fakeInvoker(poisonResponse);
    const failed = await invokeBatch(event, FUNCTION, invoker, limit);
    expect(failed).toEqual([
      { partition: 't-0', offset: 2, reason: 'reported as a batch item failure' },
      { partition: 't-0', offset: 3, reason: 'not sent: an earlier record of its partition failed' },
    ]);
    expect(events.map((e) => Object.keys(e.records))).toEqual([['t-0'], ['t-1'], ['t-1']]);
  });

  it('does not invoke with a record larger than the payload limit on its own', async () => {
    const { key, body } = failedObject({ records: [record('t', 0, 1, 'x'.repeat(2000))] });
    const { invoker, events } = fakeInvoker();
    const failed = await invokeBatch(parseFailedBatch(key, body).event, FUNCTION, invoker, 1000);
    expect(failed[0]?.reason).toMatch(/on its own: use --to-topic/);
    expect(events).toEqual([]);
  });
});

describe('redriving to a topic', () => {
  it('produces each record with its key, headers and value, to its own partition, all or none', async () => {
    const { key, body } = failedObject({
      records: [record('payment.failed', 2, 7, 'v1'), record('payment.failed', 2, 8, null, null)],
    });
    const produced: ProducedRecord[] = [];
    const failed = await produceBatch(parseFailedBatch(key, body).event, 'payment.failed', {
      produce: async (records) => {
        produced.push(...records);
      },
    });
    expect(failed).toEqual([]);
    expect(produced).toEqual([
      {
        topic: 'payment.failed',
        partition: 2,
        key: Buffer.from('k7'),
        value: Buffer.from('v1'),
        headers: [
          [Buffer.from('ce_id'), Buffer.from('id-7')],
          [Buffer.from('ce_type'), Buffer.from('payment.failed')],
        ],
      },
      {
        topic: 'payment.failed',
        partition: 2,
        key: null,
        value: null,
        headers: [
          [Buffer.from('ce_id'), Buffer.from('id-8')],
          [Buffer.from('ce_type'), Buffer.from('payment.failed')],
        ],
      },
    ]);
    const refused = await produceBatch(parseFailedBatch(key, body).event, 'payment.failed', {
      produce: async () => {
        throw new Error('NOT_ENOUGH_REPLICAS');
      },
    });
    expect(refused.map((f) => [f.offset, f.reason])).toEqual([
      [7, 'produce to payment.failed failed: NOT_ENOUGH_REPLICAS'],
      [8, 'produce to payment.failed failed: NOT_ENOUGH_REPLICAS'],
    ]);
  });
});

describe('redrive output', () => {
  it('prints the plan and, per object, what succeeded and what failed again', async () => {
    const objects = [failedObject({ records: [record('t', 0, 1, 'a'), record('t', 0, 2, 'b')] })];
    const plan = await planRedrive(memoryStore(objects), selection);
    const text = formatPlan(
      plan,
      { kind: 'topic', topic: 't' },
      { dryRun: true, list: false, consumers: ['a (ESM 1)'] },
    );
    expect(text).toContain(
      'Dry run, nothing changed: 1 object(s) to redrive (produce to t), 0 already redriven',
    );
    expect(text).toContain(
      'RetryAttemptsExhausted  failed 2026-12-01T12:00:00.000Z  2 record(s)  t-0@1..2  [not redriven]',
    );
    expect(text).toContain('note: every consumer of t receives these records again: a (ESM 1)');
    expect(
      formatOutcomes([
        { key: 'k1', records: 2, succeeded: 2, failedAgain: [], status: 'redriven' },
        {
          key: 'k2',
          records: 2,
          succeeded: 1,
          failedAgain: [{ partition: 't-0', offset: 2, reason: 'reported as a batch item failure' }],
          status: 'failed-again',
          tagError: 'AccessDenied',
        },
      ]),
    ).toBe(
      [
        '  redriven      k1: 2 record(s)',
        '  failed again  k2: 1 of 2 record(s), 1 succeeded',
        '    t-0@2: reported as a batch item failure',
        '    not tagged (AccessDenied): a later redrive sends it again',
        '1 redriven, 1 failed again',
      ].join('\n'),
    );
  });
});
