// `npm run esm:status`: lag per ESM and partition, in records (latest offset minus the group's committed offset)
// and in seconds (now minus the broker's timestamp of the oldest record not consumed yet), the figures operators
// alarm on. Reads the ESMs from serverless.yml and the broker from the running stack.
import '../shared/kafka/node20-polyfills';
import { parseArgs } from 'node:util';
import { Admin } from '@platformatic/kafka';
import { type EsmDefinition, loadEsmDefinitions } from './esm/config';
import { formatTable } from './esm/dashboard';
import { lagSeconds, partitionLags } from './esm/lag';
import { RecordTimes } from './esm/record-times';
import { readStackState } from './stack/index';

/** The status table: one row per ESM and partition, and the total lag and the largest lag in seconds under it. */
export async function statusReport(
  admin: Admin,
  definitions: Pick<EsmDefinition, 'functionKey' | 'topic' | 'consumerGroupId'>[],
  times: RecordTimes,
  now: () => number = Date.now,
): Promise<string> {
  const rows = [['function', 'topic', 'group', 'partition', 'committed', 'latest', 'lag', 'lag s']];
  let total = 0n;
  let oldest: number | undefined;
  for (const d of definitions) {
    for (const lag of await partitionLags(admin, d.consumerGroupId, d.topic, times, now)) {
      total += lag.lag;
      if (lag.ageMs !== undefined) oldest = Math.max(oldest ?? 0, lag.ageMs);
      rows.push([
        d.functionKey,
        d.topic,
        d.consumerGroupId,
        String(lag.partition),
        lag.committed === undefined ? '-' : String(lag.committed),
        String(lag.latest),
        String(lag.lag),
        lagSeconds(lag.ageMs),
      ]);
    }
  }
  return `${formatTable(rows)}\n\ntotal lag ${total}, oldest unconsumed record ${lagSeconds(oldest)} s\n`;
}

export const USAGE = `usage: npm run esm:status

Consumer lag per ESM and partition of serverless.yml, in records (latest offset minus the group's committed offset)
and in seconds (now minus the broker's timestamp of the oldest record not consumed yet), from the running stack's
broker (or KAFKA_BROKERS).

  --help                   this text`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean' } } });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const brokers = (
    process.env.KAFKA_BROKERS ??
    readStackState()?.env.KAFKA_BROKERS ??
    '127.0.0.1:9092'
  ).split(',');
  const definitions = await loadEsmDefinitions();
  const admin = new Admin({ clientId: 'esm-status', bootstrapBrokers: brokers });
  const times = new RecordTimes(brokers);
  try {
    process.stdout.write(await statusReport(admin, definitions, times));
  } finally {
    await Promise.all([admin.close(), times.close()]);
  }
  return 0;
}
