// The migration runner: what `stack up` applies locally and what an operator runs against Aurora with the master
// secret's URL (README, Operations).
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';

export const migrationsDir = join(import.meta.dirname, '..', 'migrations');

/**
 * Applies every migrations/*.sql in file-name order, once each, each in its own transaction, recorded in
 * schema_migrations with a checksum: an applied file that was edited afterwards is an error, not a silent skip.
 * Safe to run from several processes at once (a transaction-scoped advisory lock serialises them).
 */
export async function runMigrations(databaseUrl: string, dir = migrationsDir): Promise<string[]> {
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((name) => name.endsWith('.sql'))
        .sort()
    : [];
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  const applied: string[] = [];
  try {
    await client.query(
      `create table if not exists schema_migrations (
         name text primary key,
         checksum text not null,
         applied_at timestamptz not null default now()
       )`,
    );
    for (const name of files) {
      const sql = readFileSync(join(dir, name), 'utf8');
      const checksum = createHash('sha256').update(sql).digest('hex');
      await client.query('begin');
      try {
        await client.query('select pg_advisory_xact_lock(7243150417)');
        const { rows } = await client.query<{ checksum: string }>(
          'select checksum from schema_migrations where name = $1',
          [name],
        );
        if (rows[0]) {
          await client.query('commit');
          if (rows[0].checksum !== checksum) {
            throw new Error(
              `migration ${name} was edited after it was applied; add a new migration file instead`,
            );
          }
          continue;
        }
        await client.query(sql);
        await client.query('insert into schema_migrations (name, checksum) values ($1, $2)', [
          name,
          checksum,
        ]);
        await client.query('commit');
        applied.push(name);
      } catch (error) {
        await client.query('rollback').catch(() => {});
        throw new Error(`migration ${name} failed: ${(error as Error).message}`);
      }
    }
    return applied;
  } finally {
    await client.end();
  }
}
