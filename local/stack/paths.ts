import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensurePrivateDir } from './private-file';

/** The repository root (this file lives in local/stack/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Every piece of local state lives under one ignored folder; STACK_STATE_DIR moves it (e.g. for a 2nd stack). */
export const stateDir = resolve(repoRoot, process.env.STACK_STATE_DIR ?? '.local');

export const stackFile = join(stateDir, 'stack.json');
export const logsDir = join(stateDir, 'logs');
export const pidsDir = join(stateDir, 'pids');
export const leasesDir = join(stateDir, 'leases');
export const lockDir = join(stateDir, 'stack.lock');

export const kafkaDir = join(repoRoot, 'local', 'kafka');
export const kafkaLibDir = join(kafkaDir, 'target', 'lib');

export function pidFile(service: string): string {
  return join(pidsDir, `${service}.pid`);
}

export function logFile(service: string): string {
  return join(logsDir, `${service}.log`);
}

export function ensureStateDirs(): void {
  ensurePrivateDir(stateDir);
  for (const dir of [logsDir, pidsDir, leasesDir]) mkdirSync(dir, { recursive: true });
}
