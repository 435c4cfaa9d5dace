import type { Context } from 'aws-lambda';
import { dynamoDocumentClient } from '../../shared/aws-clients';
import { requireEnv } from '../../shared/config';
import { schemaRegistryFromEnv } from '../../shared/contracts/registry-from-env';
import { decodeEvent, type KafkaBatchResponse, type KafkaEvent, publishBatchMetrics } from '../../shared/msk';
import { createObservability } from '../../shared/observability';
import type { DemandModelConfig } from './demand-model';
import { DynamoDbDemandReadModel } from './dynamodb-demand-read-model';
import { processDemandBatch } from './process-demand-batch';
import zones from './zones.json';

// Wiring only: configuration, adapters, then decode -> aggregate per zone-hour -> fenced writes -> failures.
const env = requireEnv('DEMAND_TABLE');
const { logger, metrics } = createObservability('demand-prediction-update');
const config = zones as DemandModelConfig;
const knownZones = new Set(config.zones.map((zone) => zone.zoneId));
const readModel = new DynamoDbDemandReadModel(dynamoDocumentClient(), env.DEMAND_TABLE);
const registry = schemaRegistryFromEnv();

export const handler = async (event: KafkaEvent, context: Context): Promise<KafkaBatchResponse> => {
  logger.addContext(context);
  const partitions = await decodeEvent(event, { registry });
  const outcome = await processDemandBatch(partitions, config, knownZones, readModel, logger);
  metrics.addMetric('BookingsApplied', 'Count', outcome.signals);
  metrics.addMetric('ZoneHourWrites', 'Count', outcome.outcomes.length);
  publishBatchMetrics(metrics, event, outcome.response);
  metrics.publishStoredMetrics();
  return outcome.response;
};
