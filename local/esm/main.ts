// Runs the emulator (and the local Lambda API) as its own process:
//   tsx local/esm/main.ts [--functions a,b] [--api-port 4010] [--sources]
// Runs each function's bundle (bundles.ts; built at start, not watched) in worker threads, or with --sources
// (or ESM_FUNCTION_CODE=sources) its TypeScript sources in this process.
//   tsx local/esm/main.ts --definitions-file defs.json --handler-module handler.ts   (tests)
// Prints one line `ESM_EMULATOR_READY <json>` when every enabled mapping has joined its group.
import '../../shared/kafka/node20-polyfills';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startLambdaApi } from '../lambda-api/server';
import { resolvedServerlessConfig } from '../serverless-config';
import { repoRoot } from '../stack/paths';
import { bundlesDir, FunctionBundles, functionCode } from './bundles';
import { type EsmDefinition, loadEsmDefinitions } from './config';
import { EsmEmulator } from './emulator';
import type { EsmHandler } from './invoker';
import { type WorkerHandler, workerHandler } from './worker-handler';

const { values } = parseArgs({
  options: {
    functions: { type: 'string' },
    'api-port': { type: 'string' },
    'definitions-file': { type: 'string' },
    'handler-module': { type: 'string' },
    sources: { type: 'boolean' },
  },
});

async function definitions(): Promise<EsmDefinition[]> {
  if (values['definitions-file']) {
    return JSON.parse(await readFile(values['definitions-file'], 'utf8')) as EsmDefinition[];
  }
  const all = await loadEsmDefinitions();
  const only = values.functions?.split(',');
  return only ? all.filter((d) => only.includes(d.functionKey)) : all;
}

async function injectedHandler(): Promise<EsmHandler | undefined> {
  const modulePath = values['handler-module'];
  if (!modulePath) return undefined;
  const module = (await import(pathToFileURL(path.resolve(modulePath)).href)) as { handler?: EsmHandler };
  if (typeof module.handler !== 'function') throw new Error(`${modulePath} does not export "handler"`);
  return module.handler;
}

async function main(): Promise<void> {
  const brokers = (process.env.KAFKA_BROKERS ?? '127.0.0.1:9092').split(',');
  const defs = await definitions();
  const handler = await injectedHandler();
  const bundles =
    handler || functionCode(values.sources) === 'sources'
      ? undefined
      : await FunctionBundles.build(resolvedServerlessConfig(), {
          root: repoRoot,
          outDir: bundlesDir(repoRoot, 'emulator'),
          functions: [...new Set(defs.map((d) => d.functionKey))],
        });
  // One set of execution environments per function, with this process's environment and the function's memory size.
  const workers = new Map<string, WorkerHandler>();
  const workersOf = (d: EsmDefinition): WorkerHandler => {
    let functionWorkers = workers.get(d.functionKey);
    if (!functionWorkers) {
      functionWorkers = workerHandler(
        d.handler,
        { AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(d.memorySize) },
        { bundle: bundles?.file(d.functionKey) },
      );
      workers.set(d.functionKey, functionWorkers);
    }
    return functionWorkers;
  };
  const emulator = new EsmEmulator({
    definitions: defs,
    brokers,
    ...(handler ? { handlers: Object.fromEntries(defs.map((d) => [d.uuid, handler])) } : {}),
    ...(bundles ? { loadHandler: async (d: EsmDefinition) => workersOf(d).handler } : {}),
  });
  await emulator.start();
  const api = await startLambdaApi(emulator, {
    ...(values['api-port'] ? { port: Number(values['api-port']) } : {}),
  });
  console.log(`ESM_EMULATOR_READY ${JSON.stringify({ lambdaEndpoint: api.url, mappings: defs.length })}`);
  const shutdown = async () => {
    await api.close();
    await emulator.stop();
    await Promise.all([...workers.values()].map((w) => w.close()));
    await bundles?.close();
    process.exit(0);
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
