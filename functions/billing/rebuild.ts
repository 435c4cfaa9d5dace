import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReadModelRebuilder } from '../../local/replay';
import { clearTable } from './dynamodb-billing-store';

/**
 * `replay --function billing --from-earliest --rebuild`: deletes invoices, ledgers and statements AND the
 * Powertools idempotency records; without the latter every replayed event would be answered from its stored
 * result and the cleared read model would stay empty. Byte-for-byte equality: test/integration/billing.
 */
export function billingReadModelRebuilder(
  client: DynamoDBDocumentClient,
  billingTable: string,
  idempotencyTable: string,
): ReadModelRebuilder {
  return {
    functionKey: 'billing',
    describe: `delete every item of ${billingTable} and of ${idempotencyTable}`,
    clear: async () => {
      await clearTable(client, idempotencyTable, ['id']);
      await clearTable(client, billingTable, ['pk', 'sk']);
    },
  };
}
