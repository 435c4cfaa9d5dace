/**
 * `audit verify` and `audit query` (and `audit retention`) against the audit event store.
 *
 * Also as `tsx local/cli.ts audit ...`.
 *
 *   tsx ops/audit/command.ts verify [--topic T] [--partition N] [--from ISO] [--to ISO] [--digests s3://B/P] [--json]
 *   tsx ops/audit/command.ts digest --to s3://B/P    (writes one digest of every chain head, as audit-digest does)
 *   tsx ops/audit/command.ts set-login-password --secret-arn ARN   (the login of a secret gets its password)
 *   tsx ops/audit/command.ts query [--correlation-id C] [--type T] [--subject S] [--id ID [--source S]] [--from ISO] [--to ISO]
 *                            [--limit N] [--json]
 *   tsx ops/audit/command.ts retention --before ISO     (drops month partitions ending before it; >= 90 days ago)
 *
 * Connects to DATABASE_URL (the local stack exports it; in AWS use a role that can read the store).
 * Exit status: 0 ok, 1 a broken chain, 2 usage error.
 */
import { parseArgs } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import pg from 'pg';
import { parseSecret, secretsManagerReader } from '../../functions/audit-append/database-secret';
import { parseS3Url, readDigests, writeDigest } from '../../functions/audit-digest/digest';
import { PostgresChainHeads } from '../../functions/audit-digest/postgres-chain-heads';
import { S3DigestStore } from '../../functions/audit-digest/s3-digest-store';
import { operationsS3Client as s3Client } from '../s3-client';
import { describeBreak } from './chain-verifier';
import { setLoginPassword } from './login';
import { PostgresAuditReader } from './postgres-audit-reader';

export const AUDIT_USAGE = `usage:
  audit verify [--topic T] [--partition N] [--from ISO] [--to ISO] [--digests s3://BUCKET/PREFIX] [--json]
      walks every chain (body and content hashes, links, anchors, heads); with --digests also checks the
      chain of external digests and that every row hash they vouch for is still there
  audit digest --to s3://BUCKET/PREFIX
      writes one digest of every chain head, chained to the newest one there (what audit-digest does in AWS)
  audit query [--correlation-id C] [--type T] [--subject S] [--id ID [--source SRC]] [--from ISO] [--to ISO] [--limit N] [--json]
      an id is unique per source (CloudEvents): --id alone lists every source's event with it
  audit retention --before ISO
  audit set-login-password --secret-arn ARN
      sets the password of the secret's login (audit_append_login, audit_digest_login) as a SCRAM verifier
DATABASE_URL: the store (the owner's URL for retention and set-login-password); S3 via AWS_ENDPOINT_URL_S3 locally.`;

class UsageError extends Error {}

export interface AuditCommandIo {
  out: (line: string) => void;
  err: (line: string) => void;
}

