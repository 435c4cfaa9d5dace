import { describe, expect, it } from 'vitest';
import {
  databaseSettingsFromEnv,
  LambdaDatabase,
  parseSecret,
  poolConfig,
} from '../../../functions/audit-append/database';
import { ConfigurationError } from '../../../shared/config';

describe('database settings', () => {
  it('prefers the Secrets Manager secret and defaults to a pool of one with a statement timeout', () => {
    const settings = databaseSettingsFromEnv({
      DATABASE_SECRET_ARN: 'arn:secret',
      DATABASE_URL: 'postgres://x',
    });
    expect(settings).toMatchObject({
      secretArn: 'arn:secret',
      connectionString: undefined,
      poolMax: 1,
      ssl: true,
    });
    const config = poolConfig(
      settings,
      parseSecret('{"host":"db","port":5433,"username":"u","password":"p","dbname":"audit"}'),
    );
    expect(config).toMatchObject({
      host: 'db',
      port: 5433,
      user: 'u',
      database: 'audit',
      max: 1,
      statement_timeout: 10_000,
      ssl: { rejectUnauthorized: true },
    });
  });

  it('uses DATABASE_URL locally and fails the cold start without either', () => {
    expect(
      poolConfig(databaseSettingsFromEnv({ DATABASE_URL: 'postgres://l/db', DATABASE_POOL_MAX: '2' })),
    ).toMatchObject({
      connectionString: 'postgres://l/db',
      max: 2,
    });
    expect(() => databaseSettingsFromEnv({})).toThrow(ConfigurationError);
    expect(() => parseSecret('{"host":"db"}')).toThrow(/username and password/);
  });

  it('runs sessions as audit_writer with the (master user) secret, as DATABASE_ROLE says otherwise', () => {
    const fromSecret = databaseSettingsFromEnv({ DATABASE_SECRET_ARN: 'arn:s' });
    expect(poolConfig(fromSecret, parseSecret('{"host":"db","username":"u","password":"p"}'))).toMatchObject({
      options: '-c role=audit_writer',
    });
    expect(poolConfig(databaseSettingsFromEnv({ DATABASE_URL: 'postgres://l/db' })).options).toBeUndefined();
    expect(
      poolConfig(databaseSettingsFromEnv({ DATABASE_URL: 'postgres://l/db', DATABASE_ROLE: 'auditor' })),
    ).toMatchObject({ options: '-c role=auditor' });
    // Startup options are space-separated: a role name must not smuggle in another setting.
    expect(() =>
      databaseSettingsFromEnv({ DATABASE_URL: 'postgres://l/db', DATABASE_ROLE: 'x -c statement_timeout=0' }),
    ).toThrow(ConfigurationError);
  });

  it('reads the secret once per instance and again after a failure', async () => {
    let reads = 0;
    const database = new LambdaDatabase(
      { ...databaseSettingsFromEnv({ DATABASE_SECRET_ARN: 'arn:s' }), connectionTimeoutMs: 200 },
      async () => {
        reads += 1;
        if (reads === 1) throw new Error('throttled');
        return JSON.stringify({ host: '127.0.0.1', port: 1, username: 'u', password: 'p' });
      },
    );
    await expect(database.query('SELECT 1')).rejects.toThrow('throttled');
    await expect(database.query('SELECT 1')).rejects.toThrow();
    await expect(database.query('SELECT 1')).rejects.toThrow();
    expect(reads).toBe(2);
    await database.end();
  });
});
