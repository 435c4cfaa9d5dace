import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

const MIGRATIONS = path.resolve(import.meta.dirname, '../../../migrations');

const LOCAL_POSTGRES = 'postgres://postgres@127.0.0.1:5432/postgres';
let chosenServer: Promise<string> | undefined;

/**
 * The PostgreSQL server the audit tests create their databases on: AUDIT_TEST_DATABASE_URL, else DATABASE_URL
 * (CI points it at the real server; the local stack may hand out PGlite, which has one database and one
 * backend, so it cannot host these tests), else the local server on 127.0.0.1:5432.
 */
export function serverUrl(): Promise<string> {
  chosenServer ??= (async () => {
    const candidates = [process.env.AUDIT_TEST_DATABASE_URL, process.env.DATABASE_URL, LOCAL_POSTGRES];
    const problems: string[] = [];
    for (const url of candidates) {
      if (!url) continue;
      const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
      try {
        await client.connect();
        const { rows } = await client.query<{ version: string }>('SELECT version()');
        if (!rows[0]?.version.includes('PGlite')) return url;
        problems.push(`${redact(url)} is PGlite`);
      } catch (error) {
        problems.push(`${redact(url)}: ${(error as Error).message}`);
      } finally {
        await client.end().catch(() => {});
      }
    }
    throw new Error(`audit integration tests need a real PostgreSQL server (${problems.join('; ')})`);
  })();
  return chosenServer;
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password) parsed.password = '***';
  return parsed.toString();
}

export interface AuditDatabase {
  url: string;
  name: string;
  /** Connected as the superuser that ran the migrations (the store's owner). */
  owner: pg.Pool;
  drop(): Promise<void>;
}

/**
 * Applies migrations/*.sql in name order, each in its own transaction, as ops/migrations.ts does; `files`
 * picks some of them (a database left at an older migration).
 */
export async function applyMigrations(url: string, files?: (file: string) => boolean): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const all = (await readdir(MIGRATIONS)).filter((file) => file.endsWith('.sql')).sort();
    for (const file of all.filter(files ?? (() => true))) {
      const sql = await readFile(path.join(MIGRATIONS, file), 'utf8');
      for (let attempt = 1; ; attempt++) {
        await client.query('BEGIN');
        try {
          await client.query(sql);
          await client.query('COMMIT');
          break;
        } catch (error) {
          await client.query('ROLLBACK');
          // Roles are cluster-wide: test files migrating their databases at the same moment may create or
          // grant the same role at once (008), and one of them then fails; the retry finds it done.
          const concurrent = /concurrently|already exists|duplicate key/.test((error as Error).message);
          if (concurrent && attempt < 3) continue;
          throw new Error(`migration ${file} failed: ${(error as Error).message}`);
        }
      }
    }
  } finally {
    await client.end();
  }
}

/** A fresh database with the audit migrations applied (or the ones `files` picks), on the server DATABASE_URL points at. */
export async function createAuditDatabase(
  label: string,
  files?: (file: string) => boolean,
): Promise<AuditDatabase> {
  const name = `audit_${label}_${process.pid}_${Date.now().toString(36)}`.toLowerCase();
  const server = await serverUrl();
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(server, name);
  await applyMigrations(url, files);
  const owner = new pg.Pool({ connectionString: url, max: 3 });
  return {
    url,
    name,
    owner,
    async drop() {
      await owner.end();
      const client = new pg.Client({ connectionString: server });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

export function withDatabase(url: string, database: string, user?: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${database}`;
  if (user) {
    parsed.username = user;
    parsed.password = '';
  }
  return parsed.toString();
}

/** A login role holding audit_writer, as the function's login role would in AWS (trust auth locally). */
export async function ensureWriterLogin(owner: pg.Pool, role = 'audit_append_test_login'): Promise<string> {
  await owner.query(`DO $$ BEGIN
      CREATE ROLE ${role} LOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
    END $$`);
  await owner.query(`GRANT audit_writer TO ${role}`).catch((error: { code?: string }) => {
    if (error.code !== 'XX000' && error.code !== '23505') throw error; // granted concurrently by another file
  });
  return role;
}
