// The Kafka connection of a command run against a stage (replay, topics): the local broker (plaintext) for the
// local stage; for an AWS stage the cluster's IAM bootstrap brokers with MSK IAM auth, the only listener the
// deployment grants (KAFKA_AUTH=none overrides it for a cluster without IAM auth).

import { CliError } from '../shared/cli-error';
import { type KafkaConnectionSettings, kafkaSettingsFromEnv } from '../shared/kafka/client-options';

export function stageKafkaSettings(
  stage: string,
  clientId: string,
  env: NodeJS.ProcessEnv,
): KafkaConnectionSettings {
  if (stage === 'local') return kafkaSettingsFromEnv(clientId, env);
  if (!env.KAFKA_BROKERS) {
    throw new CliError(
      `--stage ${stage}: set KAFKA_BROKERS to the MSK cluster's IAM bootstrap brokers (aws kafka ` +
        'get-bootstrap-brokers --cluster-arn <arn> --query BootstrapBrokerStringSaslIam)',
    );
  }
  return kafkaSettingsFromEnv(clientId, { ...env, KAFKA_AUTH: env.KAFKA_AUTH ?? 'iam' });
}
