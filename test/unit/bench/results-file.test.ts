import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { headingAnchor, writeResultsSection } from '../../../bench/results-file';

describe('writeResultsSection', () => {
  it('appends a new section, then replaces only its own on the next run', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'results-')), 'RESULTS.md');
    writeFileSync(
      file,
      '# Benchmark results\n\nsummary\n\n<!-- other:start -->\nother\n<!-- other:end -->\n',
    );
    writeResultsSection('decode', '## Decode\n\nfirst run\n', { file });
    writeResultsSection('decode', '## Decode\n\nsecond run', { file });
    expect(readFileSync(file, 'utf8')).toBe(
      '# Benchmark results\n\nsummary\n\n<!-- other:start -->\nother\n<!-- other:end -->\n\n' +
        '<!-- decode:start -->\n## Decode\n\nsecond run\n<!-- decode:end -->\n',
    );
  });

  it('creates the file when there is none', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'results-')), 'RESULTS.md');
    writeResultsSection('e2e', 'body', { file });
    expect(readFileSync(file, 'utf8')).toBe(
      '# Benchmark results\n\n<!-- e2e:start -->\nbody\n<!-- e2e:end -->\n',
    );
  });

  it('keeps one summary row per benchmark, its latest run, in table order under the title', () => {
    const dir = mkdtempSync(join(tmpdir(), 'results-'));
    const file = join(dir, 'RESULTS.md');
    writeFileSync(file, '# Benchmark results\n\n<!-- notes:start -->\nnotes\n<!-- notes:end -->\n');
    const row = (headline: string) => ({ headline, ratio: '5.0x', target: '>= 10x', met: 'no' });
    writeResultsSection('e2e', '## End to end: latency | loss\n\nbody', {
      file,
      summary: row('p95 153 ms'),
      now: new Date('2026-11-23T18:42:00Z'),
    });
    writeResultsSection('decode', '## Decode: shared/msk decodeEvent\n\nfirst', {
      file,
      summary: row('94,000 records/s'),
      now: new Date('2026-11-23T19:00:00Z'),
    });
    writeResultsSection('decode', '## Decode: shared/msk decodeEvent\n\nsecond', {
      file,
      summary: row('411,582 records/s'),
      now: new Date('2026-12-04T20:30:00Z'),
    });
    const text = readFileSync(file, 'utf8');
    expect(text.startsWith('# Benchmark results\n\n<!-- summary:start -->\n## Summary\n')).toBe(true);
    const rows = text.split('\n').filter((line) => line.startsWith('| ['));
    expect(rows).toEqual([
      '| [decode](#decode-sharedmsk-decodeevent) | 2026-12-04 20:30 | 411,582 records/s | 5.0x | >= 10x | no |',
      '| [e2e](#end-to-end-latency--loss) | 2026-11-23 18:42 | p95 153 ms | 5.0x | >= 10x | no |',
    ]);
    expect(text).toContain('<!-- notes:start -->\nnotes\n<!-- notes:end -->');
    expect(JSON.parse(readFileSync(join(dir, 'results', 'summary.json'), 'utf8')).decode.headline).toBe(
      '411,582 records/s',
    );
  });

  it('links rows with the anchors GitHub gives headings', () => {
    expect(headingAnchor('Read models: demand and billing on the DynamoDB stand-in')).toBe(
      'read-models-demand-and-billing-on-the-dynamodb-stand-in',
    );
    expect(headingAnchor('End to end: produce-to-stored latency, throughput, loss')).toBe(
      'end-to-end-produce-to-stored-latency-throughput-loss',
    );
  });
});
