// `npm run redrive`: sends the records of failed-records objects back to their function (Lambda Invoke) or onto
// their topic (--to-topic), and tags each object with the outcome, against AWS or locally. See README "Redrive".
import { parseArgs } from 'node:util';
import type { LambdaClient } from '@aws-sdk/client-lambda';
import { ListEventSourceMappingsCommand } from '@aws-sdk/client-lambda';
import { CliError } from '../../shared/cli-error';
import { useLocalStackEnv } from '../local-stack-env';
import { describeOffsets, FAILURE_CONDITIONS, type FailureCondition } from './failed-batch';
import {
  AT_TAG,
  type BatchOutcome,
  executeRedrive,
  planRedrive,
  type RedrivePlan,
  type RedriveTarget,
  topicsOf,
} from './redrive';

export const USAGE = `usage: npm run redrive -- --function <key> [selection] [--list | --dry-run] [--to-topic <topic>]

Sends the records of the function's failed-records objects (the S3 on-failure destination of its ESMs) back
to the function with Lambda Invoke, in their original MSK event shape, or with --to-topic produces them
again with their original key, headers and value. Each object is tagged with the outcome
(redrive-status=redriven | failed-again); objects already redriven are skipped.

selection (all optional, combined):
  --esm <uuid>             one of the function's event source mappings
  --topic <topic>          objects with records of this topic
  --partition <n>          ... and of this partition
  --from <time>            failed at or after (ISO 8601 or epoch seconds)
  --to <time>              failed before
  --reason <condition>     ${FAILURE_CONDITIONS.join(' | ')}

  --list                   list the selected objects with their redrive status; change nothing
  --dry-run                print what a redrive would send where; change nothing
  --to-topic <topic>       produce to this topic (it must be the records' own topic) instead of invoking
  --concurrency <n>        objects redriven at once, never two of one partition (default 4)
  --stage <stage>          default local (the running \`npm run dev\`); another stage is AWS
  --bucket <name>          failed-records bucket (required for a deployed stage; local: the stack's)
  --prefix <prefix>        where the ESMs write (default aws/lambda/)
  --lambda-endpoint <url>  Lambda API endpoint (default: AWS, or the local one of \`npm run dev\`)
  --json                   machine-readable output
  --help                   this text

exit: 0 all redriven (or nothing to do), 1 some failed again or could not be read, 2 wrong usage`;

export interface RedriveOptions {
  functionKey: string;
  stage: string;
  esm?: string;
  topic?: string;
  partition?: number;
  from?: Date;
  to?: Date;
  reason?: FailureCondition;
  list: boolean;
  dryRun: boolean;
  toTopic?: string;
  bucket?: string;
  prefix: string;
  lambdaEndpoint?: string;
  json: boolean;
  concurrency: number;
}

const usage = (message: string) => new CliError(`redrive: ${message} (npm run redrive -- --help)`, 2);

/** The options, or 'help'; wrong usage is a CliError with exit code 2 naming the flag. */
export function parseRedriveArgs(args: string[]): RedriveOptions | 'help' {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(args);
  } catch (error) {
    throw usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.help) return 'help';
  if (positionals.length > 0) throw usage(`unexpected argument "${positionals[0]}"`);
  if (!values.function) throw usage('--function <key> is required (e.g. --function billing)');
  if (values.list && (values['dry-run'] || values['to-topic']))
    throw usage('--list only lists: drop --dry-run and --to-topic');
  const partition = values.partition === undefined ? undefined : Number(values.partition);
  if (
    partition !== undefined &&
    (!Number.isInteger(partition) || partition < 0 || values.partition?.trim() === '')
  )
    throw usage(`--partition must be a partition number (0 or more), got "${values.partition}"`);
  if (values.reason !== undefined && !FAILURE_CONDITIONS.includes(values.reason as FailureCondition))
    throw usage(`--reason must be one of ${FAILURE_CONDITIONS.join(', ')}, got "${values.reason}"`);
  const from = values.from === undefined ? undefined : parseTime('from', values.from);
  const to = values.to === undefined ? undefined : parseTime('to', values.to);
  if (from && to && from >= to)
    throw usage(`--from (${from.toISOString()}) must be before --to (${to.toISOString()})`);
  for (const flag of ['topic', 'to-topic'] as const) {
    const topic = values[flag];
    if (topic !== undefined && !/^[A-Za-z0-9._-]{1,249}$/.test(topic))
      throw usage(`--${flag} must be a Kafka topic name (letters, digits, . _ -), got "${topic}"`);
  }
  const concurrency = Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw usage(`--concurrency must be a whole number from 1 to 64, got "${values.concurrency}"`);
  if (values.esm !== undefined && !/^[0-9a-f-]{36}$/i.test(values.esm))
    throw usage(`--esm must be an event source mapping UUID, got "${values.esm}"`);
  return {
    functionKey: values.function,
    stage: values.stage,
    ...(values.esm ? { esm: values.esm.toLowerCase() } : {}),
    ...(values.topic ? { topic: values.topic } : {}),
    ...(partition === undefined ? {} : { partition }),
    ...(from ? { from } : {}),
    ...(to ? { to } : {}),
    ...(values.reason ? { reason: values.reason as FailureCondition } : {}),
    list: values.list ?? false,
    dryRun: values['dry-run'] ?? false,
    ...(values['to-topic'] ? { toTopic: values['to-topic'] } : {}),
    ...(values.bucket ? { bucket: values.bucket } : {}),
    prefix: values.prefix,
    ...(values['lambda-endpoint'] ? { lambdaEndpoint: values['lambda-endpoint'] } : {}),
    json: values.json ?? false,
    concurrency,
  };
}

