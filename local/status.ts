// `npm run esm:status`: lag per ESM and partition (latest offset minus the group's committed offset), the
// figure operators alarm on. Reads the ESMs from serverless.yml and the broker from the running stack.
import '../shared/kafka/node20-polyfills';
import { Admin } from '@platformatic/kafka';
import { type EsmDefinition, loadEsmDefinitions } from './esm/config';
import { formatTable } from './esm/dashboard';
import { partitionLags } from './esm/lag';
import { readStackState } from './stack/index';

/** The status table: one row per ESM and partition, and the total lag under it. */
export async function statusReport(
  admin: Admin,
  definitions: Pick<EsmDefinition, 'functionKey' | 'topic' | 'consumerGroupId'>[],
): Promise<string> {
  const rows = [['function', 'topic', 'group', 'partition', 'committed', 'latest', 'lag']];
  let total = 0n;
  for (const d of definitions) {
    for (const lag of await partitionLags(admin, d.consumerGroupId, d.topic)) {
      total += lag.lag;
      rows.push([
        d.functionKey,
        d.topic,
        d.consumerGroupId,
        String(lag.partition),
        lag.committed === undefined ? '-' : String(lag.committed),
        String(lag.latest),
        String(lag.lag),
      ]);
    }
  }
  return `${formatTable(rows)}\n\ntotal lag ${total}\n`;
}

export async function run(_args: string[]): Promise<number> {
  const brokers = (
    process.env.KAFKA_BROKERS ??
    readStackState()?.env.KAFKA_BROKERS ??
    '127.0.0.1:9092'
  ).split(',');
  const definitions = await loadEsmDefinitions();
  const admin = new Admin({ clientId: 'esm-status', bootstrapBrokers: brokers });
  try {
    process.stdout.write(await statusReport(admin, definitions));
  } finally {
    await admin.close();
  }
  return 0;
}
