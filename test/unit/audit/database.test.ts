import { describe, expect, it } from 'vitest';
import { parseSecret } from '../../../functions/audit-append/database-secret';
import { databaseSettingsFromEnv } from '../../../functions/audit-append/database-settings';
import { executePipelined } from '../../../functions/audit-append/pg-pipeline';
import { LambdaDatabase, poolConfig } from '../../../functions/audit-append/postgres-pool';
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
    const select = () => database.withConnection((client) => client.query('SELECT 1'));
    await expect(select()).rejects.toThrow('throttled');
    await expect(select()).rejects.toThrow();
    await expect(select()).rejects.toThrow();
    expect(reads).toBe(2);
    await database.end();
  });
});

describe('executePipelined', () => {
  const statement = { name: 'append', text: 'SELECT $1::text' };

  /** A pg client whose connection logs the protocol messages; the test plays the server. */
  function fakeClient(options: { busy?: boolean } = {}) {
    const log: string[] = [];
    let query: {
      submit(connection: unknown): Error | undefined;
      handleDataRow(message: { fields: Array<string | null> }): void;
      handleCommandComplete(): void;
      handleError(error: Error): void;
      handleReadyForQuery(): void;
    };
    const connection = {
      parsedStatements: {} as Record<string, string>,
      submittedNamedStatements: {} as Record<string, string>,
      parse: ({ name }: { name: string }) => log.push(`parse ${name}`),
      bind: ({ values }: { values: unknown[] }) => log.push(`bind ${values.join()}`),
      execute: ({ portal }: { portal?: string }) => log.push(`execute ${portal ?? ''}`.trim()),
      sync: () => log.push('sync'),
    };
    const client = {
      query: (submittable: unknown) => {
        query = submittable as typeof query;
        if (!options.busy) query.submit(connection);
      },
    };
    return { client: client as never, log, connection, server: () => query };
  }

  it('writes each parameter set as soon as it is pulled and syncs once, then gives the rows of each', async () => {
    const { client, log, server } = fakeClient();
    function* sets() {
      for (const value of ['a', 'b']) {
        log.push(`pulled ${value}`);
        yield [value];
      }
    }
    const done = executePipelined(client, statement, sets());
    expect(log).toEqual([
      'parse append',
      'pulled a',
      'bind a',
      'execute',
      'pulled b',
      'bind b',
      'execute',
      'sync',
    ]);
    server().handleDataRow({ fields: ['0', 'a'] });
    server().handleCommandComplete();
    server().handleDataRow({ fields: ['0', 'b'] });
    server().handleDataRow({ fields: ['1', null] });
    server().handleCommandComplete();
    server().handleReadyForQuery();
    expect(await done).toEqual([
      [['0', 'a']],
      [
        ['0', 'b'],
        ['1', null],
      ],
    ]);
  });

  it('parses the statement once per connection, and writes what was pulled while the client was busy', async () => {
    const { client, log, connection, server } = fakeClient({ busy: true });
    connection.parsedStatements.append = statement.text;
    const done = executePipelined(client, statement, [['a']]);
    expect(log).toEqual([]);
    server().submit(connection);
    expect(log).toEqual(['bind a', 'execute', 'sync']);
    server().handleCommandComplete();
    server().handleReadyForQuery();
    expect(await done).toEqual([[]]);
  });

  it('writes nothing, not even a Sync, when the name is taken by another statement on the connection', async () => {
    const { client, log, connection, server } = fakeClient({ busy: true });
    connection.parsedStatements.append = 'SELECT 2';
    const done = executePipelined(client, statement, [['a']]);
    const refused = server().submit(connection);
    expect(refused).toBeInstanceOf(Error);
    server().handleError(refused as Error); // what pg does with a submit error
    await expect(done).rejects.toThrow('already used for another statement');
    expect(log).toEqual([]);
  });

  it('rejects with the failure of an execution', async () => {
    const { client, log, server } = fakeClient();
    const done = executePipelined(client, statement, [['a'], ['b']]);
    server().handleError(Object.assign(new Error('refused'), { code: '23514' }));
    await expect(done).rejects.toMatchObject({ code: '23514' });
    expect(log.filter((message) => message === 'sync')).toHaveLength(1);
  });

  it('aborts what was sent when pulling a parameter set throws: a refused Execute before the Sync', async () => {
    const { client, log, server } = fakeClient();
    function* sets() {
      yield ['a'];
      throw new Error('could not build the next set');
    }
    const done = executePipelined(client, statement, sets());
    expect(log).toEqual(['parse append', 'bind a', 'execute', 'execute audit_append_abort', 'sync']);
    server().handleError(new Error('portal "audit_append_abort" does not exist'));
    await expect(done).rejects.toThrow('could not build the next set');
  });
});