function parse(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    options: {
      function: { type: 'string' },
      esm: { type: 'string' },
      topic: { type: 'string' },
      partition: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      reason: { type: 'string' },
      list: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
      'to-topic': { type: 'string' },
      stage: { type: 'string', default: 'local' },
      bucket: { type: 'string' },
      prefix: { type: 'string', default: 'aws/lambda/' },
      'lambda-endpoint': { type: 'string' },
      json: { type: 'boolean' },
      concurrency: { type: 'string', default: '4' },
      help: { type: 'boolean' },
    },
  });
}

function parseTime(flag: string, raw: string): Date {
  const at = /^\d+$/.test(raw) ? new Date(Number(raw) * 1000) : new Date(raw);
  if (raw.trim() === '' || Number.isNaN(at.getTime()))
    throw usage(`--${flag}: cannot read "${raw}" (ISO 8601 or epoch seconds)`);
  return at;
}

/**
 * Refuses --to-topic when a selected record comes from another topic: its consumers would read an event type
 * they do not expect, as poison.
 */
export function checkTopicTarget(plan: RedrivePlan, toTopic: string): void {
  const others = topicsOf(plan).filter((topic) => topic !== toTopic);
  if (others.length > 0)
    throw new CliError(
      `redrive: --to-topic ${toTopic}, but the selected objects hold records of ${others.join(', ')}: ` +
        'select one topic with --topic and produce to that topic',
      2,
    );
}

export function formatPlan(
  plan: RedrivePlan,
  target: RedriveTarget,
  options: { dryRun: boolean; list: boolean; consumers?: string[] },
): string {
  const lines: string[] = [];
  const via = target.kind === 'invoke' ? `invoke ${target.functionName}` : `produce to ${target.topic}`;
  const header = options.list
    ? `${plan.pending.length + plan.redriven.length} object(s)`
    : `${plan.pending.length} object(s) to redrive (${via}), ${plan.redriven.length} already redriven (skipped)`;
  lines.push(options.dryRun ? `Dry run, nothing changed: ${header}` : header);
  const rows = options.list ? [...plan.pending, ...plan.redriven] : plan.pending;
  for (const { batch, status, tags } of rows) {
    const state = status ? `${status}${tags[AT_TAG] ? ` ${tags[AT_TAG]}` : ''}` : 'not redriven';
    lines.push(
      `  ${batch.key}\n    ${batch.condition}  failed ${batch.failedAt.toISOString()}  ${batch.recordCount} record(s)  ${describeOffsets(batch.event)}  [${state}]`,
    );
  }
  for (const unreadable of plan.unreadable) lines.push(`  unreadable: ${unreadable.message}`);
  if (target.kind === 'topic' && options.consumers?.length && plan.pending.length > 0 && !options.list) {
    lines.push(
      `note: every consumer of ${target.topic} receives these records again: ${options.consumers.join(', ')}`,
    );
  }
  return lines.join('\n');
}

export function formatOutcomes(outcomes: BatchOutcome[]): string {
  const lines = outcomes.map((o) => {
    const head =
      o.status === 'redriven'
        ? `  redriven      ${o.key}: ${o.succeeded} record(s)`
        : `  failed again  ${o.key}: ${o.failedAgain.length} of ${o.records} record(s), ${o.succeeded} succeeded`;
    const failures = o.failedAgain.map((f) => `\n    ${f.partition}@${f.offset}: ${f.reason}`).join('');
    const tag = o.tagError ? `\n    not tagged (${o.tagError}): a later redrive sends it again` : '';
    return `${head}${failures}${tag}`;
  });
  const redriven = outcomes.filter((o) => o.status === 'redriven').length;
  lines.push(`${redriven} redriven, ${outcomes.length - redriven} failed again`);
  return lines.join('\n');
}

/**
 * ESMs (function and UUID) on the records' cluster that consume `topic`: they all see produced records. Other
 * clusters' ESMs (another stage on the same topic names) are not asked about.
 */
