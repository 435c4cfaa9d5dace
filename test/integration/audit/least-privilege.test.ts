// Issue 21, findings 1 and 3 (migration 008), against the real PostgreSQL server: the function's own login
// cannot leave audit_writer, and retention cannot be entered with a session setting.

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendBatch } from '../../../functions/audit-append/append-batch';
import { databaseSettingsFromEnv } from '../../../functions/audit-append/database-settings';
import { PostgresAuditEventStore } from '../../../functions/audit-append/postgres-audit-event-store';
import { LambdaDatabase, pooled } from '../../../functions/audit-append/postgres-pool';
import { scramVerifier, setLoginPassword } from '../../../ops/audit/login';
import { PostgresAuditReader } from '../../../ops/audit/postgres-audit-reader';
import { cloudEventRecord, decodeJsonCloudEvent, mskEvent } from '../../unit/audit/support/msk';
import {
  type AuditDatabase,
  applyMigrations,
  createAuditDatabase,
  serverUrl,
  withDatabase,
} from './audit-database';

let db: AuditDatabase;
let functionDatabase: LambdaDatabase;

beforeAll(async () => {
  db = await createAuditDatabase('least_privilege');
  const server = new URL(db.url);
  // Exactly the function's connection path in AWS: a secret for its own login, the default DATABASE_ROLE.
  const secret = JSON.stringify({
    host: server.hostname,
    port: server.port || '5432',
    username: 'audit_append_login',
    password: 'not-checked-under-trust-auth',
    dbname: db.name,
  });
  functionDatabase = new LambdaDatabase(
    databaseSettingsFromEnv({ DATABASE_SECRET_ARN: 'arn:test', DATABASE_SSL: 'disable' }),
    async () => secret,
  );
});
afterAll(async () => {
  await functionDatabase?.end();
  await db?.drop();
});

/** Runs the statements in one session of the function, in order; returns each one's error message (or 'ok'). */
async function inFunctionSession(statements: string[]): Promise<string[]> {
  return functionDatabase.withConnection(async (client) => {
    const results: string[] = [];
    for (const statement of statements) {
      try {
        await client.query(statement);
        results.push('ok');
      } catch (error) {
        results.push((error as Error).message);
      }
    }
    return results;
  });
}

describe("audit-append's own login (audit_append_login)", () => {
  it('appends as audit_writer', async () => {
    const { rows } = await functionDatabase.withConnection((client) =>
      client.query('SELECT session_user AS login, current_user AS role'),
    );
    expect(rows[0]).toEqual({ login: 'audit_append_login', role: 'audit_writer' });
    const result = await appendBatch(mskEvent([cloudEventRecord({ topic: 'payment.login', offset: 0 })]), {
      store: new PostgresAuditEventStore(functionDatabase),
      decode: decodeJsonCloudEvent,
    });
    expect(result.appended).toBe(1);
  });

  it('can SET ROLE to nothing but audit_writer, not even back to an owner', async () => {
    const { rows } = await db.owner.query<{ owner: string }>(
      "SELECT pg_get_userbyid(relowner) AS owner FROM pg_class WHERE relname = 'audit_event'",
    );
    const owner = rows[0]?.owner as string;
    for (const target of [owner, 'postgres', 'audit_retention', 'audit_reader', 'pg_write_all_data']) {
      const [result] = await inFunctionSession([`SET ROLE ${target}`]);
      expect(result, target).toMatch(/permission denied to set role/);
    }
    const [authorization] = await inFunctionSession([`SET SESSION AUTHORIZATION ${owner}`]);
    expect(authorization).toMatch(/permission denied/);
    // SET ROLE NONE / RESET ROLE: back to the login, which by itself holds less than audit_writer.
    expect(
      await inFunctionSession([
        'SET ROLE NONE',
        'SELECT current_user',
        'SELECT count(*) FROM audit_event',
        'RESET ROLE',
        'SET ROLE audit_writer',
      ]),
    ).toEqual(['ok', 'ok', expect.stringMatching(/permission denied/), 'ok', 'ok']);
    const { rows: attributes } = await db.owner.query(
      `SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolinherit,
              ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
                    WHERE m.member = r.oid)::text[] AS member_of
       FROM pg_roles r WHERE rolname = 'audit_append_login'`,
    );
    expect(attributes[0]).toEqual({
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolreplication: false,
      rolbypassrls: false,
      rolinherit: false,
      member_of: ['audit_writer'],
    });
  });

  it('cannot alter the schema, the triggers, the heads or the anchors, as audit_writer or after RESET ROLE', async () => {
    const statements = [
      'ALTER TABLE audit_event DISABLE TRIGGER USER',
      'DROP TRIGGER audit_event_append_only ON audit_event',
      'CREATE TABLE audit_planted (n int)',
      'CREATE SCHEMA planted',
      'CREATE OR REPLACE FUNCTION audit_reject_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$',
      "UPDATE audit_chain_head SET last_seq = 0 WHERE topic = 'payment.login'",
      "INSERT INTO audit_chain_anchor VALUES ('payment.login', 0, 1, '\\x00', now(), 'x')",
      'SET session_replication_role = replica',
      "SELECT * FROM audit_drop_partitions_before(now() - interval '1 year')",
      'DROP TABLE audit_event',
      'GRANT audit_writer TO audit_digest_login',
    ];
    for (const reset of [false, true]) {
      const results = await inFunctionSession([...(reset ? ['RESET ROLE'] : []), ...statements]);
      for (const [index, statement] of statements.entries()) {
        expect(results[index + (reset ? 1 : 0)], `${reset ? 'after RESET ROLE: ' : ''}${statement}`).toMatch(
          /permission denied|must be owner|must have admin option/,
        );
      }
    }
  });
});

