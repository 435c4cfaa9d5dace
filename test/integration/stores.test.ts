// Each store of the stack takes a write and gives it back: PostgreSQL (DATABASE_URL: PGlite or a real
// server), DynamoDB (dynalite, a uniquely named table made by the provisioning code), S3 (s3rver).
import { randomUUID } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConditionalCheckFailedException,
  DeleteTableCommand,
  DescribeTableCommand,
} from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { localDefinitions, localDynamoClient, provisionTables } from '../../local/provision';
import { runMigrations } from '../../ops/migrations';
import { batchGetAll, batchPutAll } from '../../shared/dynamodb';

const suffix = randomUUID().slice(0, 8);

describe('PostgreSQL (DATABASE_URL)', () => {
  const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 2 });
  const table = `stores_smoke_${suffix}`;
  afterAll(async () => {
    await pool.query(`drop table if exists ${table}`);
    await pool.end();
  });

  it('writes and reads a row', async () => {
    await pool.query(`create table ${table} (id text primary key, payload jsonb not null)`);
    await pool.query(`insert into ${table} values ($1, $2)`, ['a', { amountMinor: 1250 }]);
    const { rows } = await pool.query(`select payload from ${table} where id = $1`, ['a']);
    expect(rows).toEqual([{ payload: { amountMinor: 1250 } }]);
  });

  it('has the migrations applied and records each once', async () => {
    const { rows } = await pool.query<{ name: string }>('select name from schema_migrations order by name');
    const names = rows.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    // A second run applies nothing.
    expect(await runMigrations(process.env.DATABASE_URL as string)).toEqual([]);
  });

  it('applies new migration files in order, each in its own transaction, and a failing one not at all', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'migrations-'));
    const probe = `migration_probe_${suffix}`;
    writeFileSync(join(dir, `001_create_${suffix}.sql`), `create table ${probe} (id int primary key);`);
    writeFileSync(
      join(dir, `002_insert_${suffix}.sql`),
      `insert into ${probe} values (1); insert into ${probe} values (2);`,
    );
    // Inserts a row and then fails: the row must not stay behind.
    writeFileSync(
      join(dir, `003_broken_${suffix}.sql`),
      `insert into ${probe} values (3); select * from no_such_table;`,
    );
    try {
      await expect(runMigrations(process.env.DATABASE_URL as string, dir)).rejects.toThrow(
        /003_broken_\w+\.sql failed/,
      );
      const { rows } = await pool.query(`select id from ${probe} order by id`);
      expect(rows.map((r) => r.id)).toEqual([1, 2]);
      const applied = await pool.query(
        'select name from schema_migrations where name like $1 order by name',
        [`%_${suffix}.sql`],
      );
      expect(applied.rows.map((r) => r.name)).toEqual([
        `001_create_${suffix}.sql`,
        `002_insert_${suffix}.sql`,
      ]);
    } finally {
      await pool.query(`drop table if exists ${probe}`);
      await pool.query('delete from schema_migrations where name like $1', [`%_${suffix}.sql`]);
    }
  });
});

describe('DynamoDB (AWS_ENDPOINT_URL_DYNAMODB)', () => {
  const endpoint = process.env.AWS_ENDPOINT_URL_DYNAMODB as string;
  const client = localDynamoClient(endpoint);
  const documents = DynamoDBDocumentClient.from(client);
  // The incidents table's definition from serverless.yml, under a name of this test's own.
  const TableName = `stores-smoke-${suffix}`;
  afterAll(async () => {
    await client.send(new DeleteTableCommand({ TableName })).catch(() => {});
    client.destroy();
  });

  it('provisions the stage tables from serverless.yml', async () => {
    for (const table of Object.values(localDefinitions().tables)) {
      const described = await client.send(new DescribeTableCommand({ TableName: table.TableName }));
      expect(described.Table?.KeySchema).toEqual(table.KeySchema);
    }
  });

  it('puts, gets and refuses a conditional put on an existing key', async () => {
    const definition = localDefinitions().tables.IncidentsTable;
    expect(definition).toBeDefined();
    expect(await provisionTables(endpoint, [{ ...definition, TableName }])).toEqual([TableName]);
    // Idempotent: provisioning again is fine.
    expect(await provisionTables(endpoint, [{ ...definition, TableName }])).toEqual([]);

    const item = { pk: 'INCIDENT#1', sk: 'VIEW', severity: 'high' };
    await documents.send(
      new PutCommand({ TableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }),
    );
    const read = await documents.send(new GetCommand({ TableName, Key: { pk: 'INCIDENT#1', sk: 'VIEW' } }));
    expect(read.Item).toEqual(item);
    await expect(
      documents.send(
        new PutCommand({
          TableName,
          Item: { ...item, severity: 'low' },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      ),
    ).rejects.toBeInstanceOf(ConditionalCheckFailedException);
  });

  it('batch-reads only the attributes asked for (names that are reserved words included)', async () => {
    const definition = localDefinitions().tables.IncidentsTable;
    await provisionTables(endpoint, [{ ...definition, TableName }]);
    const items = [1, 2].map((n) => ({ pk: `INCIDENT#p${n}`, sk: 'VIEW', status: 'x', data: 'y', size: n }));
    await batchPutAll(documents, TableName, ['pk', 'sk'], items);
    const keys = items.map(({ pk, sk }) => ({ pk, sk }));
    // The key's attributes come along (each item is routed back to its read by its key).
    const read = await batchGetAll(documents, TableName, keys, 1, ['status', 'size']);
    expect(read.sort((a, b) => String(a.pk).localeCompare(String(b.pk)))).toEqual([
      { pk: 'INCIDENT#p1', sk: 'VIEW', status: 'x', size: 1 },
      { pk: 'INCIDENT#p2', sk: 'VIEW', status: 'x', size: 2 },
    ]);
    expect(await batchGetAll(documents, TableName, keys, 1)).toHaveLength(2);
  });
});

describe('S3 (AWS_ENDPOINT_URL_S3)', () => {
  const s3 = new S3Client({ endpoint: process.env.AWS_ENDPOINT_URL_S3, forcePathStyle: true });
  const Bucket = process.env.FAILED_RECORDS_BUCKET as string;
  const prefix = `stores-smoke/${suffix}/`;
  afterAll(() => s3.destroy());

  it('puts and gets an object in the failed-records bucket', async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket,
        Key: `${prefix}a.json`,
        Body: '{"ok":true}',
        ContentType: 'application/json',
      }),
    );
    const object = await s3.send(new GetObjectCommand({ Bucket, Key: `${prefix}a.json` }));
    expect(await object.Body?.transformToString()).toBe('{"ok":true}');
  });

  it('pages a listing with continuation tokens (needs s3rver under --openssl-legacy-provider)', async () => {
    for (const key of ['b', 'c', 'd']) {
      await s3.send(new PutObjectCommand({ Bucket, Key: `${prefix}${key}`, Body: key }));
    }
    const first = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, MaxKeys: 2 }));
    expect(first.IsTruncated).toBe(true);
    expect(first.Contents?.map((o) => o.Key)).toEqual([`${prefix}a.json`, `${prefix}b`]);
    const second = await s3.send(
      new ListObjectsV2Command({
        Bucket,
        Prefix: prefix,
        MaxKeys: 2,
        ContinuationToken: first.NextContinuationToken,
      }),
    );
    expect(second.Contents?.map((o) => o.Key)).toEqual([`${prefix}c`, `${prefix}d`]);
    expect(second.IsTruncated).toBe(false);
  });
});
