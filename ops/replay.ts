// Replays a function's topic by resetting its ESM consumer group, the same way against AWS and locally:
// find the ESM through the Lambda API, disable it, wait until its group is empty, reset the group's offsets
// (Kafka admin API), enable it again.
//
//   npm run replay -- --function billing (--from-earliest | --from-timestamp <iso|epoch s> | --offsets 0:10,1:20)
//       [--topic payment.failed] [--dry-run] [--rebuild] [--stage local] [--lambda-endpoint URL] [--wait-timeout 120]
import '../shared/kafka/node20-polyfills';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import {
  type EventSourceMappingConfiguration,
  type LambdaClient,
  ListEventSourceMappingsCommand,
  UpdateEventSourceMappingCommand,
} from '@aws-sdk/client-lambda';
import { Admin, ListOffsetTimestamps } from '@platformatic/kafka';
import { partitionLags } from '../local/esm/lag';
import { offsetsAt } from '../local/esm/starting-position';
import { CliError, numberFlag } from '../shared/cli-error';
import { type KafkaConnectionSettings, kafkaClientOptions } from '../shared/kafka/client-options';
import type { ReadModelRebuilder } from '../shared/read-model-rebuilder';
import { lambdaClientFor } from './lambda-client';
import { useLocalStackEnv } from './local-stack-env';
import { stageKafkaSettings } from './stage-kafka';

const rebuilders = new Map<string, ReadModelRebuilder>();

export function registerReadModelRebuilder(rebuilder: ReadModelRebuilder): void {
  rebuilders.set(rebuilder.functionKey, rebuilder);
}

export type ReplayFrom =
  | { kind: 'earliest' }
  | { kind: 'timestamp'; at: Date }
  | { kind: 'offsets'; offsets: Map<number, bigint> };

export interface ReplayOptions {
  lambda: LambdaClient;
  brokers: string[];
  /** MSK IAM authentication for the admin client (an AWS stage); absent: plaintext, as the local broker. */
  iam?: KafkaConnectionSettings['iam'];
  /** Function name (or ARN) as the Lambda API knows it. */
  functionName: string;
  /** Function key for --rebuild; defaults to functionName. */
  functionKey?: string;
  topic?: string;
  from: ReplayFrom;
  dryRun?: boolean;
  rebuild?: boolean;
  waitTimeoutMs?: number;
  log?: (message: string) => void;
}

export interface PartitionReset {
  partition: number;
  oldOffset: bigint | undefined;
  newOffset: bigint;
  recordsToReprocess: bigint;
}

export interface MappingReplay {
  uuid: string;
  topic: string;
  consumerGroupId: string;
  partitions: PartitionReset[];
  /**
   * The ESM's MaximumRecordAgeInSeconds when the replay may reach records older than that: Lambda sends those to
   * the on-failure destination, never to the function.
   */
  ageLimitSeconds?: number;
}

