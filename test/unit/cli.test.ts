import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const cli = (...args: string[]) => {
  const run = spawnSync(process.execPath, ['--import', 'tsx', 'local/cli.ts', ...args], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: run.status, stderr: run.stderr };
};

describe('local CLI: wrong usage is refused before anything starts, with the message alone', () => {
  it.each([
    [
      ['replay', '--function', 'billing'],
      'Choose exactly one of --from-earliest, --from-timestamp, --offsets\n',
    ],
    [
      ['replay', '--function', 'billing', '--offsets', '0-10'],
      '--offsets expects partition:offset pairs like 0:10,1:20, got "0-10"\n',
    ],
    [
      ['replay', '--function', 'billing', '--from-earliest', '--wait-timeout', 'soon'],
      '--wait-timeout must be a number of seconds above 0, got "soon"\n',
    ],
    [['dev', '--rate', 'abc'], '--rate must be events per second above 0, got "abc"\n'],
    [['dev', '--api-port', '70000'], '--api-port must be a port number (0: any free port), got "70000"\n'],
    [['dev', '--concurrency', '1.5'], '--concurrency must be a whole number of batches above 0, got "1.5"\n'],
    [
      ['redrive'],
      'redrive: --function <key> is required (e.g. --function billing) (npm run redrive -- --help)\n',
    ],
    [
      ['redrive', '--function', 'billing', '--reason', 'Timeout'],
      'redrive: --reason must be one of RetryAttemptsExhausted, RecordAgeExceeded, MaximumPayloadSizeExceeded, got "Timeout" (npm run redrive -- --help)\n',
    ],
    [
      ['redrive', '--function', 'billing', '--stage', 'prod'],
      "redrive: --stage prod: pass --bucket (the stack's FailedRecordsBucketName output) (npm run redrive -- --help)\n",
    ],
    [
      ['review', 'resolve', 'inc-1', '--decision', 'maybe', '--reviewer', 'ana'],
      'review resolve: --decision must be approve, override or escalate\n',
    ],
    [
      ['review', 'resolve', 'inc-1', '--decision', 'approve'],
      'review resolve: --reviewer NAME is required\n',
    ],
    [['review', 'list', '--limit', '0'], '--limit must be a whole number from 1 to 1000, got "0"\n'],
    [
      ['handover', '--topic', 'incident.detected', '--from', 'notifications'],
      'handover: --topic, --from and --to are required (npm run handover -- --help)\n',
    ],
    [
      ['handover', '--topic', 'incident.detected', '--from', 'notifications', '--to', 'billing'],
      'handover: serverless.yml has no function billing consuming incident.detected\n',
    ],
  ])('%j', (args, message) => {
    expect(cli(...args)).toEqual({ code: 2, stderr: message });
  });

  it('names the subcommand of an unknown flag', () => {
    const { code, stderr } = cli('replay', '--bogus');
    expect(code).toBe(2);
    expect(stderr).toMatch(/^replay: Unknown option '--bogus'/);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it.each([
    ['replay', 'usage: npm run replay -- --function <key>', '--from-timestamp <time>'],
    ['dev', 'usage: npm run dev -- [--rate N]', '--keep-stack'],
    ['status', 'usage: npm run esm:status', 'committed offset'],
    ['handover', 'usage: npm run handover -- --topic <topic>', '--dry-run'],
  ])('prints %s --help on stdout and exits 0, starting nothing', (command, first, mentions) => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'local/cli.ts', command, '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.startsWith(first)).toBe(true);
    expect(run.stdout).toContain(mentions);
    expect(run.stdout).toContain('--help');
  });

  it('prints redrive --help on stdout and exits 0', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'local/cli.ts', 'redrive', '--help'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^usage: npm run redrive -- --function <key>/);
    expect(run.stdout).toContain('--to-topic <topic>');
  });
});
