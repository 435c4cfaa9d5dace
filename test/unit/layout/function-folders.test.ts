import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

// Every function folder has the same shape, so a new function starts as a copy of one (README, Layout).
const root = resolve(import.meta.dirname, '../../..');
const functionsDir = join(root, 'functions');
const folders = readdirSync(functionsDir).filter((name) => statSync(join(functionsDir, name)).isDirectory());

/** The keys under serverless.yml's top-level `functions:` and each one's handler path. */
function serverlessFunctions(): Map<string, string | undefined> {
  const yaml = readFileSync(join(root, 'serverless.yml'), 'utf8');
  const section = /^functions:\n((?:[ \t].*\n|\n)*)/m.exec(yaml)?.[1] ?? '';
  const functions = new Map<string, string | undefined>();
  let current: string | undefined;
  for (const line of section.split('\n')) {
    const key = /^ {2}([A-Za-z0-9_-]+):\s*$/.exec(line)?.[1];
    if (key) {
      current = key;
      functions.set(key, undefined);
    }
    const handler = /^ {4}handler:\s*(\S+)/.exec(line)?.[1];
    if (handler && current) functions.set(current, handler);
  }
  return functions;
}

const REQUIRED = ['handler.ts', 'ports.ts', 'README.md'];

describe('function folders', () => {
  it('reads the functions of serverless.yml', () => {
    expect(serverlessFunctions().size).toBeGreaterThanOrEqual(5);
  });

  it.each(folders)('%s has handler.ts (wiring), ports.ts and a README titled with its name', (folder) => {
    const missing = REQUIRED.filter((file) => !existsSync(join(functionsDir, folder, file)));
    expect(missing).toEqual([]);
    expect(readFileSync(join(functionsDir, folder, 'README.md'), 'utf8').split('\n')[0]).toBe(`# ${folder}`);
  });

  it('every function in serverless.yml has its folder and its handler there', () => {
    const wrong = [...serverlessFunctions()]
      .filter(([name, handler]) => !folders.includes(name) || handler !== `functions/${name}/handler.handler`)
      .map(([name, handler]) => `${name}: ${handler}`);
    expect(wrong).toEqual([]);
  });

  it('every folder is a function in serverless.yml', () => {
    const functions = serverlessFunctions();
    expect(folders.filter((folder) => !functions.has(folder))).toEqual([]);
  });
});
