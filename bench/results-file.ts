// Every benchmark owns one section of bench/RESULTS.md, between <!-- name:start --> and <!-- name:end -->:
// a run replaces its own section (or appends it the first time) and leaves the others alone. A run that
// passes its summary row also updates the summary table at the top (<!-- summary:start/end -->), rebuilt from
// bench/results/summary.json, so the table always shows each benchmark's latest run and never a hand copy.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';

export const RESULTS_FILE = join(import.meta.dirname, 'RESULTS.md');

/** One benchmark's line in the summary table: what it measured against which target. */
export interface SummaryRow {
  headline: string;
  /** Side-by-side ratio(s), or '-' when the benchmark has no comparison. */
  ratio: string;
  target: string;
  met: string;
}

interface StoredRow extends SummaryRow {
  title: string;
  ran: string;
  machine: string;
}

/** Table order; a benchmark not listed goes last. */
const SUMMARY_ORDER = ['decode', 'audit', 'read-models', 'latency', 'bundles', 'emulator', 'e2e'];

export function writeResultsSection(
  name: string,
  section: string,
  options: { summary?: SummaryRow; file?: string; now?: Date } = {},
): void {
  const file = options.file ?? RESULTS_FILE;
  let text = replaceBlock(readResults(file), name, section);
  if (options.summary) {
    const rowsFile = join(dirname(file), 'results', 'summary.json');
    const rows: Record<string, StoredRow> = existsSync(rowsFile)
      ? JSON.parse(readFileSync(rowsFile, 'utf8'))
      : {};
    rows[name] = {
      title: /^#+ (.+)$/m.exec(section)?.[1]?.trim() ?? name,
      ran: (options.now ?? new Date()).toISOString(),
      machine: `${cpus().length} × ${cpus()[0]?.model.trim() ?? 'unknown CPU'}, Node ${process.version}`,
      ...options.summary,
    };
    mkdirSync(dirname(rowsFile), { recursive: true });
    writeFileSync(rowsFile, `${JSON.stringify(rows, null, 2)}\n`);
    text = replaceBlock(text, 'summary', renderSummary(rows));
  }
  writeFileSync(file, text);
}

function readResults(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '# Benchmark results\n';
}

function replaceBlock(current: string, name: string, body: string): string {
  const start = `<!-- ${name}:start -->`;
  const end = `<!-- ${name}:end -->`;
  const block = `${start}\n${body.trim()}\n${end}`;
  const from = current.indexOf(start);
  const to = current.indexOf(end);
  if (from >= 0 && to > from) return `${current.slice(0, from)}${block}${current.slice(to + end.length)}`;
  if (name === 'summary') {
    // First under the title, above every section.
    const title = current.indexOf('\n');
    return title < 0
      ? `${current}\n\n${block}\n`
      : `${current.slice(0, title + 1)}\n${block}\n${current.slice(title + 1)}`;
  }
  return `${current.trimEnd()}\n\n${block}\n`;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
export function headingAnchor(title: string): string {
  return title
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function renderSummary(rows: Record<string, StoredRow>): string {
  const names = Object.keys(rows).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const machines = [...new Set(names.map((name) => rows[name]?.machine))];
  const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    '## Summary',
    '',
    'Each row is the latest run of one benchmark, written by the benchmark itself; its section below names the',
    'command, the workload, the machine and its load. `npm run bench` runs them all, one after another. Ratios',
    "are measured side by side in one run. The machine's speed varies a lot between days (bench:audit's CPU per",
    'batch was 18 ms on 2026-11-23 and 9 ms on 2026-12-04 with the same code), so compare ratios, not absolute',
    'rates of rows run on different days.',
    '',
    `Machine: ${machines.join('; ')}.`,
    '',
    '| benchmark | ran (UTC) | headline | ratio (side by side) | target | met |',
    '|---|---|---|---|---|---|',
    ...names.map((name) => {
      const row = rows[name] as StoredRow;
      return (
        `| [${name}](#${headingAnchor(row.title)}) | ${row.ran.slice(0, 16).replace('T', ' ')} | ` +
        `${cell(row.headline)} | ${cell(row.ratio)} | ${cell(row.target)} | ${cell(row.met)} |`
      );
    }),
  ].join('\n');
}

function rank(name: string): number {
  const at = SUMMARY_ORDER.indexOf(name);
  return at < 0 ? SUMMARY_ORDER.length : at;
}
