import type { Context } from 'aws-lambda';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import type { KafkaBatchResponse, KafkaEvent } from '../../shared/msk/event';
import { publishBatchMetrics } from '../../shared/msk/metrics';
import { createObservability } from '../../shared/observability';
import { appendBatch } from './append-batch';
import { contractDecoder } from './contract-decoder';
import { databaseSettingsFromEnv, LambdaDatabase, secretsManagerReader } from './database';
import { PostgresAuditEventStore } from './postgres-audit-event-store';
import { reportAppend } from './report';

// Wiring only: configuration and adapters at module scope (one small pool per instance), then per batch:
// decode -> append all decodable records in one transaction -> report conflicts and failures.
const { logger, metrics } = createObservability('audit-append');
const database = new LambdaDatabase(databaseSettingsFromEnv(), secretsManagerReader(), (error) =>
  logger.warn('Idle database connection failed', { error }),
);
const store = new PostgresAuditEventStore(database);
const decode = contractDecoder(schemaRegistryFromEnv());

export const handler = async (event: KafkaEvent, context?: Context): Promise<KafkaBatchResponse> => {
  if (context) logger.addContext(context);
  try {
    const result = await appendBatch(event, { store, decode });
    reportAppend(result, { logger, metrics });
    const response = { batchItemFailures: result.batchItemFailures };
    publishBatchMetrics(metrics, event, response);
    return response;
  } finally {
    metrics.publishStoredMetrics();
  }
};
