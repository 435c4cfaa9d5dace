// Local state that can hold secrets (stack.json's env with DATABASE_URL and an exported AWS secret key, the cached
// `serverless print` with the functions' environment) is readable by its owner only: machines are shared.
import { chmodSync, mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Creates the directory 0700; an existing one loses group and world write, so nobody can swap our files. */
export function ensurePrivateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const mode = statSync(dir).mode & 0o7777;
  if ((mode & 0o022) === 0) return;
  try {
    chmodSync(dir, mode & ~0o022);
  } catch (error) {
    throw new Error(
      `${dir} is writable by other users and cannot be changed (${(error as Error).message}); ` +
        'local state that can hold secrets is not written there: set STACK_STATE_DIR to a directory of your own',
    );
  }
}

/** Writes the file 0600, whole or not at all (write then rename: a reader never sees half a file). */
export function writePrivateFile(file: string, text: string): void {
  ensurePrivateDir(dirname(file));
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode: 0o600 });
  // The mode applies only when the file is created; a leftover temporary file keeps its own.
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
}
