import pg from 'pg';
import { type DatabaseSecret, parseSecret, type SecretReader } from './database-secret';
import type { DatabaseSettings } from './database-settings';

/** The part of a pg Pool or Client a reader of the store needs (audit verify, audit-digest's chain heads). */
export interface Queryable {
  query<Row extends Record<string, unknown>>(text: string, values?: unknown[]): Promise<{ rows: Row[] }>;
}

/** Lends one connection at a time: LambdaDatabase, or a pg Pool through `pooled`. */
export interface ConnectionSource {
  withConnection<T>(work: (client: pg.ClientBase) => Promise<T>): Promise<T>;
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
