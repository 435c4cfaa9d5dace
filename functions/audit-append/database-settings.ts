import { ConfigurationError } from '../../shared/config';

/** Where the connection settings come from and how the pool behaves. */
export interface DatabaseSettings {
  /** Local runs and tests: postgres://user:pass@host:port/db. */
  connectionString?: string;
  /** In AWS: a Secrets Manager secret holding {host, port, username, password, dbname}. */
  secretArn?: string;
  /** A Lambda instance handles one batch at a time: one connection is enough, two tolerate a stuck one. */
  poolMax: number;
  statementTimeoutMs: number;
  connectionTimeoutMs: number;
  /** TLS for the secret-based (Aurora) connection; a connection string carries its own sslmode. */
  ssl: boolean;
  /**
   * The role every session runs as (SET ROLE at connection start): audit_writer by default with a secret (in AWS
   * the secret of audit_append_login, a NOINHERIT member of audit_writer only: migration 008), none by default
   * with DATABASE_URL. audit-digest sets audit_reader.
   */
  role?: string;
}

/** Reads DATABASE_SECRET_ARN (preferred) or DATABASE_URL, failing the cold start when neither is set. */
export function databaseSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): DatabaseSettings {
  const secretArn = env.DATABASE_SECRET_ARN || undefined;
  const connectionString = env.DATABASE_URL || undefined;
  if (!secretArn && !connectionString) {
    throw new ConfigurationError(
      'Missing required environment variable: DATABASE_SECRET_ARN or DATABASE_URL',
    );
  }
  const role = env.DATABASE_ROLE || (secretArn ? 'audit_writer' : undefined);
  if (role !== undefined && !/^[a-z_][a-z0-9_]*$/.test(role)) {
    throw new ConfigurationError(`DATABASE_ROLE must be a plain lower-case role name, got "${role}"`);
  }
  return {
    secretArn,
    connectionString: secretArn ? undefined : connectionString,
    role,
    poolMax: integer(env, 'DATABASE_POOL_MAX', 1),
    statementTimeoutMs: integer(env, 'DATABASE_STATEMENT_TIMEOUT_MS', 10_000),
    connectionTimeoutMs: integer(env, 'DATABASE_CONNECT_TIMEOUT_MS', 5_000),
    ssl: env.DATABASE_SSL !== 'disable',
  };
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) {
    throw new ConfigurationError(`Environment variable ${name} must be a positive integer, got "${raw}"`);
  }
  return value;
}