export async function replay(options: ReplayOptions): Promise<MappingReplay[]> {
  const log = options.log ?? ((message: string) => console.error(message));
  const mappings = await findMappings(options.lambda, options.functionName, options.topic);
  const admin = new Admin(
    kafkaClientOptions({
      clientId: 'replay',
      brokers: options.brokers,
      ...(options.iam ? { iam: options.iam } : {}),
    }),
  );
  try {
    const plans = await Promise.all(mappings.map((m) => planFor(admin, m, options.from)));
    const cut = plans.filter((plan) => plan.ageLimitSeconds !== undefined);
    if (options.rebuild && cut.length > 0) {
      // The read model is cleared first: records that never reach the function would be missing from it.
      throw new CliError(
        `--rebuild: ${cut.map((p) => `ESM ${p.uuid} (${p.topic})`).join(', ')} would send records older than ` +
          `its MaximumRecordAgeInSeconds (${cut[0]?.ageLimitSeconds} s) to the on-failure destination instead of ` +
          'the function, and the rebuilt read model would miss them. Set it to -1 for the rebuild and restore it ' +
          'afterwards (AWS: aws lambda update-event-source-mapping --uuid <uuid> --maximum-record-age-in-seconds ' +
          '-1; locally: custom.esm in serverless.yml). Nothing was changed.',
        2,
      );
    }
    if (options.dryRun) return plans;
    const rebuilder = options.rebuild ? rebuilderFor(options.functionKey ?? options.functionName) : undefined;
    for (const plan of plans) {
      log(`disabling ESM ${plan.uuid} (${plan.topic}, group ${plan.consumerGroupId})`);
      await setEnabled(options.lambda, plan.uuid, false);
      try {
        await waitUntilGroupEmpty(admin, plan.consumerGroupId, options.waitTimeoutMs ?? 120_000);
      } catch (error) {
        await setEnabled(options.lambda, plan.uuid, true);
        throw error;
      }
    }
    try {
      if (rebuilder) {
        log(`clearing the read model: ${rebuilder.describe}`);
        await rebuilder.clear();
      }
      for (const plan of plans) {
        // Committed offsets may have moved between planning and disabling: plan again on the idle group.
        const fresh = await planFor(
          admin,
          mappings.find((m) => m.UUID === plan.uuid) as Mapping,
          options.from,
        );
        plan.partitions = fresh.partitions;
        await admin.alterConsumerGroupOffsets({
          groupId: plan.consumerGroupId,
          topics: [
            {
              name: plan.topic,
              partitionOffsets: plan.partitions.map((p) => ({ partition: p.partition, offset: p.newOffset })),
            },
          ],
        });
      }
    } finally {
      for (const plan of plans) {
        log(`enabling ESM ${plan.uuid}`);
        await setEnabled(options.lambda, plan.uuid, true);
      }
    }
    return plans;
  } finally {
    await admin.close();
  }
}

export interface Mapping {
  UUID: string;
  topic: string;
  consumerGroupId: string;
  maximumRecordAgeInSeconds: number;
}

export async function findMappings(
  lambda: LambdaClient,
  functionName: string,
  topic?: string,
): Promise<Mapping[]> {
  const found: EventSourceMappingConfiguration[] = [];
  let marker: string | undefined;
  do {
    const page = await lambda.send(
      new ListEventSourceMappingsCommand({
        FunctionName: functionName,
        ...(marker ? { Marker: marker } : {}),
      }),
    );
    found.push(...(page.EventSourceMappings ?? []));
    marker = page.NextMarker;
  } while (marker);
  const kafka = found
    .filter((m) => m.UUID && m.Topics?.[0])
    .map((m) => ({
      UUID: m.UUID as string,
      topic: m.Topics?.[0] as string,
      maximumRecordAgeInSeconds: m.MaximumRecordAgeInSeconds ?? -1,
      // Without a configured group id Lambda uses the ESM's UUID.
      consumerGroupId:
        m.AmazonManagedKafkaEventSourceConfig?.ConsumerGroupId ??
        m.SelfManagedKafkaEventSourceConfig?.ConsumerGroupId ??
        (m.UUID as string),
    }))
    .filter((m) => !topic || m.topic === topic);
  if (kafka.length === 0) {
    throw new CliError(
      `No Kafka event source mapping for function ${functionName}${topic ? ` and topic ${topic}` : ''}`,
    );
  }
  return kafka;
}

async function planFor(admin: Admin, mapping: Mapping, from: ReplayFrom): Promise<MappingReplay> {
  const lags = await partitionLags(admin, mapping.consumerGroupId, mapping.topic);
  const partitions = lags.map((l) => l.partition);
  const targets =
    from.kind === 'earliest'
      ? await offsetsAt(admin, mapping.topic, partitions, ListOffsetTimestamps.EARLIEST)
      : from.kind === 'timestamp'
        ? await offsetsAt(admin, mapping.topic, partitions, BigInt(from.at.getTime()))
        : from.offsets;
  const resets: PartitionReset[] = [];
  for (const lag of lags) {
    const target = targets.get(lag.partition);
    // Explicit offsets may name only some partitions: the others keep their position.
    if (target === undefined) continue;
    if (target < lag.earliest || target > lag.latest) {
      throw new CliError(
        `Offset ${target} for ${mapping.topic}-${lag.partition} is outside ${lag.earliest}..${lag.latest}`,
      );
    }
    resets.push({
      partition: lag.partition,
      oldOffset: lag.committed,
      newOffset: target,
      recordsToReprocess: lag.latest - target,
    });
  }
  // Whether a partition restarts before its first record young enough for the ESM's MaximumRecordAgeInSeconds
  // (Kafka finds that offset by time, as for --from-timestamp).
  const age = mapping.maximumRecordAgeInSeconds;
  let reachesPastAge = false;
  if (age !== -1 && resets.length > 0) {
    const young = await offsetsAt(
      admin,
      mapping.topic,
      resets.map((r) => r.partition),
      BigInt(Date.now() - age * 1000),
    );
    reachesPastAge = resets.some((r) => r.newOffset < (young.get(r.partition) ?? 0n));
  }
  return {
    uuid: mapping.UUID,
    topic: mapping.topic,
    consumerGroupId: mapping.consumerGroupId,
    partitions: resets,
    ...(reachesPastAge ? { ageLimitSeconds: age } : {}),
  };
}

