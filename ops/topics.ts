// `topics plan | apply`: the Kafka topics of `custom.kafka` in serverless.yml as code, against MSK (IAM auth) or
// the local broker. Plan reads the cluster and prints the difference; apply creates and alters. Never deletes a
// topic, never shrinks partitions, never changes a replication factor (that is a partition reassignment), and
// refuses a change that would lose records or move keys between partitions unless told.
import '../shared/kafka/node20-polyfills';
import { parseArgs } from 'node:util';
import { Admin, ConfigResourceTypes, IncrementalAlterConfigOperationTypes } from '@platformatic/kafka';
import { LOCAL_STAGE, resolvedServerlessConfig } from '../local/serverless-config';
import { CliError } from '../shared/cli-error';
import { kafkaClientOptions } from '../shared/kafka/client-options';
import { useLocalStackEnv } from './local-stack-env';
import { stageKafkaSettings } from './stage-kafka';

// biome-ignore lint/suspicious/noExplicitAny: the resolved serverless config is free-form YAML
type Json = any;

const DAY_MS = 24 * 60 * 60 * 1000;

/** What a topic should be. `configs` holds only the keys this project manages. */
export interface TopicSpec {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string>;
}

/** What a topic is on the cluster, the managed config keys only. */
export interface TopicState {
  name: string;
  partitions: number;
  replicationFactor: number;
  configs: Record<string, string | undefined>;
}

/** Needs a flag: losing records (shorter retention, another cleanup policy) or moving keys (more partitions). */
export type Guard = 'data-loss' | 'repartition';

export type TopicChange =
  | { kind: 'create'; topic: string; spec: TopicSpec }
  | { kind: 'add-partitions'; topic: string; from: number; to: number; guard: Guard }
  | { kind: 'set-config'; topic: string; key: string; from: string | undefined; to: string; guard?: Guard }
  | { kind: 'refused'; topic: string; reason: string }
  | { kind: 'drift'; topic: string; reason: string };

export interface TopicPlan {
  changes: TopicChange[];
  /** Topics on the cluster that serverless.yml does not define: listed, never touched. */
  unmanaged: string[];
}

const MANAGED_KEYS = ['retention.ms', 'cleanup.policy', 'min.insync.replicas', 'message.timestamp.type'];

