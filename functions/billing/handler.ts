import { DynamoDBPersistenceLayer } from '@aws-lambda-powertools/idempotency/dynamodb';
import type { Context } from 'aws-lambda';
import { dynamoClient, dynamoDocumentClient } from '../../shared/aws-clients';
import { ConfigurationError, requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { decodeEvent, type KafkaBatchResponse, type KafkaEvent, publishBatchMetrics } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import { createBillingProcessor } from './billing-processor';
import { DynamoDbCustomerStatements, DynamoDbInvoiceStore } from './dynamodb-billing-store';
import type { TariffTable } from './pricing';
import { processBillingBatch } from './process-billing-batch';
import tariffs from './tariffs.json';

// Wiring only: configuration, adapters, then decode -> bill each record idempotently -> report failures.
const env = requireEnv('BILLING_TABLE', 'IDEMPOTENCY_TABLE');
const { logger, metrics } = createObservability('billing');
const documents = dynamoDocumentClient();
const registry = schemaRegistryFromEnv();

const processor = createBillingProcessor({
  invoices: new DynamoDbInvoiceStore(documents, env.BILLING_TABLE),
  statements: new DynamoDbCustomerStatements(documents, env.BILLING_TABLE),
  // The shared client, so the idempotency reads and writes are traced like the function's own.
  persistenceStore: new DynamoDBPersistenceLayer({
    tableName: env.IDEMPOTENCY_TABLE,
    awsSdkV3Client: dynamoClient(),
  }),
});

export const handler = async (event: KafkaEvent, context: Context): Promise<KafkaBatchResponse> => {
  logger.addContext(context);
  processor.registerLambdaContext(context);
  const partitions = await decodeEvent(event, { registry });
  const outcome = await processBillingBatch(
    partitions,
    tariffs as TariffTable,
    processor,
    logger,
    (error) => error instanceof ConfigurationError,
  );
  metrics.addMetric('RecordsBilled', 'Count', outcome.processed);
  publishBatchMetrics(metrics, event, outcome.response);
  metrics.publishStoredMetrics();
  return outcome.response;
};
