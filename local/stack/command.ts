// `npm run stack -- up|down|status`
import { down, liveLeases, readStackState, shownEndpoint, status, up } from './index';
import { ensureKafkaJars, kafkaJarsPresent } from './kafka';
import { kafkaLibDir, stateDir } from './paths';

const USAGE = `usage: npm run stack -- <up|down|status|fetch>

  up       start what is not running (Kafka, PGlite, dynalite, s3rver), provision topics, tables, bucket
           and migrations from serverless.yml; reuse what already runs. Endpoints: .local/stack.json
  down     stop every child by its pid (SIGTERM, then SIGKILL); refuses while a test run uses the
           stack unless --force
  status   each service with pid, endpoint and whether it answers
  fetch    only fetch the Kafka broker jars with Maven (once; npm run fetch:kafka)

Environment: KAFKA_BROKERS, DATABASE_URL, AWS_ENDPOINT_URL_DYNAMODB, AWS_ENDPOINT_URL_S3 use that endpoint
instead of starting a service. Ports: STACK_KAFKA_PORT (9092), STACK_KAFKA_CONTROLLER_PORT (9093),
STACK_POSTGRES_PORT (15432), STACK_DYNAMODB_PORT (4567), STACK_S3_PORT (4569). State: STACK_STATE_DIR (.local).
`;

const log = (line: string) => process.stderr.write(`${line}\n`);

export async function run(args: string[]): Promise<number> {
  const [action] = args;
  switch (action) {
    case 'up': {
      const started = Date.now();
      const state = await up({ owner: 'cli', log });
      for (const service of state.services) {
        const pid = service.pid ? `pid ${service.pid}` : 'external';
        log(
          `${service.name.padEnd(9)} ${service.action.padEnd(8)} ${pid.padEnd(10)} ${shownEndpoint(service.endpoint)}`,
        );
        if (service.storage === 'memory')
          log(
            `note: ${service.name} keeps its tables in memory (a benchmark started it): nothing in it survives a ` +
              'restart; `npm run stack -- down` and `up` again for tables on disk',
          );
      }
      const p = state.provision;
      if (p) {
        log(
          `provisioned: ${p.topicsCreated.length} topics, ${p.tablesCreated.length} tables, ` +
            `${p.bucketCreated ? 1 : 0} bucket, ${p.migrationsApplied.length} migrations created/applied`,
        );
        for (const note of p.notes) log(`note: ${note}`);
      }
      log(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s; endpoints in ${stateDir}/stack.json`);
      // The env lines on stdout, so `eval "$(npm run -s stack -- up)"` or `... > .env` work.
      for (const [name, value] of Object.entries(state.env)) process.stdout.write(`${name}=${value}\n`);
      return 0;
    }
    case 'down': {
      // Several people share this working tree: do not pull the stack from under a running test suite.
      const leases = liveLeases();
      if (leases.length > 0 && !args.includes('--force')) {
        process.stderr.write(
          `the stack is in use by ${leases.length} running test run(s) (pid ${leases.join(', ')}); ` +
            'they stop it themselves when they finish. Use `npm run stack -- down --force` to stop it now.\n',
        );
        return 1;
      }
      const results = await down();
      if (results.length === 0) log('nothing was running');
      for (const r of results) log(`${r.name.padEnd(9)} pid ${r.pid} ${r.result}`);
      return 0;
    }
    case 'fetch': {
      // CI and first-time setup: the broker jars only (skipped when local/kafka/target/lib is complete).
      await ensureKafkaJars(log);
      log(kafkaJarsPresent() ? `kafka jars ready in ${kafkaLibDir}` : 'kafka jars missing');
      return kafkaJarsPresent() ? 0 : 1;
    }
    case 'status': {
      const services = await status();
      const state = readStackState();
      for (const s of services) {
        const pid = s.pid ? `pid ${s.pid}` : s.managed ? '-' : 'external';
        const notes = [
          s.note ?? (s.owner === 'test' ? 'started by a test run' : undefined),
          s.storage === 'memory' ? 'tables in memory' : undefined,
        ].filter((n) => n !== undefined);
        const note = notes.length > 0 ? `  (${notes.join('; ')})` : '';
        process.stdout.write(
          `${s.name.padEnd(9)} ${(s.up ? 'up' : 'down').padEnd(5)} ${pid.padEnd(10)} ${shownEndpoint(s.endpoint)}${note}\n`,
        );
      }
      if (state) process.stdout.write(`last up: ${state.updatedAt}\n`);
      return services.every((s) => s.up) ? 0 : 3;
    }
    default:
      process.stderr.write(USAGE);
      return action === undefined || action === '--help' ? 0 : 2;
  }
}