function positiveInteger(value: unknown, where: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${where} must be a whole number above 0, got ${value}`);
  return n;
}

/**
 * The topic specs of `custom.kafka` (defaults merged into each topic). The local stage runs one broker, so its
 * replication factor and min.insync.replicas are 1 whatever the file says.
 */
export function topicSpecs(config: Json, stage: string): TopicSpec[] {
  const kafka = config?.custom?.kafka ?? {};
  const defaults = kafka.defaults ?? {};
  return Object.entries<Json>(kafka.topics ?? {}).map(([name, own]) => {
    const settings = { ...defaults, ...own };
    const where = `custom.kafka.topics.${name}`;
    const local = stage === LOCAL_STAGE;
    const configs: Record<string, string> = {
      'retention.ms': String(positiveInteger(settings.retentionDays, `${where}.retentionDays`) * DAY_MS),
      'cleanup.policy': String(settings.cleanupPolicy ?? 'delete'),
      'min.insync.replicas': String(
        local ? 1 : positiveInteger(settings.minInsyncReplicas ?? 1, `${where}.minInsyncReplicas`),
      ),
    };
    if (settings.timestampType !== undefined) {
      if (settings.timestampType !== 'CreateTime' && settings.timestampType !== 'LogAppendTime')
        throw new Error(`${where}.timestampType must be CreateTime or LogAppendTime`);
      configs['message.timestamp.type'] = settings.timestampType;
    }
    return {
      name,
      partitions: positiveInteger(settings.partitions, `${where}.partitions`),
      replicationFactor: local
        ? 1
        : positiveInteger(settings.replicationFactor ?? 1, `${where}.replicationFactor`),
      configs,
    };
  });
}

function isDataLoss(key: string, from: string | undefined, to: string): boolean {
  if (key === 'retention.ms') {
    // -1 (or absent: the broker default) keeps more than any finite value.
    const before = from === undefined || Number(from) < 0 ? Number.POSITIVE_INFINITY : Number(from);
    const after = Number(to) < 0 ? Number.POSITIVE_INFINITY : Number(to);
    return after < before;
  }
  // Compaction drops all but the newest value of a key; deletion drops whole segments past retention.
  return key === 'cleanup.policy';
}

/** The difference between what should be and what is: pure, so every rule is unit-tested. */
export function planTopics(specs: TopicSpec[], current: Map<string, TopicState>): TopicPlan {
  const changes: TopicChange[] = [];
  for (const spec of specs) {
    const state = current.get(spec.name);
    if (!state) {
      changes.push({ kind: 'create', topic: spec.name, spec });
      continue;
    }
    if (spec.partitions < state.partitions) {
      changes.push({
        kind: 'refused',
        topic: spec.name,
        reason: `has ${state.partitions} partitions, serverless.yml says ${spec.partitions}: Kafka cannot remove partitions; correct serverless.yml`,
      });
    } else if (spec.partitions > state.partitions) {
      changes.push({
        kind: 'add-partitions',
        topic: spec.name,
        from: state.partitions,
        to: spec.partitions,
        guard: 'repartition',
      });
    }
    if (spec.replicationFactor !== state.replicationFactor) {
      changes.push({
        kind: 'drift',
        topic: spec.name,
        reason: `replication factor ${state.replicationFactor}, serverless.yml says ${spec.replicationFactor}: not changed by apply (needs a partition reassignment, kafka-reassign-partitions)`,
      });
    }
    for (const [key, to] of Object.entries(spec.configs)) {
      const from = state.configs[key];
      if (from === to) continue;
      const guard = isDataLoss(key, from, to) ? ('data-loss' as const) : undefined;
      changes.push({ kind: 'set-config', topic: spec.name, key, from, to, ...(guard ? { guard } : {}) });
    }
  }
  const defined = new Set(specs.map((spec) => spec.name));
  const unmanaged = [...current.keys()].filter((name) => !defined.has(name)).sort();
  return { changes, unmanaged };
}

const GUARD_FLAGS: Record<Guard, string> = {
  'data-loss': '--allow-data-loss',
  repartition: '--allow-repartition',
};

const GUARD_WHY: Record<Guard, string> = {
  'data-loss': 'records the topic keeps today would be deleted',
  repartition:
    "keys move to other partitions, so one aggregate's events are no longer in one ordered partition",
};

/** Why apply must not run this plan with these flags, or undefined when it may. */
export function refusal(plan: TopicPlan, allowed: Set<Guard>): string | undefined {
  const reasons: string[] = [];
  for (const change of plan.changes) {
    if (change.kind === 'refused') reasons.push(`${change.topic}: ${change.reason}`);
    if ((change.kind === 'add-partitions' || change.kind === 'set-config') && change.guard) {
      if (!allowed.has(change.guard))
        reasons.push(`${describe(change)}: ${GUARD_WHY[change.guard]}; pass ${GUARD_FLAGS[change.guard]}`);
    }
  }
  return reasons.length === 0 ? undefined : `nothing applied:\n  ${reasons.join('\n  ')}`;
}

function describe(change: TopicChange): string {
  switch (change.kind) {
    case 'create':
      return `create ${change.topic}: ${change.spec.partitions} partitions, replication ${change.spec.replicationFactor}, ${Object.entries(
        change.spec.configs,
      )
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}`;
    case 'add-partitions':
      return `${change.topic}: partitions ${change.from} -> ${change.to}`;
    case 'set-config':
      return `${change.topic}: ${change.key} ${change.from ?? '(default)'} -> ${change.to}`;
    case 'refused':
      return `${change.topic}: REFUSED ${change.reason}`;
    case 'drift':
      return `${change.topic}: ${change.reason}`;
  }
}

export function formatPlan(plan: TopicPlan, header: string): string {
  const lines = [header];
  if (plan.changes.length === 0) lines.push('  no changes: every topic matches serverless.yml');
  for (const change of plan.changes) {
    const guard =
      (change.kind === 'add-partitions' || change.kind === 'set-config') && change.guard
        ? `   [needs ${GUARD_FLAGS[change.guard]}]`
        : '';
    const mark = change.kind === 'refused' ? '!' : change.kind === 'drift' ? '~' : '+';
    lines.push(`  ${mark} ${describe(change)}${guard}`);
  }
  if (plan.unmanaged.length > 0) lines.push(`  unmanaged (never touched): ${plan.unmanaged.join(', ')}`);
  return lines.join('\n');
}

/** The managed part of every topic on the cluster (internal `__` topics left out), or of the topics named. */
export async function readTopics(admin: Admin, only?: string[]): Promise<Map<string, TopicState>> {
  const listed = (await admin.listTopics()).filter((name) => !name.startsWith('__'));
  const names = only ? listed.filter((name) => only.includes(name)) : listed;
  const current = new Map<string, TopicState>();
  if (names.length === 0) return current;
  const metadata = await admin.metadata({ topics: names, forceUpdate: true });
  const configs = await admin.describeConfigs({
    resources: names.map((name) => ({
      resourceType: ConfigResourceTypes.TOPIC,
      resourceName: name,
      configurationKeys: MANAGED_KEYS,
    })),
  });
  const configsOf = new Map(configs.map((c) => [c.resourceName, c.configs]));
  for (const name of names) {
    const topic = metadata.topics.get(name);
    if (!topic) continue;
    const values: Record<string, string | undefined> = {};
    for (const config of configsOf.get(name) ?? []) values[config.name] = config.value ?? undefined;
    current.set(name, {
      name,
      partitions: topic.partitionsCount,
      replicationFactor: topic.partitions[0]?.replicas.length ?? 0,
      configs: values,
    });
  }
  return current;
}

/** What the cluster does not show yet of the changes applied: empty once it shows all of them. */
export function notYetVisible(changes: TopicChange[], current: Map<string, TopicState>): string[] {
  const missing: string[] = [];
  for (const change of changes) {
    const state = current.get(change.topic);
    if (change.kind === 'create' && state?.partitions !== change.spec.partitions)
      missing.push(`${change.topic} with ${change.spec.partitions} partitions`);
    else if (change.kind === 'add-partitions' && state?.partitions !== change.to)
      missing.push(`${change.topic} with ${change.to} partitions`);
    else if (change.kind === 'set-config' && state?.configs[change.key] !== change.to)
      missing.push(`${change.topic} ${change.key}=${change.to}`);
  }
  return missing;
}

export interface ApplyOptions {
  /** How long to wait for the cluster to show what was applied. */
  visibleWithinMs?: number;
  pollMs?: number;
}

/**
 * Carries out a plan that `refusal` let through; creates first, then partitions, then configs. Returns once the
 * cluster's metadata shows every change: a broker answers CreateTopics when the controller has the topic, before
 * every broker's metadata has it, so a plan or a consumer right after apply could otherwise miss it.
 */
export async function applyPlan(
  admin: Admin,
  plan: TopicPlan,
  { visibleWithinMs = 30_000, pollMs = 100 }: ApplyOptions = {},
): Promise<string[]> {
  const done: string[] = [];
  for (const change of plan.changes) {
    if (change.kind === 'create') {
      await admin.createTopics({
        topics: [change.topic],
        partitions: change.spec.partitions,
        replicas: change.spec.replicationFactor,
        configs: Object.entries(change.spec.configs).map(([name, value]) => ({ name, value })),
      });
      done.push(describe(change));
    } else if (change.kind === 'add-partitions') {
      await admin.createPartitions({ topics: [{ name: change.topic, count: change.to }] });
      done.push(describe(change));
    }
  }
  const configChanges = plan.changes.filter((c) => c.kind === 'set-config');
  const byTopic = new Map<string, typeof configChanges>();
  for (const change of configChanges)
    byTopic.set(change.topic, [...(byTopic.get(change.topic) ?? []), change]);
  for (const [topic, changes] of byTopic) {
    await admin.incrementalAlterConfigs({
      resources: [
        {
          resourceType: ConfigResourceTypes.TOPIC,
          resourceName: topic,
          configs: changes.map((change) => ({
            name: change.key,
            value: change.to,
            configOperation: IncrementalAlterConfigOperationTypes.SET,
          })),
        },
      ],
    });
    done.push(...changes.map(describe));
  }
  const applied = plan.changes.filter(
    (c) => c.kind === 'create' || c.kind === 'add-partitions' || c.kind === 'set-config',
  );
  if (applied.length === 0) return done;
  const topics = [...new Set(applied.map((c) => c.topic))];
  const deadline = Date.now() + visibleWithinMs;
  for (;;) {
    // A broker that has not caught up may refuse the read (unknown topic) as well as answer without the change.
    let missing: string[];
    try {
      missing = notYetVisible(applied, await readTopics(admin, topics));
    } catch (error) {
      missing = [`(reading the topics failed: ${error instanceof Error ? error.message : String(error)})`];
    }
    if (missing.length === 0) return done;
    if (Date.now() >= deadline)
      throw new Error(
        `the cluster accepted the topic changes but its metadata does not show them after ${visibleWithinMs} ms: ${missing.join(', ')}`,
      );
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}

const USAGE = `usage: topics plan|apply [--stage local] [--topic NAME] [--allow-data-loss] [--allow-repartition]

  plan     read the cluster and print how it differs from custom.kafka in serverless.yml; changes nothing
  apply    create missing topics, add partitions, set configs; never deletes topics or shrinks partitions

  --stage STAGE          local (default: the stack's broker, replication 1) or an AWS stage (KAFKA_BROKERS = the
                         MSK IAM bootstrap brokers, AWS_REGION; MSK IAM auth, KAFKA_AUTH=none turns it off)
  --topic NAME           only this topic
  --allow-data-loss      let apply shorten retention or change cleanup.policy
  --allow-repartition    let apply add partitions (keys move: per-aggregate order breaks across the change)
  --dry-run              with apply: print the plan, change nothing (same as plan)
`;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      stage: { type: 'string', default: LOCAL_STAGE },
      topic: { type: 'string' },
      'allow-data-loss': { type: 'boolean' },
      'allow-repartition': { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [action, ...extra] = positionals;
  if ((action !== 'plan' && action !== 'apply') || extra.length > 0)
    throw new CliError(`topics: expected "plan" or "apply"\n\n${USAGE}`, 2);
  const stage = values.stage ?? LOCAL_STAGE;
  if (stage === LOCAL_STAGE) {
    await useLocalStackEnv();
  }
  let specs = topicSpecs(resolvedServerlessConfig(LOCAL_STAGE), stage);
  if (values.topic) {
    specs = specs.filter((spec) => spec.name === values.topic);
    if (specs.length === 0)
      throw new CliError(
        `topics: serverless.yml (custom.kafka.topics) defines no topic "${values.topic}"`,
        2,
      );
  }
  const settings = stageKafkaSettings(stage, 'topics', process.env);
  const admin = new Admin({ ...kafkaClientOptions(settings), timeout: 15_000 });
  try {
    const current = await readTopics(admin);
    if (values.topic) for (const name of [...current.keys()]) if (name !== values.topic) current.delete(name);
    const plan = planTopics(specs, current);
    const where = `${stage} (${settings.brokers.join(',')})${stage === LOCAL_STAGE ? ', one broker: replication 1, min.insync.replicas 1' : ''}`;
    if (action === 'plan' || values['dry-run']) {
      process.stdout.write(`${formatPlan(plan, `Plan for ${where} (nothing changed):`)}\n`);
      return 0;
    }
    const allowed = new Set<Guard>();
    if (values['allow-data-loss']) allowed.add('data-loss');
    if (values['allow-repartition']) allowed.add('repartition');
    const refused = refusal(plan, allowed);
    if (refused) {
      process.stdout.write(`${formatPlan(plan, `Plan for ${where}:`)}\n`);
      throw new CliError(refused, 1);
    }
    const done = await applyPlan(admin, plan);
    const lines = done.length === 0 ? ['  no changes'] : done.map((line) => `  applied: ${line}`);
    const drift = plan.changes.filter((c) => c.kind === 'drift').map((c) => `  ~ ${describe(c)}`);
    process.stdout.write(`Applied to ${where}:\n${[...lines, ...drift].join('\n')}\n`);
    return 0;
  } finally {
    await admin.close();
  }
}
