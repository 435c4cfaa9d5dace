// `npm run dev`: the whole service locally. Starts the stack (Kafka, PostgreSQL, DynamoDB, S3) and
// provisions it, runs every ESM of serverless.yml with the real handlers (worker threads as execution
// environments, each function with its own environment), feeds traffic and shows a live table. Ctrl-C stops
// everything. The workers run each function's bundle, built as `serverless package` builds it and rebuilt
// when functions/, shared/ or schemas/ change; --sources runs the TypeScript sources through tsx instead.
//
//   npm run dev -- [--rate N] [--no-samples] [--keep-stack] [--api-port 4010] [--concurrency N]
//                  [--inspect] [--inspect-port 9229] [--sources]
import '../shared/kafka/node20-polyfills';
import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { Admin } from '@platformatic/kafka';
import type { SampleEventType } from '../schemas/samples';
import { dynamoDocumentClient } from '../shared/aws-clients';
import { numberFlag } from '../shared/cli-error';
import { bundlesDir, FunctionBundles, functionCode, reloadOnRebuild } from './esm/bundles';
import { esmDefinitionsFrom, type ResolvedServerlessConfig } from './esm/config';
import { renderDashboard } from './esm/dashboard';
import { DEBUG_TIMEOUT_SECONDS, openInspector, withDebugTimeouts } from './esm/debug';
import { EsmEmulator } from './esm/emulator';
import { functionEnvironment } from './esm/function-env';
import { type PartitionLag, partitionLags } from './esm/lag';
import { RecordTimes } from './esm/record-times';
import { type GeneratedTraffic, generateTraffic, produceSamples, sampleRecords } from './esm/traffic';
import { defaultInstances, type WorkerHandler, workerHandler } from './esm/worker-handler';
import { startLambdaApi } from './lambda-api/server';
import { outboxPanel } from './outbox-panel';
import { localDefinitions } from './provision';
import { resolvedServerlessConfig } from './serverless-config';
import { down, up } from './stack/index';
import { logsDir, repoRoot, stateDir } from './stack/paths';

/** Where `replay` finds the local Lambda endpoint while `dev` runs. */
export const EMULATOR_STATE_FILE = path.resolve(
  process.env.ESM_EMULATOR_STATE_FILE ?? path.join(stateDir, 'esm-emulator.json'),
);

export const USAGE = `usage: npm run dev -- [--rate N] [--no-samples] [--keep-stack] [--api-port 0] [--concurrency N]
                      [--inspect] [--inspect-port 9229] [--sources]

The whole service locally: brings the stack up (Kafka, PostgreSQL, DynamoDB, S3), runs every ESM of serverless.yml
with the real handlers (each function's bundle in worker threads, rebuilt on change), produces the events/ samples
and shows a live table. Ctrl-C stops everything (the stack too, if this run started it).

  --rate <n>               also produce n generated events per second across the consumed topics
  --no-samples             do not produce the events/ samples
  --keep-stack             leave a stack this run started running
  --api-port <n>           the local Lambda API's port (default 0: any free port)
  --concurrency <n>        batches in flight per ESM (default maximumPollers x 5, at most ESM_FUNCTION_INSTANCES)
  --inspect                open the inspector (port 9229) with source maps; function timeouts become 900 s
  --inspect-port <n>       the inspector's port (0: any free port); implies --inspect
  --sources                run the TypeScript sources through tsx instead of the bundles
  --help                   this text`;

