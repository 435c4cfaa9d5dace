import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { codeOf, consumers } from '../../../local/consumers';

// Every function folder has the same shape, so a new function starts as a copy of one, plus its entry in the
// consumers map (serverless/consumers.cjs), from which serverless.yml declares it (README, Layout).
const root = resolve(import.meta.dirname, '../../..');
const functionsDir = join(root, 'functions');
const folders = readdirSync(functionsDir).filter((name) => statSync(join(functionsDir, name)).isDirectory());

const REQUIRED = ['handler.ts', 'ports.ts', 'README.md'];

describe('function folders', () => {
  it('reads the consumers map', () => {
    expect(Object.keys(consumers).length).toBeGreaterThanOrEqual(5);
  });

  it.each(folders)('%s has handler.ts (wiring), ports.ts and a README titled with its name', (folder) => {
    const missing = REQUIRED.filter((file) => !existsSync(join(functionsDir, folder, file)));
    expect(missing).toEqual([]);
    expect(readFileSync(join(functionsDir, folder, 'README.md'), 'utf8').split('\n')[0]).toBe(`# ${folder}`);
  });

  it('every function of the consumers map has its folder, with the handler serverless.yml will name', () => {
    const handler = /export const handler\b|export \{[^}]*\bhandler\b[^}]*\}/;
    const wrong = Object.keys(consumers).filter((name) => {
      const file = join(functionsDir, codeOf(name), 'handler.ts');
      return !existsSync(file) || !handler.test(readFileSync(file, 'utf8'));
    });
    expect(wrong).toEqual([]);
  });

  it('every folder is a function of the consumers map', () => {
    expect(folders.filter((folder) => !(folder in consumers))).toEqual([]);
  });

  it("a function that runs another folder's code says so, and that folder is a function of its own", () => {
    const shared = Object.keys(consumers).filter((name) => codeOf(name) !== name);
    expect(shared).toEqual(['oncall-paging']);
    for (const name of shared) expect(folders).toContain(codeOf(name));
  });
});