async function setEnabled(lambda: LambdaClient, uuid: string, enabled: boolean): Promise<void> {
  await lambda.send(new UpdateEventSourceMappingCommand({ UUID: uuid, Enabled: enabled }));
}

/** Offsets of a group with members cannot be reset; Lambda may take a while to let go. */
async function waitUntilGroupEmpty(admin: Admin, groupId: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const group = (await admin.describeGroups({ groups: [groupId] })).get(groupId);
    const members = group?.members.size ?? 0;
    if (members === 0) return;
    if (Date.now() > deadline) {
      throw new CliError(
        `Consumer group ${groupId} still has ${members} member(s) after ${Math.round(timeoutMs / 1000)} s ` +
          `(state ${group?.state}). The ESM may still be disabling (AWS can take about 90 s) or another ` +
          'consumer uses this group. Nothing was reset; the ESM was enabled again. Retry with a longer --wait-timeout.',
      );
    }
    await sleep(500);
  }
}

function rebuilderFor(functionKey: string): ReadModelRebuilder {
  const rebuilder = rebuilders.get(functionKey);
  if (!rebuilder) {
    const known = [...rebuilders.keys()].join(', ') || 'none registered';
    throw new CliError(`--rebuild: no ReadModelRebuilder for ${functionKey} (known: ${known})`);
  }
  return rebuilder;
}

export function parseOffsets(spec: string): Map<number, bigint> {
  const offsets = new Map<number, bigint>();
  for (const pair of spec.split(',')) {
    const match = /^(\d+):(\d+)$/.exec(pair.trim());
    if (!match)
      throw new CliError(`--offsets expects partition:offset pairs like 0:10,1:20, got "${pair}"`, 2);
    offsets.set(Number(match[1]), BigInt(match[2] as string));
  }
  return offsets;
}

export function formatReplay(plans: MappingReplay[], dryRun: boolean): string {
  const lines = [dryRun ? 'Plan (dry run, nothing changed):' : 'Replayed:'];
  for (const plan of plans) {
    lines.push(`ESM ${plan.uuid}  topic ${plan.topic}  group ${plan.consumerGroupId}`);
    lines.push('  partition  old offset  new offset  records to reprocess');
    for (const p of plan.partitions) {
      lines.push(
        `  ${String(p.partition).padStart(9)}  ${String(p.oldOffset ?? '-').padStart(10)}  ${String(p.newOffset).padStart(10)}  ${String(p.recordsToReprocess).padStart(20)}`,
      );
    }
    if (plan.ageLimitSeconds !== undefined) {
      lines.push(
        `  note: records older than ${plan.ageLimitSeconds} s (the ESM's MaximumRecordAgeInSeconds) go to the ` +
          'on-failure destination, not the function; set it to -1 to replay them, and restore it afterwards',
      );
    }
  }
  return lines.join('\n');
}

