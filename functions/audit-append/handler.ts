import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { createKafkaHandler } from '../../shared/msk/handler';
import { createObservability } from '../../shared/observability';
import { auditPolicy } from './audit-policy';
import { secretsManagerReader } from './database-secret';
import { databaseSettingsFromEnv } from './database-settings';
import { PostgresAuditEventStore } from './postgres-audit-event-store';
import { LambdaDatabase } from './postgres-pool';
import { reportAppend } from './report';

// Wiring only: configuration and adapters at module scope (one small pool per instance), then per batch:
// decode -> append all decodable records in one transaction -> report conflicts and failures.
const { logger, metrics } = createObservability('audit-append');
const database = new LambdaDatabase(databaseSettingsFromEnv(), secretsManagerReader(), (error) =>
  logger.warn('Idle database connection failed', { error }),
);
const store = new PostgresAuditEventStore(database);

export const handler = createKafkaHandler({
  logger,
  metrics,
  registry: schemaRegistryFromEnv(),
  policy: auditPolicy(store, (result, response) =>
    reportAppend(result, { logger, metrics }, response.batchItemFailures.length),
  ),
});
