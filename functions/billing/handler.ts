import { dynamoDocumentClient } from '../../shared/aws-clients';
import { requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { createKafkaHandler } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { DynamoDbBillingLedger } from './dynamodb-billing-store';
import type { TariffTable } from './pricing';
import { billingPolicy } from './process-billing-batch';
import tariffs from './tariffs.json';

// Wiring only: configuration, adapters, then decode -> bill the batch (batched reads and writes) -> failures.
const env = requireEnv('BILLING_TABLE');
const { logger, metrics } = createObservability('billing');
const ledger = new DynamoDbBillingLedger(dynamoDocumentClient(), env.BILLING_TABLE);

export const handler = createKafkaHandler({
  logger,
  metrics,
  registry: schemaRegistryFromEnv(),
  policy: billingPolicy(tariffs as TariffTable, ledger, (result) => {
    metrics.addMetric('RecordsBilled', 'Count', result.applied);
    metrics.addMetric('RecordsAlreadyBilled', 'Count', result.alreadyApplied);
  }),
});