const consoleIo: AuditCommandIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Runs one audit command; returns the exit status. */
export async function runAuditCommand(
  argv: string[],
  options: { databaseUrl?: string; io?: AuditCommandIo } = {},
): Promise<number> {
  const io = options.io ?? consoleIo;
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === 'help' || rest.includes('--help')) {
    (command === undefined ? io.err : io.out)(AUDIT_USAGE);
    return command === undefined ? 2 : 0;
  }
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(rest);
  } catch (error) {
    io.err(`${(error as Error).message}\n${AUDIT_USAGE}`);
    return 2;
  }
  const databaseUrl = options.databaseUrl ?? process.env.DATABASE_URL;
  if (!databaseUrl) {
    io.err('DATABASE_URL is not set (start the local stack, or point it at the audit database)');
    return 2;
  }
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1, application_name: 'audit-cli' });
  try {
    const reader = new PostgresAuditReader(pool);
    switch (command) {
      case 'verify':
        return await verify(reader, parsed, io);
      case 'query':
        return await query(reader, parsed, io);
      case 'retention':
        return await retention(reader, parsed, io);
      case 'digest':
        return await digest(pool, parsed, io);
      case 'set-login-password':
        return await loginPassword(pool, parsed, io);
      default:
        io.err(AUDIT_USAGE);
        return 2;
    }
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n${AUDIT_USAGE}`);
      return 2;
    }
    throw error;
  } finally {
    await pool.end();
  }
}

function parse(args: string[]) {
  return parseArgs({
    args,
    strict: true,
    options: {
      topic: { type: 'string' },
      partition: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      before: { type: 'string' },
      digests: { type: 'string' },
      'secret-arn': { type: 'string' },
      'correlation-id': { type: 'string' },
      type: { type: 'string' },
      subject: { type: 'string' },
      id: { type: 'string' },
      source: { type: 'string' },
      limit: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  }).values;
}

type Options = ReturnType<typeof parse>;

function date(value: string | undefined, name: string): Date | undefined {
  if (value === undefined) return undefined;
  const parsed = new Date(value);
  if (Number.isNaN(parsed.getTime()))
    throw new UsageError(`--${name} must be an ISO 8601 time, got "${value}"`);
  return parsed;
}

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  if (!Number.isInteger(parsed) || parsed < 0) throw new UsageError(`--${name} must be a whole number`);
  return parsed;
}

const json = (value: unknown) =>
  JSON.stringify(value, (_key, item) => (typeof item === 'bigint' ? item.toString() : item), 2);

function digestStore(url: string, s3: S3Client): { store: S3DigestStore; prefix: string } {
  let location: ReturnType<typeof parseS3Url>;
  try {
    location = parseS3Url(url);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return { store: new S3DigestStore(s3, location.bucket, location.prefix), prefix: location.prefix };
}

async function verify(reader: PostgresAuditReader, options: Options, io: AuditCommandIo): Promise<number> {
  let checkpoints: Awaited<ReturnType<typeof readDigests>> | undefined;
  if (options.digests !== undefined) {
    const s3 = s3Client();
    try {
      checkpoints = await readDigests(digestStore(options.digests, s3).store.all());
    } finally {
      s3.destroy();
    }
    if (checkpoints.problem) {
      io.out(`digests BROKEN at ${checkpoints.problem.key}: ${checkpoints.problem.reason}`);
      return 1;
    }
    if (checkpoints.digests === 0) {
      io.err(`no digests under ${options.digests}`);
      return 1;
    }
  }
  const report = await reader.verify({
    topic: options.topic,
    partition: integer(options.partition, 'partition'),
    from: date(options.from, 'from'),
    to: date(options.to, 'to'),
    checkpoints: checkpoints?.checkpoints,
  });
  if (options.json) {
    io.out(json({ ...report, digests: checkpoints?.digests }));
  } else {
    if (checkpoints) io.out(`${checkpoints.digests} digests form one chain`);
    for (const chain of report.chains) {
      const status = chain.broken ? 'BROKEN' : 'ok';
      io.out(
        `${status.padEnd(6)} ${chain.topic}-${chain.partition}: ${chain.rowsChecked} rows checked ` +
          `(seq ${chain.startSeq + 1n}..${chain.lastSeq}, from ${chain.startedFrom})`,
      );
    }
    if (report.chains.length === 0) io.out('no chains to verify');
    io.out(
      report.firstBreak ? `first broken link: ${describeBreak(report.firstBreak)}` : 'all chains intact',
    );
  }
  return report.ok ? 0 : 1;
}

async function query(reader: PostgresAuditReader, options: Options, io: AuditCommandIo): Promise<number> {
  const filter = {
    correlationId: options['correlation-id'],
    type: options.type,
    subject: options.subject,
    ceId: options.id,
    source: options.source,
    from: date(options.from, 'from'),
    to: date(options.to, 'to'),
    limit: integer(options.limit, 'limit'),
  };
  if (Object.entries(filter).every(([name, value]) => name === 'limit' || value === undefined)) {
    throw new UsageError(
      'query needs at least one of --correlation-id, --type, --subject, --id, --from, --to',
    );
  }
  const rows = await reader.query(filter);
  if (options.json) {
    io.out(json(rows));
    return 0;
  }
  for (const row of rows) {
    io.out(
      [
        row.time?.toISOString() ?? '-',
        row.type,
        row.ceId,
        `source=${row.source}`,
        `subject=${row.subject ?? '-'}`,
        `correlation=${row.correlationId ?? '-'}`,
        `${row.topic}-${row.partition}@${row.offset}`,
        `seq=${row.seq}`,
        JSON.stringify(row.data),
      ].join('  '),
    );
  }
  io.out(`${rows.length} event${rows.length === 1 ? '' : 's'}`);
  return 0;
}

async function retention(reader: PostgresAuditReader, options: Options, io: AuditCommandIo): Promise<number> {
  const before = date(options.before, 'before');
  if (!before) throw new UsageError('retention needs --before');
  const dropped = await reader.dropPartitionsBefore(before);
  for (const partition of dropped) {
    io.out(
      `dropped ${partition.droppedPartition}: ${partition.droppedRows} rows, ${partition.anchoredChains} chain anchors kept`,
    );
  }
  if (dropped.length === 0) io.out('nothing to drop');
  return 0;
}

async function digest(pool: pg.Pool, options: Options, io: AuditCommandIo): Promise<number> {
  const to = options.to;
  if (!to) throw new UsageError('digest needs --to s3://BUCKET/PREFIX');
  const s3 = s3Client();
  try {
    const { store, prefix } = digestStore(to, s3);
    const written = await writeDigest({ heads: new PostgresChainHeads(pool), store }, prefix);
    io.out(`digest ${written.key}: ${written.chains} chain heads`);
    return 0;
  } finally {
    s3.destroy();
  }
}

async function loginPassword(pool: pg.Pool, options: Options, io: AuditCommandIo): Promise<number> {
  const secretArn = options['secret-arn'];
  if (!secretArn) throw new UsageError('set-login-password needs --secret-arn');
  const secret = parseSecret(await secretsManagerReader()(secretArn));
  await setLoginPassword(pool, secret.username, secret.password);
  io.out(`password of ${secret.username} set from ${secretArn}`);
  return 0;
}

/** `tsx local/cli.ts audit <verify|digest|query|retention|set-login-password> ...` */
export function run(args: string[]): Promise<number> {
  return runAuditCommand(args);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  runAuditCommand(process.argv.slice(2)).then(
    (status) => {
      process.exitCode = status;
    },
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = 1;
    },
  );
}
