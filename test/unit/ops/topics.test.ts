// topics plan/apply's rules, on plain data: what is created, what needs a flag, what is never done.
import type { Admin } from '@platformatic/kafka';
import { describe, expect, it } from 'vitest';
import {
  applyPlan,
  formatPlan,
  notYetVisible,
  planTopics,
  refusal,
  run,
  type TopicSpec,
  type TopicState,
  topicSpecs,
} from '../../../ops/topics';
import { CliError } from '../../../shared/cli-error';

const DAY = 86_400_000;
const config = {
  custom: {
    kafka: {
      defaults: { replicationFactor: 3, minInsyncReplicas: 2, cleanupPolicy: 'delete' },
      topics: {
        'booking.created': { partitions: 6, retentionDays: 30 },
        'genai.request': { partitions: 6, retentionDays: 90, timestampType: 'LogAppendTime' },
      },
    },
  },
};

const spec = (overrides: Partial<TopicSpec> = {}): TopicSpec => ({
  name: 't',
  partitions: 6,
  replicationFactor: 3,
  configs: { 'retention.ms': String(30 * DAY), 'cleanup.policy': 'delete', 'min.insync.replicas': '2' },
  ...overrides,
});
const state = (overrides: Partial<TopicState> = {}): TopicState => ({ ...spec(), ...overrides });

describe('topicSpecs', () => {
  it('merges the defaults into each topic for an AWS stage', () => {
    expect(topicSpecs(config, 'prod')).toEqual([
      spec({ name: 'booking.created' }),
      spec({
        name: 'genai.request',
        configs: {
          'retention.ms': String(90 * DAY),
          'cleanup.policy': 'delete',
          'min.insync.replicas': '2',
          'message.timestamp.type': 'LogAppendTime',
        },
      }),
    ]);
  });

  it('gives the single local broker replication 1 and min.insync.replicas 1', () => {
    const [local] = topicSpecs(config, 'local');
    expect(local?.replicationFactor).toBe(1);
    expect(local?.configs['min.insync.replicas']).toBe('1');
  });

  it('names the setting that is wrong', () => {
    const bad = { custom: { kafka: { topics: { 'a.b': { partitions: 0, retentionDays: 1 } } } } };
    expect(() => topicSpecs(bad, 'prod')).toThrow(
      'custom.kafka.topics.a.b.partitions must be a whole number',
    );
    const noRetention = { custom: { kafka: { topics: { 'a.b': { partitions: 1 } } } } };
    expect(() => topicSpecs(noRetention, 'prod')).toThrow('custom.kafka.topics.a.b.retentionDays');
  });
});

describe('planTopics', () => {
  it('creates a missing topic and lists topics it does not manage without touching them', () => {
    const plan = planTopics([spec()], new Map([['other', state({ name: 'other' })]]));
    expect(plan.changes).toEqual([{ kind: 'create', topic: 't', spec: spec() }]);
    expect(plan.unmanaged).toEqual(['other']);
    expect(refusal(plan, new Set())).toBeUndefined();
  });

  it('has nothing to do when the topic matches', () => {
    const plan = planTopics([spec()], new Map([['t', state()]]));
    expect(plan.changes).toEqual([]);
    expect(formatPlan(plan, 'Plan:')).toContain('no changes');
  });

  it('longer retention and another min.insync.replicas need no flag; shorter retention does', () => {
    const longer = planTopics(
      [spec()],
      new Map([
        [
          't',
          state({
            configs: { ...state().configs, 'retention.ms': String(7 * DAY), 'min.insync.replicas': '1' },
          }),
        ],
      ]),
    );
    expect(longer.changes).toEqual([
      { kind: 'set-config', topic: 't', key: 'retention.ms', from: String(7 * DAY), to: String(30 * DAY) },
      { kind: 'set-config', topic: 't', key: 'min.insync.replicas', from: '1', to: '2' },
    ]);
    expect(refusal(longer, new Set())).toBeUndefined();

    const shorter = planTopics(
      [spec()],
      new Map([['t', state({ configs: { ...state().configs, 'retention.ms': '-1' } })]]),
    );
    expect(shorter.changes).toEqual([
      {
        kind: 'set-config',
        topic: 't',
        key: 'retention.ms',
        from: '-1',
        to: String(30 * DAY),
        guard: 'data-loss',
      },
    ]);
    expect(refusal(shorter, new Set())).toMatch(
      /nothing applied:\n {2}t: retention.ms -1 -> 2592000000: .* pass --allow-data-loss/,
    );
    expect(refusal(shorter, new Set(['data-loss']))).toBeUndefined();
  });

  it('another cleanup policy is data loss', () => {
    const plan = planTopics(
      [spec()],
      new Map([['t', state({ configs: { ...state().configs, 'cleanup.policy': 'compact' } })]]),
    );
    expect(plan.changes[0]).toMatchObject({ key: 'cleanup.policy', guard: 'data-loss' });
  });

  it('adds partitions only with --allow-repartition and never removes them', () => {
    const more = planTopics([spec({ partitions: 12 })], new Map([['t', state()]]));
    expect(more.changes).toEqual([
      { kind: 'add-partitions', topic: 't', from: 6, to: 12, guard: 'repartition' },
    ]);
    expect(refusal(more, new Set(['data-loss']))).toContain('pass --allow-repartition');
    expect(refusal(more, new Set(['repartition']))).toBeUndefined();

    const fewer = planTopics([spec({ partitions: 3 })], new Map([['t', state()]]));
    expect(fewer.changes[0]).toMatchObject({ kind: 'refused' });
    expect(refusal(fewer, new Set(['data-loss', 'repartition']))).toContain('Kafka cannot remove partitions');
  });

  it('reports another replication factor as drift that apply leaves alone', () => {
    const plan = planTopics([spec()], new Map([['t', state({ replicationFactor: 2 })]]));
    expect(plan.changes).toEqual([
      { kind: 'drift', topic: 't', reason: expect.stringContaining('partition reassignment') },
    ]);
    expect(refusal(plan, new Set())).toBeUndefined();
  });
});

