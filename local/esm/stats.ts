// Counters `dev` shows per ESM; latency is produce (record timestamp) to handler completion.
import type { QueuedRecord } from './batcher';

/** The dev table's p50/p95 cover the records handled in the last 30 s: current latency, not start-up's. */
export const LATENCY_WINDOW_MS = 30_000;
/** At most this many samples in the window (the newest); beyond ~3,000 records/s per ESM older ones drop. */
const WINDOW_SAMPLES = 100_000;

export class EsmStats {
  received = 0;
  consumed = 0;
  inFlightRecords = 0;
  failedToDestination = 0;
  invocations = 0;
  failedInvocations = 0;
  readonly committed = new Map<string, bigint>();
  /** Samples of the sliding window, oldest first from #head: when handled, and the latency. */
  readonly #handledAt: number[] = [];
  readonly #latencies: number[] = [];
  #head = 0;
  readonly #sinceStart = new LatencyHistogram();

  constructor(private readonly now: () => number = Date.now) {}

  recordSucceeded(entries: QueuedRecord[]): void {
    const now = this.now();
    this.consumed += entries.length;
    for (const entry of entries) {
      const latency = now - entry.record.timestamp;
      this.#handledAt.push(now);
      this.#latencies.push(latency);
      this.#sinceStart.add(latency);
    }
    if (this.#latencies.length - this.#head > WINDOW_SAMPLES)
      this.#head = this.#latencies.length - WINDOW_SAMPLES;
    this.#prune(now);
  }

  /** Over the records handled in the last LATENCY_WINDOW_MS; undefined when none were. */
  latencyPercentile(p: number): number | undefined {
    this.#prune(this.now());
    return percentile(this.#latencies.slice(this.#head), p);
  }

  /** Over every record handled since the mapping was created (within 1 %). */
  cumulativeLatencyPercentile(p: number): number | undefined {
    return this.#sinceStart.percentile(p);
  }

  #prune(now: number): void {
    const oldest = now - LATENCY_WINDOW_MS;
    while (this.#head < this.#handledAt.length && (this.#handledAt[this.#head] as number) < oldest)
      this.#head += 1;
    // Drop the consumed front now and then rather than shifting on every sample.
    if (this.#head > 4096 && this.#head * 2 > this.#handledAt.length) {
      this.#handledAt.splice(0, this.#head);
      this.#latencies.splice(0, this.#head);
      this.#head = 0;
    }
  }
}

/** Counts per 1 % wide latency bucket: percentiles since start in constant memory however long dev runs. */
class LatencyHistogram {
  readonly #counts = new Map<number, number>();
  #total = 0;

  add(latencyMs: number): void {
    const bucket = latencyMs < 1 ? 0 : 1 + Math.floor(Math.log(latencyMs) / Math.log(1.01));
    this.#counts.set(bucket, (this.#counts.get(bucket) ?? 0) + 1);
    this.#total += 1;
  }

  percentile(p: number): number | undefined {
    if (this.#total === 0) return undefined;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#total));
    let seen = 0;
    for (const bucket of [...this.#counts.keys()].sort((a, b) => a - b)) {
      seen += this.#counts.get(bucket) as number;
      if (seen >= rank) return bucket === 0 ? 0 : 1.01 ** (bucket - 1);
    }
    return undefined;
  }
}

export function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