export async function run(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      help: { type: 'boolean' },
      rate: { type: 'string' },
      'no-samples': { type: 'boolean' },
      'keep-stack': { type: 'boolean' },
      'api-port': { type: 'string', default: '0' },
      concurrency: { type: 'string' },
      inspect: { type: 'boolean' },
      'inspect-port': { type: 'string' },
      sources: { type: 'boolean' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  // Checked before anything starts: a typo must not bring the stack up first.
  const rate = numberFlag(
    'rate',
    values.rate,
    (n) => n > 0 && Number.isFinite(n),
    'events per second above 0',
  );
  const apiPort = numberFlag(
    'api-port',
    values['api-port'],
    (n) => Number.isInteger(n) && n >= 0 && n <= 65_535,
    'a port number (0: any free port)',
  );
  const concurrency = numberFlag(
    'concurrency',
    values.concurrency,
    (n) => Number.isInteger(n) && n > 0,
    'a whole number of batches above 0',
  );
  const inspectPort = numberFlag(
    'inspect-port',
    values['inspect-port'],
    (n) => Number.isInteger(n) && n >= 0 && n <= 65_535,
    'a port number (0: any free port)',
  );
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const inspecting = values.inspect || inspectPort !== undefined;
  if (inspecting) {
    const url = openInspector(inspectPort ?? 9229);
    log(
      `debugger: ${url} (VS Code: attach to 127.0.0.1:${new URL(url).port}; Chrome: chrome://inspect). ` +
        `Function timeouts are ${DEBUG_TIMEOUT_SECONDS} s while debugging.`,
    );
  }

  await rm(EMULATOR_STATE_FILE, { force: true });
  const stack = await up({ owner: 'cli', log });
  Object.assign(process.env, stack.env);
  const startedStack = stack.services.every((s) => !s.managed || s.action === 'started');
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');

  const config: ResolvedServerlessConfig = resolvedServerlessConfig();
  const local = localDefinitions(config);
  const resourceNames: Record<string, string> = { FailedRecordsBucket: local.failedRecordsBucket };
  for (const [logicalId, table] of Object.entries(local.tables))
    resourceNames[logicalId] = table.TableName as string;
  const configured = esmDefinitionsFrom(config, {
    failedRecordsBucket: local.failedRecordsBucket,
    // Batches in flight per ESM; default: maximumPollers x 5 as a provisioned poller allows, but no more than
    // the function's local execution environments.
    ...(concurrency ? { maximumConcurrency: concurrency } : {}),
    instances: defaultInstances(),
  });
  const definitions = inspecting ? withDebugTimeouts(configured) : configured;

  // Function and emulator logs go to a file, so the live table stays readable.
  const logPath = path.join(logsDir, 'dev-functions.log');
  await mkdir(path.dirname(logPath), { recursive: true });
  const functionLog = createWriteStream(logPath, { flags: 'a' });
  const logFunctions = (line: string) => functionLog.write(`${new Date().toISOString()} ${line}\n`);
  const keys = [...new Set(definitions.map((d) => d.functionKey))].filter((key) => config.functions[key]);
  const code = functionCode(values.sources);
  let codeNote = 'sources (tsx)';
  // Kept in the header until dev restarts, whatever the rebuilds say.
  let unwatched = '';
  let bundles: FunctionBundles | undefined;
  if (code === 'bundles') {
    const started = Date.now();
    bundles = await FunctionBundles.build(config, {
      root: repoRoot,
      outDir: bundlesDir(repoRoot, 'dev'),
      functions: keys,
      // Breakpoints in the .ts sources bind through the bundles' source maps.
      sourceMaps: inspecting,
    });
    codeNote = `bundles (built in ${((Date.now() - started) / 1000).toFixed(1)} s, rebuilt on change)`;
    log(`bundled ${keys.length} functions: ${codeNote}; --sources runs the TypeScript sources`);
  }
  const workers = new Map<string, WorkerHandler>();
  for (const key of keys) {
    const fn = config.functions[key] as { handler: string };
    workers.set(
      key,
      workerHandler(fn.handler, functionEnvironment(config, key, resourceNames), {
        output: functionLog,
        ...(bundles ? { bundle: bundles.file(key) } : {}),
      }),
    );
  }
  if (bundles) {
    // A changed bundle: the function's next invocations start fresh workers; running ones finish first.
    reloadOnRebuild(bundles, workers);
    bundles.onRebuild(({ ok, changed, error, ms }) => {
      const at = new Date().toISOString().slice(11, 19);
      if (!ok) {
        codeNote = `bundles (rebuild FAILED at ${at}, the previous bundles run; see the log)`;
        logFunctions(`bundles: rebuild failed, the previous bundles keep running:\n${error}`);
        return;
      }
      if (changed.length === 0) return;
      codeNote = `bundles (rebuilt ${at} in ${(ms / 1000).toFixed(1)} s: ${changed.join(', ')})`;
      logFunctions(
        `bundles rebuilt in ${ms.toFixed(0)} ms: ${changed.join(', ')}; their next invocations run the new code`,
      );
    });
    bundles.watch(undefined, (error) => {
      unwatched = '  a folder is NOT WATCHED (see the log)';
      logFunctions(`bundles: ${error.message}; changes in it are not rebuilt until dev restarts`);
    });
  }
  const emulator = new EsmEmulator({
    definitions,
    brokers,
    loadHandler: async (definition) => (workers.get(definition.functionKey) as WorkerHandler).handler,
    log: logFunctions,
  });
  log(`starting ${definitions.length} event source mappings`);
  await emulator.start();
  const api = await startLambdaApi(emulator, { port: apiPort ?? 0 });
  await mkdir(path.dirname(EMULATOR_STATE_FILE), { recursive: true });
  // Write then rename: a reader never sees half a file.
  await writeFile(
    `${EMULATOR_STATE_FILE}.tmp`,
    JSON.stringify({ lambdaEndpoint: api.url, pid: process.pid }),
  );
  await rename(`${EMULATOR_STATE_FILE}.tmp`, EMULATOR_STATE_FILE);
  log(`Lambda API for event source mappings: ${api.url} (replay: npm run replay -- --function <name> ...)`);
  log(`function and emulator logs: ${logPath}`);

  const topics = new Set(local.topics.map((t) => t.name));
  if (!values['no-samples']) {
    const samples = await sampleRecords(topics);
    await produceSamples(brokers, samples);
    log(`produced ${samples.length} sample records from events/`);
  }
  let traffic: GeneratedTraffic | undefined;
  if (rate) {
    const consumed = [...new Set(definitions.map((d) => d.topic))] as SampleEventType[];
    traffic = generateTraffic(rate, consumed);
  }

  // What notifications and oncall-paging delivered to the local outbox (absent when they send through SNS/SES).
  const outbox = config.functions.notifications
    ? outboxPanel(
        dynamoDocumentClient(),
        functionEnvironment(config, 'notifications', resourceNames),
        (message) => functionLog.write(`${new Date().toISOString()} ${message}\n`),
      )
    : undefined;

  const admin = new Admin({ clientId: 'dev-lag', bootstrapBrokers: brokers });
  const recordTimes = new RecordTimes(brokers);
  const lags = new Map<string, PartitionLag[]>();
  let refreshing = false;
  const refreshLags = async () => {
    if (refreshing) return;
    refreshing = true;
    try {
      for (const m of emulator.mappings) {
        lags.set(
          m.definition.uuid,
          await partitionLags(admin, m.definition.consumerGroupId, m.definition.topic, recordTimes),
        );
      }
    } catch (error) {
      log(`lag: ${(error as Error).message}`);
    } finally {
      refreshing = false;
    }
  };
  const render = () => {
    const produced = traffic ? `  produced ${traffic.produced()}` : '';
    const header = `mobility-events dev  ${new Date().toISOString()}  Lambda API ${api.url}${produced}  code: ${codeNote}${unwatched}  logs ${logPath}  (Ctrl-C to stop)`;
    const table = renderDashboard(
      emulator.mappings.map((mapping) => ({
        mapping,
        lags: lags.get(mapping.definition.uuid),
        coldStartMs: workers.get(mapping.definition.functionKey)?.coldStarts().lastMs,
      })),
      header,
    );
    const display = outbox ? `${table}\n\n${outbox.render()}` : table;
    process.stdout.write(process.stdout.isTTY ? `\x1b[2J\x1b[H${display}\n` : `${display}\n\n`);
  };
  const lagTimer = setInterval(() => void Promise.all([refreshLags(), outbox?.refresh()]), 2000);
  const renderTimer = setInterval(render, process.stdout.isTTY ? 1000 : 5000);

  await untilInterrupted(log);
  log('stopping...');
  clearInterval(lagTimer);
  clearInterval(renderTimer);
  await traffic?.stop();
  await api.close();
  await emulator.stop();
  await Promise.all([...workers.values()].map((w) => w.close()));
  await bundles?.close();
  await Promise.all([admin.close(), recordTimes.close()]);
  await rm(EMULATOR_STATE_FILE, { force: true });
  await outbox?.refresh();
  render();
  functionLog.end();
  if (startedStack && !values['keep-stack']) {
    log('stopping the stack this run started (--keep-stack leaves it running)');
    await down();
  }
  return 0;
}

/**
 * Resolves on the first SIGINT/SIGTERM. A terminal's Ctrl-C reaches this process twice (directly and relayed
 * by npm/tsx), so repeats within 2 s are ignored; a later one forces the exit.
 */
function untilInterrupted(log: (line: string) => void): Promise<void> {
  return new Promise((resolve) => {
    let first: number | undefined;
    const onSignal = () => {
      if (first === undefined) {
        first = Date.now();
        resolve();
      } else if (Date.now() - first > 2000) {
        log('interrupted again: exiting without a clean stop');
        process.exit(130);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