/**
 * A cluster whose metadata shows a created topic only from its `lag`-th read after the create, as a broker can
 * when it answers CreateTopics before its own metadata has the topic.
 */
function laggingCluster(lag: number) {
  let created: { name: string; partitions: number } | undefined;
  let readsSinceCreate = 0;
  const visible = () => (created && readsSinceCreate >= lag ? created : undefined);
  const admin = {
    async createTopics(options: { topics: string[]; partitions: number }) {
      created = { name: options.topics[0] ?? '', partitions: options.partitions };
    },
    async listTopics() {
      if (created) readsSinceCreate += 1;
      const topic = visible();
      return topic ? [topic.name] : [];
    },
    async metadata() {
      const topic = visible();
      const topics = new Map();
      if (topic)
        topics.set(topic.name, {
          partitionsCount: topic.partitions,
          partitions: Array.from({ length: topic.partitions }, () => ({ replicas: [1, 2, 3] })),
        });
      return { topics };
    },
    async describeConfigs() {
      const topic = visible();
      if (!topic) return [];
      return [
        {
          resourceName: topic.name,
          configs: Object.entries(spec().configs).map(([name, value]) => ({ name, value })),
        },
      ];
    },
  };
  return { admin: admin as unknown as Admin, reads: () => readsSinceCreate };
}

describe('applyPlan waits for the cluster to show what it applied', () => {
  it('says what is not visible yet, change by change', () => {
    const current = new Map([['t', state({ partitions: 6, configs: { 'retention.ms': '1' } })]]);
    expect(
      notYetVisible(
        [
          { kind: 'create', topic: 'new', spec: spec({ name: 'new' }) },
          { kind: 'add-partitions', topic: 't', from: 6, to: 8, guard: 'repartition' },
          { kind: 'set-config', topic: 't', key: 'retention.ms', from: '5', to: '1' },
          { kind: 'set-config', topic: 't', key: 'cleanup.policy', from: 'compact', to: 'delete' },
        ],
        current,
      ),
    ).toEqual(['new with 6 partitions', 't with 8 partitions', 't cleanup.policy=delete']);
  });

  it('returns only once a created topic is in the metadata', async () => {
    const cluster = laggingCluster(3);
    const done = await applyPlan(
      cluster.admin,
      { changes: [{ kind: 'create', topic: 't', spec: spec() }], unmanaged: [] },
      { pollMs: 1 },
    );
    expect(done).toEqual([expect.stringContaining('create t: 6 partitions')]);
    expect(cluster.reads()).toBe(3);
  });

  it('fails naming what the metadata still lacks when it never shows', async () => {
    const cluster = laggingCluster(Number.POSITIVE_INFINITY);
    await expect(
      applyPlan(
        cluster.admin,
        { changes: [{ kind: 'create', topic: 't', spec: spec() }], unmanaged: [] },
        { visibleWithinMs: 20, pollMs: 1 },
      ),
    ).rejects.toThrow(/does not show them after 20 ms: t with 6 partitions/);
  });

  it('waits through reads the cluster refuses meanwhile', async () => {
    const cluster = laggingCluster(3);
    const listTopics = cluster.admin.listTopics.bind(cluster.admin);
    let refusals = 0;
    cluster.admin.listTopics = (async () => {
      const names = await listTopics();
      if (names.length === 0 && refusals++ === 0) throw new Error('UNKNOWN_TOPIC_OR_PARTITION');
      return names;
    }) as typeof cluster.admin.listTopics;
    await applyPlan(
      cluster.admin,
      { changes: [{ kind: 'create', topic: 't', spec: spec() }], unmanaged: [] },
      { pollMs: 1 },
    );
    expect(refusals).toBeGreaterThan(0);
    expect(cluster.reads()).toBe(3);
  });
});

describe('topics command usage', () => {
  it('refuses a missing or unknown action with exit 2', async () => {
    await expect(run([])).rejects.toMatchObject({ name: 'CliError', exitCode: 2 });
    await expect(run(['delete'])).rejects.toBeInstanceOf(CliError);
  });
});