describe('audit set-login-password', () => {
  it('gives the server the SCRAM verifier PostgreSQL itself would store, for the store logins only', async () => {
    const client = await db.owner.connect();
    try {
      await client.query('BEGIN');
      await client.query("SET LOCAL password_encryption = 'scram-sha-256'");
      await client.query("ALTER ROLE audit_digest_login PASSWORD 'a-long-enough-password-1'");
      const { rows } = await client.query<{ verifier: string }>(
        "SELECT rolpassword AS verifier FROM pg_authid WHERE rolname = 'audit_digest_login'",
      );
      const serverVerifier = rows[0]?.verifier as string;
      const salt = Buffer.from(serverVerifier.split('$')[1]?.split(':')[1] as string, 'base64');
      expect(scramVerifier('a-long-enough-password-1', salt)).toBe(serverVerifier);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    await expect(setLoginPassword(db.owner, 'postgres', 'a-long-enough-password-1')).rejects.toThrow(
      /refusing/,
    );
    const client2 = await db.owner.connect();
    try {
      await client2.query('BEGIN');
      await setLoginPassword(client2, 'audit_append_login', 'a-long-enough-password-2');
      const { rows } = await client2.query<{ verifier: string }>(
        "SELECT rolpassword AS verifier FROM pg_authid WHERE rolname = 'audit_append_login'",
      );
      expect(rows[0]?.verifier).toMatch(/^SCRAM-SHA-256\$4096:/);
      await client2.query('ROLLBACK');
    } finally {
      client2.release();
    }
  });
});

describe('retention (finding 3)', () => {
  it('has no session-setting bypass: audit.retention_in_progress lets nobody delete ids, the owner included', async () => {
    const { rows } = await db.owner.query<{ n: number }>('SELECT count(*)::int AS n FROM audit_event_ids');
    expect(rows[0]?.n).toBeGreaterThan(0);
    const client = await db.owner.connect();
    try {
      await client.query('BEGIN');
      await client.query("SELECT set_config('audit.retention_in_progress', 'on', true)");
      await expect(client.query('DELETE FROM audit_event_ids')).rejects.toThrow(/append-only/);
      await client.query('ROLLBACK');
      await client.query('SET audit.retention_in_progress = on');
      await expect(client.query('DELETE FROM audit_event_ids')).rejects.toThrow(/append-only/);
      await client.query('RESET audit.retention_in_progress');
    } finally {
      client.release();
    }
    expect(
      await inFunctionSession(['SET audit.retention_in_progress = on', 'DELETE FROM audit_event_ids']),
    ).toEqual(['ok', expect.stringMatching(/permission denied/)]);
  });

  it('goes through one SECURITY DEFINER function owned by a NOLOGIN role that owns the partitions and that no login can become', async () => {
    const { rows } = await db.owner.query(
      `SELECT pg_get_userbyid(p.proowner) AS owner, p.prosecdef AS definer,
              (SELECT rolcanlogin FROM pg_roles WHERE rolname = 'audit_retention') AS can_login,
              ARRAY(SELECT m.rolname FROM pg_auth_members a JOIN pg_roles m ON m.oid = a.member
                    JOIN pg_roles g ON g.oid = a.roleid
                    WHERE g.rolname = 'audit_retention'
                      AND m.rolname IN ('audit_append_login', 'audit_digest_login', 'audit_writer', 'audit_reader')
                   )::text[] AS audit_members,
              ARRAY(SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                    WHERE i.inhparent = 'audit_event'::regclass)::text[] AS partition_owners
       FROM pg_proc p WHERE p.proname = 'audit_drop_partitions_before'`,
    );
    expect(rows).toEqual([
      {
        owner: 'audit_retention',
        definer: true,
        can_login: false,
        audit_members: [],
        partition_owners: ['audit_retention'],
      },
    ]);
    expect(await inFunctionSession(['SET ROLE audit_retention'])).toEqual([
      expect.stringMatching(/permission denied/),
    ]);
  });
});

describe('migrations and retention as an Aurora-like master user (CREATEROLE, no superuser)', () => {
  it('apply, hand the partitions to audit_retention, and retention still drops old months while the owner cannot delete ids', async () => {
    const server = await serverUrl();
    const admin = new pg.Client({ connectionString: server });
    const name = `audit_master_${process.pid}_${Date.now().toString(36)}`;
    await admin.connect();
    try {
      await admin.query(`DO $$ BEGIN
          CREATE ROLE audit_test_master LOGIN CREATEROLE NOSUPERUSER;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END $$`);
      await admin.query(`CREATE DATABASE ${name} OWNER audit_test_master`);
      const url = withDatabase(server, name, 'audit_test_master');
      await applyMigrations(url);
      const master = new pg.Pool({ connectionString: url, max: 2 });
      // DROP DATABASE ... WITH (FORCE) below ends a connection the pool may still be closing.
      master.on('error', (error) => expect((error as { code?: string }).code).toBe('57P01'));
      try {
        const { rows } = await master.query('SELECT rolsuper FROM pg_roles WHERE rolname = current_user');
        expect(rows[0]).toEqual({ rolsuper: false });
        const day = 24 * 3600 * 1000;
        const old = new PostgresAuditEventStore(pooled(master), {
          recordedAt: () => new Date(Date.now() - 200 * day),
        });
        await appendBatch(
          mskEvent([0, 1].map((offset) => cloudEventRecord({ topic: 'payment.aurora', offset }))),
          {
            store: old,
            decode: decodeJsonCloudEvent,
          },
        );
        await expect(master.query('DELETE FROM audit_event_ids')).rejects.toThrow(/append-only/);
        const client = await master.connect();
        try {
          await client.query('SET audit.retention_in_progress = on');
          await expect(client.query('DELETE FROM audit_event_ids')).rejects.toThrow(/append-only/);
        } finally {
          client.release();
        }
        const reader = new PostgresAuditReader(master);
        const dropped = await reader.dropPartitionsBefore(new Date(Date.now() - 90 * day));
        expect(dropped.reduce((sum, partition) => sum + partition.droppedRows, 0)).toBe(2);
        const { rows: ids } = await master.query<{ n: number }>(
          'SELECT count(*)::int AS n FROM audit_event_ids',
        );
        expect(ids[0]?.n).toBe(0);
      } finally {
        await master.end();
      }
    } finally {
      await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.end();
    }
  });
});
