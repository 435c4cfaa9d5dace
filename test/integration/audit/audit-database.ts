import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';

const MIGRATIONS = path.resolve(import.meta.dirname, '../../../migrations');

export const serverUrl = (): string =>
  process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface AuditDatabase {
  url: string;
  name: string;
  /** Connected as the superuser that ran the migrations (the store's owner). */
  owner: pg.Pool;
  drop(): Promise<void>;
}

/** Applies migrations/*.sql in name order, each in its own transaction, as local/provision.ts does. */
export async function applyMigrations(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const files = (await readdir(MIGRATIONS)).filter((file) => file.endsWith('.sql')).sort();
    for (const file of files) {
      const sql = await readFile(path.join(MIGRATIONS, file), 'utf8');
      await client.query('BEGIN');
      try {
        await client.query(sql);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${file} failed: ${(error as Error).message}`);
      }
    }
  } finally {
    await client.end();
  }
}

/** A fresh database with the audit migrations applied, on the server DATABASE_URL points at. */
export async function createAuditDatabase(label: string): Promise<AuditDatabase> {
  const name = `audit_${label}_${process.pid}_${Date.now().toString(36)}`.toLowerCase();
  const admin = new pg.Client({ connectionString: serverUrl() });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = withDatabase(serverUrl(), name);
  await applyMigrations(url);
  const owner = new pg.Pool({ connectionString: url, max: 3 });
  return {
    url,
    name,
    owner,
    async drop() {
      await owner.end();
      const client = new pg.Client({ connectionString: serverUrl() });
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