export const USAGE = `usage: npm run replay -- --function <key> (--from-earliest | --from-timestamp <time> | --offsets <p:o,...>)
       [--topic <topic>] [--dry-run] [--rebuild] [--stage local] [--lambda-endpoint <url>] [--wait-timeout 120]

Replays what the function's ESMs consume: finds each ESM through the Lambda API, disables it, waits until its
consumer group is empty, resets the group's offsets, enables it again. The same against AWS and locally.

  --function <key>         the function (e.g. billing), required
  --from-earliest          from the start of each partition
  --from-timestamp <time>  from the first record at or after (ISO 8601 or epoch seconds)
  --offsets <p:o,...>      from these offsets (0:10,1:20); partitions not named keep their position
  --topic <topic>          only the ESM of this topic (default: all of the function's)
  --dry-run                print the plan (old and new offset, records to reprocess per partition); change nothing
  --rebuild                clear the read model first, while the ESM is disabled (billing, demand-prediction-update)
  --stage <stage>          default local (the running \`npm run dev\`); another stage is AWS
  --lambda-endpoint <url>  Lambda API endpoint (default: AWS, or the local one of \`npm run dev\`)
  --wait-timeout <s>       how long to wait for the group to empty (default 120)
  --help                   this text

exit: 0 replayed (or planned), 1 failed, 2 wrong usage`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      help: { type: 'boolean' },
      function: { type: 'string' },
      topic: { type: 'string' },
      'from-earliest': { type: 'boolean' },
      'from-timestamp': { type: 'string' },
      offsets: { type: 'string' },
      'dry-run': { type: 'boolean' },
      rebuild: { type: 'boolean' },
      stage: { type: 'string', default: 'local' },
      'lambda-endpoint': { type: 'string' },
      'wait-timeout': { type: 'string', default: '120' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!values.function) throw new CliError('--function <key> is required (e.g. --function billing)', 2);
  const waitTimeoutSeconds = numberFlag(
    'wait-timeout',
    values['wait-timeout'],
    (n) => n > 0 && Number.isFinite(n),
    'a number of seconds above 0',
  ) as number;
  const stage = values.stage ?? 'local';
  if (stage === 'local') {
    await useLocalStackEnv();
  }
  if (values.rebuild) await registerProjectRebuilders(stage);
  const from = replayFrom(values);
  const kafka = stageKafkaSettings(stage, 'replay', process.env);
  const lambda = await lambdaClientFor(stage, values['lambda-endpoint']);
  const plans = await replay({
    lambda,
    brokers: kafka.brokers,
    ...(kafka.iam ? { iam: kafka.iam } : {}),
    functionName: `mobility-events-${stage}-${values.function}`,
    functionKey: values.function,
    ...(values.topic ? { topic: values.topic } : {}),
    from,
    dryRun: values['dry-run'] ?? false,
    rebuild: values.rebuild ?? false,
    waitTimeoutMs: waitTimeoutSeconds * 1000,
  });
  process.stdout.write(`${formatReplay(plans, values['dry-run'] ?? false)}\n`);
  return 0;
}

/** The read models the project can rebuild; table names as serverless.yml names them, or from the env. */
async function registerProjectRebuilders(stage: string): Promise<void> {
  const { DynamoDBClient } = await import('@aws-sdk/client-dynamodb');
  const { DynamoDBDocumentClient } = await import('@aws-sdk/lib-dynamodb');
  const { billingReadModelRebuilder } = await import('../functions/billing/rebuild');
  const { demandReadModelRebuilder } = await import('../functions/demand-prediction-update/rebuild');
  const client = DynamoDBDocumentClient.from(
    new DynamoDBClient({ region: process.env.AWS_REGION ?? 'eu-west-1' }),
  );
  const table = (suffix: string) => `mobility-events-${stage}-${suffix}`;
  registerReadModelRebuilder(
    billingReadModelRebuilder(client, process.env.BILLING_TABLE ?? table('billing')),
  );
  registerReadModelRebuilder(demandReadModelRebuilder(client, process.env.DEMAND_TABLE ?? table('demand')));
}

function replayFrom(values: {
  'from-earliest'?: boolean;
  'from-timestamp'?: string;
  offsets?: string;
}): ReplayFrom {
  const chosen = [values['from-earliest'], values['from-timestamp'], values.offsets].filter(Boolean).length;
  if (chosen !== 1)
    throw new CliError('Choose exactly one of --from-earliest, --from-timestamp, --offsets', 2);
  if (values['from-earliest']) return { kind: 'earliest' };
  if (values.offsets) return { kind: 'offsets', offsets: parseOffsets(values.offsets) };
  const raw = values['from-timestamp'] as string;
  const at = /^\d+$/.test(raw) ? new Date(Number(raw) * 1000) : new Date(raw);
  if (Number.isNaN(at.getTime()))
    throw new CliError(`--from-timestamp: cannot read "${raw}" (ISO 8601 or epoch seconds)`, 2);
  return { kind: 'timestamp', at };
}
