import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeResultsSection } from '../../../bench/results-file';

describe('writeResultsSection', () => {
  it('appends a new section, then replaces only its own on the next run', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'results-')), 'RESULTS.md');
    writeFileSync(
      file,
      '# Benchmark results\n\nsummary\n\n<!-- other:start -->\nother\n<!-- other:end -->\n',
    );
    writeResultsSection('decode', '## Decode\n\nfirst run\n', file);
    writeResultsSection('decode', '## Decode\n\nsecond run', file);
    expect(readFileSync(file, 'utf8')).toBe(
      '# Benchmark results\n\nsummary\n\n<!-- other:start -->\nother\n<!-- other:end -->\n\n' +
        '<!-- decode:start -->\n## Decode\n\nsecond run\n<!-- decode:end -->\n',
    );
  });

  it('creates the file when there is none', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'results-')), 'RESULTS.md');
    writeResultsSection('e2e', 'body', file);
    expect(readFileSync(file, 'utf8')).toBe(
      '# Benchmark results\n\n<!-- e2e:start -->\nbody\n<!-- e2e:end -->\n',
    );
  });
});
