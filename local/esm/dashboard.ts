// The live table `dev` shows, and the lag table `status` prints.
import { lagSeconds, type PartitionLag } from './lag';
import type { EventSourceMapping } from './mapping';

export interface DashboardRow {
  mapping: EventSourceMapping;
  lags: PartitionLag[] | undefined;
  /** The function's latest cold start (environment start to first answer), when it runs in workers. */
  coldStartMs?: number | undefined;
}

const ms = (value: number | undefined) => (value === undefined ? '-' : `${Math.round(value)}ms`);

export function lagCell(lags: PartitionLag[] | undefined): string {
  if (!lags) return '?';
  const total = lags.reduce((sum, l) => sum + l.lag, 0n);
  const busy = lags.filter((l) => l.lag > 0n).map((l) => `p${l.partition}:${l.lag}`);
  return busy.length === 0 ? '0' : `${total} (${busy.join(' ')})`;
}

/** The oldest unconsumed record's age over the ESM's partitions, in seconds. */
export function lagSecondsCell(lags: PartitionLag[] | undefined): string {
  if (!lags) return '?';
  const ages = lags.flatMap((l) => (l.ageMs === undefined ? [] : [l.ageMs]));
  return ages.length === 0 ? '0' : lagSeconds(Math.max(...ages));
}

export function renderDashboard(rows: DashboardRow[], header: string): string {
  const table = [
    [
      'function',
      'topic',
      'state',
      'consumed',
      'in flight',
      'to dest.',
      'p50 30s',
      'p95 30s',
      'p50/p95 all',
      'cold start',
      'lag (per partition)',
      'lag s',
    ],
    ...rows.map(({ mapping, lags, coldStartMs }) => [
      mapping.definition.functionKey,
      mapping.definition.topic,
      mapping.problem ? `${mapping.state} (PROBLEM)` : mapping.state,
      String(mapping.stats.consumed),
      String(mapping.stats.inFlightRecords),
      String(mapping.stats.failedToDestination),
      ms(mapping.stats.latencyPercentile(50)),
      ms(mapping.stats.latencyPercentile(95)),
      `${ms(mapping.stats.cumulativeLatencyPercentile(50))}/${ms(mapping.stats.cumulativeLatencyPercentile(95))}`,
      ms(coldStartMs),
      lagCell(lags),
      lagSecondsCell(lags),
    ]),
  ];
  const problems = rows.flatMap(({ mapping }) => {
    const problem = mapping.problem;
    if (!problem) return [];
    const seconds = Math.round((Date.now() - problem.since.getTime()) / 1000);
    return [
      `${mapping.definition.functionKey} ${mapping.definition.topic}: ${problem.message} ` +
        `(for ${seconds} s, rejoin attempt ${problem.attempts})`,
    ];
  });
  return [header, formatTable(table), ...problems].join('\n');
}

export function formatTable(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((row) => (row[i] ?? '').length))) ?? [];
  return rows
    .map((row) =>
      row
        .map((cell, i) => cell.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
