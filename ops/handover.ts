// `handover --topic T --from A --to B`: B's consumer group on T gets the offsets A's group has committed there,
// before B's ESM exists. A topic moving from one function to another (incident.detected from notifications to
// oncall-paging) would otherwise start B's new group at its startingPosition: TRIM_HORIZON reads the whole
// retention (records older than MaximumRecordAgeInSeconds go straight to the on-failure destination), LATEST
// skips what A had not reached. Lambda ignores startingPosition for a group with committed offsets, so B's ESM
// resumes where A stood; what both then see is the same record twice, which the functions' exactly-once
// designs absorb. Refused once B's group has offsets or members: its ESM already reads.
import '../shared/kafka/node20-polyfills';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { Admin } from '@platformatic/kafka';
import { committedOffsets } from '../local/esm/starting-position';
import { LOCAL_STAGE, resolvedServerlessConfig } from '../local/serverless-config';
import { CliError } from '../shared/cli-error';
import { kafkaClientOptions } from '../shared/kafka/client-options';
import { useLocalStackEnv } from './local-stack-env';
import { stageKafkaSettings } from './stage-kafka';

const { consumerGroupId } = createRequire(import.meta.url)('../serverless/consumers.cjs') as {
  consumerGroupId(service: string, stage: string, functionKey: string, topic: string): string;
};

export interface HandoverPlan {
  topic: string;
  fromGroup: string;
  toGroup: string;
  offsets: Map<number, bigint>;
}

/** What the handover would commit, or why it must not: read only. */
export async function planHandover(
  admin: Admin,
  topic: string,
  fromGroup: string,
  toGroup: string,
): Promise<HandoverPlan> {
  if (!(await admin.listTopics()).includes(topic))
    throw new CliError(`handover: the cluster has no topic ${topic}`, 2);
  const metadata = await admin.metadata({ topics: [topic] });
  const count = metadata.topics.get(topic)?.partitionsCount ?? 0;
  const partitions = Array.from({ length: count }, (_, p) => p);
  const members = (await admin.describeGroups({ groups: [toGroup] })).get(toGroup)?.members.size ?? 0;
  if (members > 0)
    throw new CliError(
      `handover: group ${toGroup} has ${members} member(s): its ESM already reads ${topic}; nothing changed`,
    );
  const existing = await committedOffsets(admin, toGroup, topic, partitions);
  if (existing.size > 0)
    throw new CliError(
      `handover: group ${toGroup} already has offsets on ${topic} (partitions ${[...existing.keys()].join(', ')}): ` +
        'its ESM resumes from them; nothing changed',
    );
  const offsets = await committedOffsets(admin, fromGroup, topic, partitions);
  const missing = partitions.filter((p) => !offsets.has(p));
  if (missing.length > 0)
    throw new CliError(
      `handover: group ${fromGroup} has no committed offset on ${topic} partition(s) ${missing.join(', ')}; ` +
        'nothing changed (with no position to take over, the new ESM starts at its startingPosition)',
    );
  return { topic, fromGroup, toGroup, offsets };
}

export async function applyHandover(admin: Admin, plan: HandoverPlan): Promise<void> {
  await admin.alterConsumerGroupOffsets({
    groupId: plan.toGroup,
    topics: [
      {
        name: plan.topic,
        partitionOffsets: [...plan.offsets].map(([partition, offset]) => ({ partition, offset })),
      },
    ],
  });
}

export function formatHandover(plan: HandoverPlan, dryRun: boolean): string {
  const offsets = [...plan.offsets].map(([p, o]) => `${p}:${o}`).join(',');
  return `${dryRun ? 'Would set' : 'Set'} group ${plan.toGroup} on ${plan.topic} to the offsets of ${plan.fromGroup}: ${offsets}${dryRun ? ' (dry run: nothing changed)' : ''}`;
}

const USAGE = `usage: npm run handover -- --topic <topic> --from <function> --to <function> [--stage local] [--dry-run]

  Before deploying a release that moves a topic from one function to another: gives the receiving function's
  consumer group the offsets the other's has committed on the topic, so that its new ESM resumes there instead
  of at its startingPosition. Refused once the receiving group has offsets or members.

  --topic <topic>        the topic that moves (e.g. incident.detected)
  --from <function>      the function that consumed it (e.g. notifications)
  --to <function>        the function that will (e.g. oncall-paging); must consume the topic in serverless.yml
  --stage <stage>        local (default: the stack's broker) or an AWS stage (KAFKA_BROKERS = the MSK IAM
                         bootstrap brokers; MSK IAM auth, KAFKA_AUTH=none turns it off)
  --dry-run              print the offsets it would set, change nothing
  --help                 this text
`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      topic: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      stage: { type: 'string', default: LOCAL_STAGE },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { topic, from, to } = values;
  if (!topic || !from || !to)
    throw new CliError('handover: --topic, --from and --to are required (npm run handover -- --help)', 2);
  const stage = values.stage ?? LOCAL_STAGE;
  const config = resolvedServerlessConfig(LOCAL_STAGE);
  const consumes = (config.functions?.[to]?.events ?? []).some(
    (event: { msk?: { topic?: string } }) => event.msk?.topic === topic,
  );
  if (!consumes) throw new CliError(`handover: serverless.yml has no function ${to} consuming ${topic}`, 2);
  if (stage === LOCAL_STAGE) {
    await useLocalStackEnv();
  }
  const service = typeof config.service === 'string' ? config.service : config.service.name;
  const admin = new Admin({
    ...kafkaClientOptions(stageKafkaSettings(stage, 'handover', process.env)),
    timeout: 15_000,
  });
  try {
    const plan = await planHandover(
      admin,
      topic,
      consumerGroupId(service, stage, from, topic),
      consumerGroupId(service, stage, to, topic),
    );
    if (!values['dry-run']) await applyHandover(admin, plan);
    process.stdout.write(`${formatHandover(plan, values['dry-run'] === true)}\n`);
    return 0;
  } finally {
    await admin.close();
  }
}
