/**
 * Connection options for @platformatic/kafka clients: plaintext for the local broker, or TLS + MSK IAM for
 * AWS. The client has no AWS_MSK_IAM mechanism, so IAM goes through OAUTHBEARER with the token MSK documents
 * for non-Java clients (./msk-iam-token.ts), signed with the default credential chain (in Lambda, the
 * function role's credentials from the environment).
 */
import { defaultProvider } from '@aws-sdk/credential-provider-node';
import type { BaseOptions } from '@platformatic/kafka';
import { mskIamToken } from './msk-iam-token';

export interface KafkaConnectionSettings {
  /** host:port list. */
  brokers: string[];
  clientId: string;
  /** MSK IAM authentication (TLS on the IAM listener, usually port 9098). */
  iam?: { region: string };
}

export type KafkaClientOptions = BaseOptions & {
  sasl?: { mechanism: 'OAUTHBEARER'; token: () => Promise<string> };
  tls?: Record<string, never>;
};

export function kafkaClientOptions(settings: KafkaConnectionSettings): KafkaClientOptions {
  const options: KafkaClientOptions = { clientId: settings.clientId, bootstrapBrokers: settings.brokers };
  if (settings.iam) {
    const { region } = settings.iam;
    // A provider, not a string: the client asks again on every (re)connect, and tokens expire after 15 min.
    const credentials = defaultProvider();
    options.sasl = { mechanism: 'OAUTHBEARER', token: () => mskIamToken({ region, credentials }) };
    options.tls = {};
  }
  return options;
}

/**
 * Settings from the environment: KAFKA_BROKERS (comma-separated, default the local broker), KAFKA_AUTH=iam
 * with AWS_REGION for MSK IAM.
 */
export function kafkaSettingsFromEnv(
  clientId: string,
  env: NodeJS.ProcessEnv = process.env,
): KafkaConnectionSettings {
  const brokers = (env.KAFKA_BROKERS ?? '127.0.0.1:9092')
    .split(',')
    .map((broker) => broker.trim())
    .filter(Boolean);
  const auth = env.KAFKA_AUTH ?? 'none';
  if (auth === 'none') return { brokers, clientId };
  if (auth === 'iam') {
    const region = env.AWS_REGION;
    if (!region) throw new Error('KAFKA_AUTH=iam needs AWS_REGION');
    return { brokers, clientId, iam: { region } };
  }
  throw new Error(`KAFKA_AUTH must be "none" or "iam", got "${auth}"`);
}
