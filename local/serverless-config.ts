// `serverless print` of a stage, cached: print takes seconds, and every `stack up`, `dev`, `esm:status` and
// test run needs the resolved config.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, stateDir } from './stack/paths';
import { ensurePrivateDir, writePrivateFile } from './stack/private-file';

export const LOCAL_STAGE = 'local';

// biome-ignore lint/suspicious/noExplicitAny: the resolved serverless config is free-form YAML
type Json = any;

/**
 * Hash of everything that shapes the resolved config: serverless.yml, serverless/*.cjs, and KAFKA_BROKERS and
 * DATABASE_URL, which flow into the local stage's parameters (the functions' environment).
 */
function configHash(stage: string): string {
  const hash = createHash('sha256').update(stage);
  hash.update(`${process.env.KAFKA_BROKERS ?? ''}|${process.env.DATABASE_URL ?? ''}`);
  hash.update(readFileSync(join(repoRoot, 'serverless.yml')));
  const extensionsDir = join(repoRoot, 'serverless');
  if (existsSync(extensionsDir)) {
    for (const file of readdirSync(extensionsDir)
      .filter((name) => name.endsWith('.cjs'))
      .sort()) {
      hash.update(file).update(readFileSync(join(extensionsDir, file)));
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** `serverless print --format json --stage <stage>`, cached in the state dir while configHash is unchanged. */
export function resolvedServerlessConfig(stage = LOCAL_STAGE): Json {
  const cacheDir = join(stateDir, 'serverless-print');
  const cacheFile = join(cacheDir, `${stage}-${configHash(stage)}.json`);
  if (existsSync(cacheFile)) {
    // A cache written before it was private becomes so.
    if ((statSync(cacheFile).mode & 0o077) !== 0) chmodSync(cacheFile, 0o600);
    return JSON.parse(readFileSync(cacheFile, 'utf8'));
  }
  const result = spawnSync(
    join(repoRoot, 'node_modules', '.bin', 'serverless'),
    ['print', '--format', 'json', '--stage', stage],
    { cwd: repoRoot, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
  );
  if (result.status !== 0) {
    throw new Error(
      `\`serverless print --stage ${stage}\` failed (exit ${result.status}):\n${result.stderr || result.stdout}`,
    );
  }
  const config = JSON.parse(result.stdout);
  // The functions' environment is in it (DATABASE_URL with its password, when the shell has one): owner only.
  ensurePrivateDir(stateDir);
  writePrivateFile(cacheFile, result.stdout);
  return config;
}
