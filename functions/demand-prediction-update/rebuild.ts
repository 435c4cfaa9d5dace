import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReadModelRebuilder } from '../../shared/read-model-rebuilder';
import { DynamoDbDemandReadModel } from './dynamodb-demand-read-model';

/**
 * `replay --function demand-prediction-update --from-earliest --rebuild`: deletes every demand item. The
 * exactly-once fences live in the items, so they go with them and the replay re-applies everything once;
 * the result is byte for byte the read model of the original run (test/integration/demand).
 */
export function demandReadModelRebuilder(
  client: DynamoDBDocumentClient,
  tableName: string,
): ReadModelRebuilder {
  return {
    functionKey: 'demand-prediction-update',
    describe: `delete every item of ${tableName} (counts, forecasts and their partition fences)`,
    clear: async () => {
      await new DynamoDbDemandReadModel(client, tableName).clear();
    },
  };
}
