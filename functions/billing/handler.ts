import type { Context } from 'aws-lambda';
import { dynamoDocumentClient } from '../../shared/aws-clients';
import { ConfigurationError, requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { batchMetrics, decodeEvent, type KafkaBatchResponse, type KafkaEvent } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { DynamoDbBillingLedger } from './dynamodb-billing-store';
import type { TariffTable } from './pricing';
import { processBillingBatch } from './process-billing-batch';
import tariffs from './tariffs.json';

// Wiring only: configuration, adapters, then decode -> bill the batch (batched reads and writes) -> failures.
const env = requireEnv('BILLING_TABLE');
const { logger, metrics } = createObservability('billing');
const ledger = new DynamoDbBillingLedger(dynamoDocumentClient(), env.BILLING_TABLE);
const registry = schemaRegistryFromEnv();

export const handler = async (event: KafkaEvent, context: Context): Promise<KafkaBatchResponse> => {
  logger.addContext(context);
  const partitions = await decodeEvent(event, { registry });
  const outcome = await processBillingBatch(
    partitions,
    tariffs as TariffTable,
    ledger,
    logger,
    (error) => error instanceof ConfigurationError,
  );
  metrics.addMetric('RecordsBilled', 'Count', outcome.processed);
  metrics.addMetric('RecordsAlreadyBilled', 'Count', outcome.alreadyApplied);
  for (const metric of batchMetrics(event, outcome.response)) {
    metrics.addMetric(metric.name, metric.unit, metric.value);
  }
  metrics.publishStoredMetrics();
  return outcome.response;
};