async function consumersOf(lambda: LambdaClient, plan: RedrivePlan, topic: string): Promise<string[]> {
  const consumers: string[] = [];
  const clusters = [...new Set(plan.pending.map((p) => p.batch.event.eventSourceArn))];
  for (const cluster of clusters) {
    let marker: string | undefined;
    do {
      const page = await lambda.send(
        new ListEventSourceMappingsCommand({
          EventSourceArn: cluster,
          ...(marker ? { Marker: marker } : {}),
        }),
      );
      for (const m of page.EventSourceMappings ?? []) {
        if (m.Topics?.includes(topic))
          consumers.push(`${m.FunctionArn?.split(':function:')[1] ?? '?'} (ESM ${m.UUID})`);
      }
      marker = page.NextMarker;
    } while (marker);
  }
  return consumers;
}

export async function run(args: string[]): Promise<number> {
  const options = parseRedriveArgs(args);
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (options.stage === 'local') {
    await useLocalStackEnv();
  }
  // A deployed stage names its bucket explicitly: FAILED_RECORDS_BUCKET in the shell is the local stack's, and
  // records read from a bucket of that name elsewhere would be sent to this stage's functions.
  const bucket =
    options.bucket ?? (options.stage === 'local' ? process.env.FAILED_RECORDS_BUCKET : undefined);
  if (!bucket)
    throw usage(`--stage ${options.stage}: pass --bucket (the stack's FailedRecordsBucketName output)`);
  const [{ lambdaClientFor }, { findMappings }, { stageKafkaSettings }, { operationsS3Client }] =
    await Promise.all([
      import('../lambda-client'),
      import('../replay'),
      import('../stage-kafka'),
      import('../s3-client'),
    ]);
  const { s3FailedBatchStore } = await import('./s3-failed-batch-store');
  const lambda = await lambdaClientFor(options.stage, options.lambdaEndpoint);
  const functionName = `mobility-events-${options.stage}-${options.functionKey}`;
  const mappings = await findMappings(lambda, functionName, options.topic);
  const esmUuids = mappings.map((m) => m.UUID).filter((uuid) => !options.esm || uuid === options.esm);
  if (esmUuids.length === 0)
    throw usage(
      `--esm ${options.esm} is not an event source mapping of ${functionName}${options.topic ? ` on ${options.topic}` : ''}`,
    );
  const s3 = operationsS3Client();
  const store = s3FailedBatchStore(s3, bucket);
  const plan = await planRedrive(
    store,
    {
      esmUuids,
      functionName,
      ...(options.topic ? { topic: options.topic } : {}),
      ...(options.partition === undefined ? {} : { partition: options.partition }),
      ...(options.from ? { from: options.from } : {}),
      ...(options.to ? { to: options.to } : {}),
      ...(options.reason ? { reason: options.reason } : {}),
    },
    options.prefix,
  );
  const target: RedriveTarget = options.toTopic
    ? { kind: 'topic', topic: options.toTopic }
    : { kind: 'invoke', functionName };
  if (options.toTopic) checkTopicTarget(plan, options.toTopic);
  const consumers =
    options.toTopic && !options.list ? await consumersOf(lambda, plan, options.toTopic) : undefined;
  const print = (text: string) => process.stdout.write(`${text}\n`);
  if (options.list || options.dryRun || plan.pending.length === 0) {
    if (options.json)
      print(JSON.stringify({ plan: planJson(plan), ...(consumers ? { consumers } : {}) }, null, 2));
    else
      print(
        formatPlan(plan, target, {
          dryRun: options.dryRun,
          list: options.list,
          ...(consumers ? { consumers } : {}),
        }),
      );
    return plan.unreadable.length > 0 ? 1 : 0;
  }
  if (!options.json)
    print(formatPlan(plan, target, { dryRun: false, list: false, ...(consumers ? { consumers } : {}) }));
  const producer = options.toTopic
    ? (await import('./kafka-record-producer')).kafkaRecordProducer(
        stageKafkaSettings(options.stage, 'redrive', process.env),
      )
    : undefined;
  const { lambdaInvoker } = await import('./lambda-invoker');
  try {
    const outcomes = await executeRedrive(
      plan,
      target,
      { store, invoker: lambdaInvoker(lambda), ...(producer ? { producer } : {}) },
      options.concurrency,
    );
    if (options.json) print(JSON.stringify({ plan: planJson(plan), outcomes }, null, 2));
    else print(formatOutcomes(outcomes));
    const clean =
      outcomes.every((o) => o.status === 'redriven' && !o.tagError) && plan.unreadable.length === 0;
    return clean ? 0 : 1;
  } finally {
    await producer?.close();
    s3.destroy();
  }
}

function planJson(plan: RedrivePlan) {
  const row = ({ batch, status, tags }: RedrivePlan['pending'][number]) => ({
    key: batch.key,
    condition: batch.condition,
    failedAt: batch.failedAt.toISOString(),
    records: batch.recordCount,
    offsets: describeOffsets(batch.event),
    status: status ?? 'not-redriven',
    tags,
  });
  return {
    pending: plan.pending.map(row),
    redriven: plan.redriven.map(row),
    unreadable: plan.unreadable.map((u) => ({ key: u.key, reason: u.message })),
  };
}
