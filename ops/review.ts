// `review list | resolve`: a reviewer's side of the human review (HITL) that incident-explanation opens. list reads
// the open reviews from the incident read model; resolve produces genai.hitl.resolved through the project's
// producer, so the decision is validated against its schema, audited by audit-append, and closes the review
// when incident-explanation consumes it (the command never writes the read model itself).
import '../shared/kafka/node20-polyfills';
import { randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';
import { DynamoDbReviewTasks } from '../functions/incident-explanation/dynamodb-stores';
import type { ReviewTask } from '../functions/incident-explanation/ports';
import { dynamoDocumentClient } from '../shared/aws-clients';
import { CliError, numberFlag } from '../shared/cli-error';
import type { OutgoingEvent } from '../shared/kafka/event-message';
import { EventProducer } from '../shared/kafka/producer';
import { useLocalStackEnv } from './local-stack-env';
import { stageKafkaSettings } from './stage-kafka';

const RESOLVED_TOPIC = 'genai.hitl.resolved';
export const REVIEW_SOURCE = 'mobility-events/review-cli';

/** The command's words for a decision, and the schema's (genai.hitl.resolved HitlDecision). */
export const DECISIONS = {
  approve: 'CONFIRMED',
  override: 'REJECTED',
  escalate: 'ESCALATED',
} as const;
export type DecisionWord = keyof typeof DECISIONS;

// Bounds on what a person types: they travel in a Kafka record and into the audit store.
const MAX_REVIEWER = 200;
const MAX_NOTE = 4000;

export interface ResolutionInput {
  decision: DecisionWord;
  reviewer: string;
  note?: string;
  now: Date;
  /** ce_id of the resolution: a new one per decision made. */
  id: string;
}

/** The genai.hitl.resolved event that closes `task` (key and subject: the incident id, as the review's events). */
export function resolutionEvent(task: ReviewTask, input: ResolutionInput): OutgoingEvent {
  return {
    topic: RESOLVED_TOPIC,
    key: task.incidentId,
    id: input.id,
    type: RESOLVED_TOPIC,
    source: REVIEW_SOURCE,
    subject: task.incidentId,
    time: input.now.toISOString(),
    data: {
      reviewId: task.reviewId,
      incidentId: task.incidentId,
      decision: DECISIONS[input.decision],
      reviewer: input.reviewer,
      comment: input.note ?? null,
      resolvedAt: input.now.getTime(),
    },
  };
}

export function formatReviews(tasks: ReviewTask[]): string {
  if (tasks.length === 0) return 'No open reviews.';
  const rows = tasks.map((t) => [t.openedAt ?? '-', t.incidentId, t.reviewId, t.reasons.join(',')]);
  const header = ['opened at', 'incident', 'review', 'reasons'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const USAGE = `usage: review list [--limit 50] [--json] [--stage local]
       review resolve <incidentId> --decision approve|override|escalate --reviewer NAME [--note TEXT]
                      [--stage local] [--dry-run]

  list      open human reviews, oldest first, from the incident read model (IncidentsTable, index OpenReviews)
  resolve   produce genai.hitl.resolved for the incident's open review: audit-append records the decision and
            incident-explanation closes the review when it consumes it
            approve = the explanation is right (CONFIRMED), override = it is wrong (REJECTED),
            escalate = hand it to the safety team (ESCALATED)

  --stage STAGE   local (default: the running stack) or an AWS stage: INCIDENTS_TABLE defaults to
                  mobility-events-<stage>-incidents; KAFKA_BROKERS = the MSK IAM bootstrap brokers, AWS_REGION
  --dry-run       print the event resolve would produce, produce nothing
`;

function text(flag: string, value: string | undefined, max: number): string | undefined {
  if (value === undefined) return undefined;
  const trimmed = value.trim();
  if (trimmed === '') throw new CliError(`review: --${flag} is empty`, 2);
  if (trimmed.length > max) throw new CliError(`review: --${flag} is longer than ${max} characters`, 2);
  return trimmed;
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      stage: { type: 'string', default: 'local' },
      limit: { type: 'string', default: '50' },
      json: { type: 'boolean' },
      decision: { type: 'string' },
      reviewer: { type: 'string' },
      note: { type: 'string' },
      'dry-run': { type: 'boolean' },
      help: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const [action, ...rest] = positionals;
  if (action !== 'list' && action !== 'resolve')
    throw new CliError(`review: expected "list" or "resolve"\n\n${USAGE}`, 2);

  // Usage first, so wrong flags are refused before anything is read.
  let resolution: Omit<ResolutionInput, 'now' | 'id'> | undefined;
  let incidentId: string | undefined;
  if (action === 'resolve') {
    if (rest.length !== 1) throw new CliError('review resolve: give exactly one incident id', 2);
    incidentId = rest[0] as string;
    const decision = values.decision;
    if (!decision || !(decision in DECISIONS))
      throw new CliError('review resolve: --decision must be approve, override or escalate', 2);
    const reviewer = text('reviewer', values.reviewer, MAX_REVIEWER);
    if (!reviewer) throw new CliError('review resolve: --reviewer NAME is required', 2);
    const note = text('note', values.note, MAX_NOTE);
    resolution = { decision: decision as DecisionWord, reviewer, ...(note ? { note } : {}) };
  } else if (rest.length > 0) {
    throw new CliError(`review list: unexpected argument "${rest[0]}"`, 2);
  }
  const limit = numberFlag(
    'limit',
    values.limit,
    (n) => Number.isInteger(n) && n > 0 && n <= 1000,
    'a whole number from 1 to 1000',
  ) as number;

  const stage = values.stage ?? 'local';
  if (stage === 'local') {
    await useLocalStackEnv();
  }
  const table = process.env.INCIDENTS_TABLE ?? `mobility-events-${stage}-incidents`;
  const reviews = new DynamoDbReviewTasks(dynamoDocumentClient(), table);

  if (action === 'list') {
    const open = await reviews.listOpen(limit);
    process.stdout.write(`${values.json ? JSON.stringify(open, null, 2) : formatReviews(open)}\n`);
    return 0;
  }

  const task = await reviews.get(incidentId as string);
  if (!task) throw new CliError(`review resolve: incident ${incidentId} has no review (table ${table})`);
  if (task.status !== 'OPEN') {
    throw new CliError(
      `review resolve: the review of incident ${incidentId} is already resolved (${task.decision} by ${task.reviewer} at ${task.resolvedAt})`,
    );
  }
  const event = resolutionEvent(task, {
    ...(resolution as ResolutionInput),
    now: new Date(),
    id: randomUUID(),
  });
  if (values['dry-run']) {
    process.stdout.write(`Would produce (dry run, nothing sent):\n${JSON.stringify(event, null, 2)}\n`);
    return 0;
  }
  const producer = EventProducer.connect(stageKafkaSettings(stage, 'review', process.env));
  try {
    await producer.publish([event]);
  } finally {
    await producer.close();
  }
  process.stdout.write(
    `Produced ${RESOLVED_TOPIC} ${event.id} (${event.data.decision}) for review ${task.reviewId} of incident ${task.incidentId}; ` +
      'incident-explanation closes the review when it consumes it.\n',
  );
  return 0;
}
