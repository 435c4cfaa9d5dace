// topics plan/apply against the real broker: what plan reads is what apply wrote, and nothing is touched that
// the plan did not name. Run-scoped topic names, so the stack's own topics are left alone.
import '../../../shared/kafka/node20-polyfills';
import { spawnSync } from 'node:child_process';
import type { Admin } from '@platformatic/kafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyPlan, planTopics, readTopics, refusal, type TopicSpec } from '../../../ops/topics';
import { testAdmin, uniqueName } from '../../support/kafka';

const DAY = 86_400_000;
let admin: Admin;
const name = uniqueName('topics-it');
const spec = (overrides: Partial<TopicSpec> = {}): TopicSpec => ({
  name,
  partitions: 2,
  replicationFactor: 1,
  configs: {
    'retention.ms': String(30 * DAY),
    'cleanup.policy': 'delete',
    'min.insync.replicas': '1',
    'message.timestamp.type': 'LogAppendTime',
  },
  ...overrides,
});

/** The cluster's topics, narrowed to this test's. */
async function ours() {
  const all = await readTopics(admin);
  return new Map([...all].filter(([topic]) => topic === name));
}

describe('topics plan/apply on the local broker', () => {
  beforeAll(() => {
    admin = testAdmin();
  });
  afterAll(async () => {
    await admin.deleteTopics({ topics: [name] }).catch(() => {});
    await admin.close();
  });

  it('creates, then finds nothing to do, then alters only what changed, guarding data loss and repartitioning', async () => {
    const create = planTopics([spec()], await ours());
    expect(create.changes.map((c) => c.kind)).toEqual(['create']);
    await applyPlan(admin, create);

    const state = (await ours()).get(name);
    expect(state).toEqual({ ...spec(), configs: spec().configs });
    expect(planTopics([spec()], await ours()).changes).toEqual([]);

    // Longer retention: applied without a flag.
    const longer = spec({ configs: { ...spec().configs, 'retention.ms': String(90 * DAY) } });
    const grow = planTopics([longer], await ours());
    expect(refusal(grow, new Set())).toBeUndefined();
    await applyPlan(admin, grow);
    expect((await ours()).get(name)?.configs['retention.ms']).toBe(String(90 * DAY));

    // Shorter retention and more partitions: refused without their flags, applied with them.
    const shorter = spec({ partitions: 3, configs: { ...spec().configs, 'retention.ms': String(DAY) } });
    const risky = planTopics([shorter], await ours());
    expect(refusal(risky, new Set())).toMatch(/--allow-repartition[\s\S]*--allow-data-loss/);
    await applyPlan(admin, risky);
    const after = (await ours()).get(name);
    expect(after?.partitions).toBe(3);
    expect(after?.configs['retention.ms']).toBe(String(DAY));

    // Fewer partitions: never.
    const fewer = planTopics([spec({ partitions: 1, configs: shorter.configs })], await ours());
    expect(fewer.changes).toEqual([
      { kind: 'refused', topic: name, reason: expect.stringContaining('cannot remove') },
    ]);
  });

  it('plan through the CLI reads the stack broker and says the local replication', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'local/cli.ts', 'topics', 'plan'], {
      encoding: 'utf8',
      timeout: 60_000,
      env: process.env,
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      /^Plan for local \(.*\), one broker: replication 1, min.insync.replicas 1 \(nothing changed\):/,
    );
    // `stack up` created every topic of serverless.yml: none is missing.
    expect(run.stdout).not.toMatch(/\+ create /);
  });
});
