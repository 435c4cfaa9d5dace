import type { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import pg from 'pg';
import { ConfigurationError } from '../../shared/config';
import { traced } from '../../shared/observability';
import type { ConnectionSource, NamedStatement } from './postgres-audit-event-store';

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

export interface DatabaseSecret {
  host: string;
  port?: number | string;
  username: string;
  password: string;
  dbname?: string;
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

/** pg settings for a pool, from the settings and (in AWS) the secret. */
export function poolConfig(settings: DatabaseSettings, secret?: DatabaseSecret): pg.PoolConfig {
  const common: pg.PoolConfig = {
    max: settings.poolMax,
    statement_timeout: settings.statementTimeoutMs,
    // A little longer than the statement timeout: the server cancels first, the client gives up only if the
    // network does not answer.
    query_timeout: settings.statementTimeoutMs + 2_000,
    idle_in_transaction_session_timeout: settings.statementTimeoutMs,
    connectionTimeoutMillis: settings.connectionTimeoutMs,
    // Frozen Lambda instances lose idle connections; drop them before the server or a NAT does.
    idleTimeoutMillis: 60_000,
    // An idle pool does not keep the process alive: `serverless invoke local` exits when the handler is done
    // (Lambda freezes the instance anyway).
    allowExitOnIdle: true,
    maxLifetimeSeconds: 900,
    keepAlive: true,
    application_name: 'audit-append',
    ...(settings.role ? { options: `-c role=${settings.role}` } : {}),
  };
  if (secret) {
    return {
      ...common,
      host: secret.host,
      port: Number(secret.port ?? 5432),
      user: secret.username,
      password: secret.password,
      database: secret.dbname ?? 'postgres',
      ssl: settings.ssl ? { rejectUnauthorized: true } : false,
    };
  }
  return { ...common, connectionString: settings.connectionString };
}

export type SecretReader = (secretArn: string) => Promise<string>;

/**
 * One small pg Pool per Lambda instance, created on first use (the secret is fetched then, not per batch).
 * When the password is refused (rotated secret) or the pool cannot be built, the next call starts over.
 */
export class LambdaDatabase implements ConnectionSource {
  private pool: Promise<pg.Pool> | undefined;

  constructor(
    private readonly settings: DatabaseSettings,
    private readonly readSecret: SecretReader,
    private readonly onIdleError: (error: Error) => void = () => {},
  ) {}

  async withConnection<T>(work: (client: pg.ClientBase) => Promise<T>): Promise<T> {
    const pool = await this.connect();
    try {
      return await pooled(pool).withConnection(work);
    } catch (error) {
      if ((error as { code?: string }).code === '28P01') await this.reset(); // invalid_password: re-read the secret
      throw error;
    }
  }

  async end(): Promise<void> {
    await this.reset();
  }

  private connect(): Promise<pg.Pool> {
    this.pool ??= this.createPool().catch((error: unknown) => {
      this.pool = undefined;
      throw error;
    });
    return this.pool;
  }

  private async createPool(): Promise<pg.Pool> {
    const secret = this.settings.secretArn
      ? parseSecret(await this.readSecret(this.settings.secretArn))
      : undefined;
    const pool = new pg.Pool(poolConfig(this.settings, secret));
    // An idle client that dies (server restart, failover) must not crash the instance.
    pool.on('error', this.onIdleError);
    return pool;
  }

  private async reset(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    if (pool) await (await pool.catch(() => undefined))?.end();
  }
}

/** Lends one client of `pool` at a time; a client whose work failed is closed rather than reused. */
export function pooled(pool: pg.Pool): ConnectionSource {
  return {
    async withConnection(work) {
      const client = await pool.connect();
      let failure: Error | undefined;
      try {
        return await work(client);
      } catch (error) {
        failure = error instanceof Error ? error : new Error(String(error));
        throw error;
      } finally {
        client.release(failure);
      }
    },
  };
}

/** The rows of one execution, each as its columns' text (null for NULL). */
export type TextRows = Array<Array<string | null>>;

/**
 * Executes the prepared `statement` once per parameter set, pipelined, in one transaction: each set goes out
 * (Bind, Execute) as soon as it is pulled, without waiting for the previous one's result, and one Sync ends the
 * series. The server executes one set while the caller builds the next, the caller waits once, and the series
 * commits at the Sync or not at all (inside a transaction the caller opened, it joins that one). Resolves with
 * each execution's rows, in order. If pulling a set throws, the series is aborted (rolled back) and that error
 * rethrown; if an execution fails, the server skips the rest and the error is rethrown.
 * PostgreSQL's extended query protocol (section 55.2.3): pg has no API for several Executes under one Sync, so
 * this is a custom query object (pg's Submittable), the way pg-cursor is.
 */
export async function executePipelined(
  client: Pick<pg.ClientBase, 'query'>,
  statement: NamedStatement,
  parameterSets: Iterable<unknown[]>,
): Promise<TextRows[]> {
  const series = new PipelinedExecutions(statement);
  const done = new Promise<TextRows[]>((resolve, reject) => {
    series.callback = (error, results) => (error ? reject(error) : resolve(results as TextRows[]));
  });
  client.query(series as unknown as pg.Submittable);
  let sets = 0;
  try {
    for (const values of parameterSets) {
      series.execute(values);
      sets += 1;
    }
  } catch (error) {
    series.end({ abort: true });
    await done.catch(() => {});
    throw error;
  }
  series.end({ abort: false });
  const results = await done;
  if (results.length !== sets)
    throw new Error(`pipelined ${sets} executions, the server completed ${results.length}`);
  return results;
}

/** The part of pg's Connection a custom query object writes to. */
interface ProtocolConnection {
  parsedStatements: Record<string, string | undefined>;
  submittedNamedStatements: Record<string, string | undefined>;
  parse(query: { text: string; name: string }): void;
  bind(config: { statement: string; values: unknown[] }): void;
  execute(config: { portal?: string }): void;
  sync(): void;
}

/** No portal has this name: executing it is refused, which aborts the series' transaction before its Sync. */
const ABORT_PORTAL = 'audit_append_abort';

/** One pipelined series on a pg client (see executePipelined); pg calls submit and the handle* methods. */
class PipelinedExecutions {
  readonly name: string;
  readonly text: string;
  callback?: (error: Error | null, results?: TextRows[]) => void;
  private connection?: ProtocolConnection;
  private readonly waiting: Array<() => void> = [];
  private readonly results: TextRows[] = [];
  private rows: TextRows = [];
  private synced = false;
  private finished = false;

  constructor(statement: NamedStatement) {
    this.name = statement.name;
    this.text = statement.text;
  }

  submit(connection: ProtocolConnection): Error | undefined {
    const known = connection.parsedStatements[this.name] ?? connection.submittedNamedStatements[this.name];
    if (known !== undefined && known !== this.text) {
      return new Error(`prepared statement "${this.name}" is already used for another statement`);
    }
    this.connection = connection;
    if (known === undefined) {
      connection.parse({ text: this.text, name: this.name });
      connection.submittedNamedStatements[this.name] = this.text;
    }
    for (const write of this.waiting.splice(0)) write();
    return undefined;
  }

  execute(values: unknown[]): void {
    this.send(() => {
      this.connection?.bind({ statement: this.name, values });
      this.connection?.execute({});
    });
  }

  end({ abort }: { abort: boolean }): void {
    if (abort) this.send(() => this.connection?.execute({ portal: ABORT_PORTAL }));
    this.send(() => {
      this.synced = true;
      this.connection?.sync();
    });
  }

  /** Writes now, or when pg submits the series (the client was busy); nothing after the Sync. */
  private send(write: () => void): void {
    if (this.synced) return;
    if (this.connection) write();
    else this.waiting.push(write);
  }

  handleDataRow(message: { fields: Array<string | null> }): void {
    this.rows.push(message.fields);
  }

  handleCommandComplete(): void {
    this.results.push(this.rows);
    this.rows = [];
  }

  handleError(error: Error): void {
    // The server skips everything up to the Sync; send it now if the failure came first (pg has already let go
    // of this query; the client waits for the ReadyForQuery the Sync brings). Nothing was written if pg refused
    // to submit the series, and then nothing is owed.
    if (this.connection && !this.synced) {
      this.synced = true;
      this.connection.sync();
    }
    this.finish(error);
  }

  handleReadyForQuery(): void {
    this.finish(null);
  }

  handleRowDescription(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyInResponse(): void {}
  handleCopyData(): void {}

  private finish(error: Error | null): void {
    if (this.finished) return;
    this.finished = true;
    this.callback?.(error, error ? undefined : this.results);
  }
}

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
