import type { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ConfigurationError } from '../../shared/config';
import { traced } from '../../shared/observability';

export interface DatabaseSecret {
  host: string;
  port?: number | string;
  username: string;
  password: string;
  dbname?: string;
}

export type SecretReader = (secretArn: string) => Promise<string>;

export function parseSecret(text: string): DatabaseSecret {
  let secret: Partial<DatabaseSecret>;
  try {
    secret = JSON.parse(text) as Partial<DatabaseSecret>;
  } catch {
    throw new ConfigurationError('The database secret is not JSON');
  }
  if (!secret.host || !secret.username || !secret.password) {
    throw new ConfigurationError('The database secret needs host, username and password');
  }
  return secret as DatabaseSecret;
}

/** Reads a secret string with the Secrets Manager client, created on first use and kept for the next reads. */
export function secretsManagerReader(): SecretReader {
  // A type-only import: the client module itself loads on the first read (it is not needed at init).
  let sdk:
    | Promise<{ client: SecretsManagerClient; GetSecretValueCommand: typeof GetSecretValueCommand }>
    | undefined;
  return async (secretArn) => {
    sdk ??= import('@aws-sdk/client-secrets-manager').then(
      ({ SecretsManagerClient, GetSecretValueCommand }) => ({
        client: traced(new SecretsManagerClient({ maxAttempts: 5 })),
        GetSecretValueCommand,
      }),
    );
    const { client, GetSecretValueCommand } = await sdk;
    const response = await client.send(new GetSecretValueCommand({ SecretId: secretArn }));
    if (!response.SecretString) throw new ConfigurationError(`Secret ${secretArn} has no SecretString`);
    return response.SecretString;
  };
}
