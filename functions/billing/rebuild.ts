import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReadModelRebuilder } from '../../local/replay';
import { clearTable } from './dynamodb-billing-store';

/**
 * `replay --function billing --from-earliest --rebuild`: deletes invoices, payments and statement lines. Billing
 * keeps no other record of what it applied (every fact lives in this table), so the replay rebuilds it whole.
 * Byte-for-byte equality: test/integration/billing.
 */
export function billingReadModelRebuilder(
  client: DynamoDBDocumentClient,
  billingTable: string,
): ReadModelRebuilder {
  return {
    functionKey: 'billing',
    describe: `delete every item of ${billingTable}`,
    clear: async () => {
      await clearTable(client, billingTable, ['pk', 'sk']);
    },
  };
}
