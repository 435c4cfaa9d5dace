// The project's one command: `tsx local/cli.ts <subcommand> [args]` (npm run stack -- up, ...), for the local
// platform (stack, dev, status) and the operations in ops/ (replay, redrive, handover, topics, review, audit).
// Each subcommand is a module exporting `run(args): Promise<number | undefined>` (the exit code); add one by
// adding a line to the map. Modules load lazily, so one subcommand never pays for another's imports.
import { CliError } from '../shared/cli-error';

type Subcommand = { run(args: string[]): Promise<number | undefined> };

const subcommands: Record<string, { summary: string; load: () => Promise<Subcommand> }> = {
  stack: {
    summary: 'up | down | status of the local services (Kafka, PostgreSQL, DynamoDB, S3)',
    load: () => import('./stack/command'),
  },
  dev: {
    summary: 'the whole service locally: stack, every ESM with the real handlers, traffic, live table',
    load: () => import('./dev'),
  },
  replay: {
    summary: "replay a function's topic: disable its ESM, reset the group's offsets, enable (local or AWS)",
    load: () => import('../ops/replay'),
  },
  redrive: {
    summary:
      'send failed-records objects back to their function (or topic) and tag them redriven (local or AWS)',
    load: () => import('../ops/redrive/command'),
  },
  handover: {
    summary: "before moving a topic to another function: its consumer group takes the other's offsets",
    load: () => import('../ops/handover'),
  },
  status: {
    summary: 'consumer lag per ESM and partition',
    load: () => import('./status'),
  },
  topics: {
    summary: 'plan | apply the Kafka topics of serverless.yml (custom.kafka) on MSK or the local broker',
    load: () => import('../ops/topics'),
  },
  review: {
    summary: 'list open human reviews; resolve one (produces genai.hitl.resolved)',
    load: () => import('../ops/review'),
  },
  audit: {
    summary: 'verify the audit hash chains, query audit events, drop partitions past retention',
    load: () => import('../ops/audit/command'),
  },
};

function usage(): string {
  const lines = Object.entries(subcommands).map(([name, { summary }]) => `  ${name.padEnd(10)} ${summary}`);
  return `usage: tsx local/cli.ts <subcommand> [args]\n\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  const entry = name ? subcommands[name] : undefined;
  if (!entry) {
    process.stderr.write(name && name !== '--help' ? `unknown subcommand "${name}"\n\n${usage()}` : usage());
    return name && name !== '--help' ? 2 : 0;
  }
  const subcommand = await entry.load();
  return (await subcommand.run(args)) ?? 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Failures written for the reader (CliError, StackError, parseArgs' unknown or malformed flags) print their
    // message alone; anything else is a bug and prints its stack.
    const err = error as Error & { code?: string; exitCode?: number };
    if (err instanceof CliError || err.name === 'StackError') {
      process.stderr.write(`${err.message}\n`);
      process.exitCode = err.exitCode ?? 1;
    } else if (err.code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`${process.argv[2]}: ${err.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`${err.stack ?? String(err)}\n`);
      process.exitCode = 1;
    }
  },
);
