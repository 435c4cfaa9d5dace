import { describe, expect, it } from 'vitest';
import { runAuditCommand } from '../../../../ops/audit/command';

// Usage never needs a database or S3: these run without DATABASE_URL.
async function run(argv: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const status = await runAuditCommand(argv, {
    databaseUrl: 'postgres://nobody@127.0.0.1:1/none',
    io: { out: (line) => out.push(line), err: (line) => err.push(line) },
  });
  return { status, out: out.join('\n'), err: err.join('\n') };
}

describe('audit CLI usage', () => {
  it('--help prints every command, --digests and set-login-password among them, and exits 0', async () => {
    for (const argv of [['--help'], ['help'], ['verify', '--help']]) {
      const { status, out } = await run(argv);
      expect(status, argv.join(' ')).toBe(0);
      expect(out).toContain(
        'audit verify [--topic T] [--partition N] [--from ISO] [--to ISO] [--digests s3://BUCKET/PREFIX]',
      );
      expect(out).toContain('audit digest --to s3://BUCKET/PREFIX');
      expect(out).toContain('audit set-login-password --secret-arn ARN');
    }
    expect((await run([])).status).toBe(2);
  });

  it('refuses a --digests or --to location that is not s3://bucket[/prefix], naming it', async () => {
    for (const argv of [
      ['verify', '--digests', 'https://bucket/x'],
      ['digest', '--to', 'bucket/x'],
    ]) {
      const { status, err } = await run(argv);
      expect(status, argv.join(' ')).toBe(2);
      expect(err).toMatch(/the digests location must be s3:\/\/bucket\[\/prefix\], got "/);
    }
  });
});
