// `npm run esm:status`: lag per ESM and partition (latest offset minus the group's committed offset), the
// figure operators alarm on. Reads the ESMs from serverless.yml and the broker from the running stack.
import './esm/node20-polyfills';
import { Admin } from '@platformatic/kafka';
import { loadEsmDefinitions } from './esm/config';
import { formatTable } from './esm/dashboard';
import { partitionLags } from './esm/lag';
import { readStackState } from './stack/index';

export async function run(_args: string[]): Promise<number> {
  const brokers = (
    process.env.KAFKA_BROKERS ??
    readStackState()?.env.KAFKA_BROKERS ??
    '127.0.0.1:9092'
  ).split(',');
  const definitions = await loadEsmDefinitions();
  const admin = new Admin({ clientId: 'esm-status', bootstrapBrokers: brokers });
  const rows = [['function', 'topic', 'group', 'partition', 'committed', 'latest', 'lag']];
  let total = 0n;
  try {
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
  } finally {
    await admin.close();
  }
  process.stdout.write(`${formatTable(rows)}\n\ntotal lag ${total}\n`);
  return 0;
}
