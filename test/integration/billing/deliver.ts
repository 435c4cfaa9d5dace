import type { BillingBatchResult } from '../../../functions/billing/bill';
import type { BillingLedger } from '../../../functions/billing/ports';
import type { TariffTable } from '../../../functions/billing/pricing';
import { billingPolicy } from '../../../functions/billing/process-billing-batch';
import tariffsFile from '../../../functions/billing/tariffs.json';
import { fileCatalogSchemaRegistry } from '../../../shared/contracts/file-catalog-registry';
import {
  decodeEvent,
  type KafkaBatchResponse,
  type KafkaEventRecord,
  kafkaEvent,
  runBatch,
  withRawRecords,
} from '../../../shared/msk';

const silent = { error: () => {}, warn: () => {} };

/** Bills records as the handler does (decode, the batch engine, billing's policy), with the result it counts. */
export async function deliverBatch(
  records: KafkaEventRecord[],
  ledger: BillingLedger,
): Promise<BillingBatchResult & { response: KafkaBatchResponse; failed: number }> {
  const event = kafkaEvent(records);
  const decoded = await decodeEvent(event, { registry: fileCatalogSchemaRegistry });
  let result: BillingBatchResult | undefined;
  const policy = billingPolicy(tariffsFile as TariffTable, ledger, (done) => {
    result = done;
  });
  const { response } = await runBatch(withRawRecords(decoded, event.records ?? {}), policy, {
    logger: silent,
  });
  if (!result) throw new Error('the batch failed as a whole');
  return { ...result, response, failed: result.failures.length };
}
