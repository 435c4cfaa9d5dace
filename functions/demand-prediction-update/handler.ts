import { dynamoDocumentClient } from '../../shared/aws-clients';
import { requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { createKafkaHandler } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import type { DemandModelConfig } from './demand-model';
import { DynamoDbDemandReadModel } from './dynamodb-demand-read-model';
import { demandPolicy } from './process-demand-batch';
import zones from './zones.json';

// Wiring only: configuration, adapters, then decode -> aggregate per zone-hour -> fenced writes -> failures.
const env = requireEnv('DEMAND_TABLE');
const { logger, metrics } = createObservability('demand-prediction-update');
const config = zones as DemandModelConfig;
const knownZones = new Set(config.zones.map((zone) => zone.zoneId));
const readModel = new DynamoDbDemandReadModel(dynamoDocumentClient(), env.DEMAND_TABLE);
const registry = schemaRegistryFromEnv();

export const handler = createKafkaHandler({
  logger,
  metrics,
  registry,
  policy: demandPolicy(config, knownZones, readModel, (result) => {
    metrics.addMetric('BookingsApplied', 'Count', result.signals);
    metrics.addMetric('ZoneHourWrites', 'Count', result.outcomes.length);
  }),
});
