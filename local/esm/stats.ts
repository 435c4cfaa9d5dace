// Counters `dev` shows per ESM; latency is produce (record timestamp) to handler completion.
import type { QueuedRecord } from './batcher';

const LATENCY_WINDOW = 10_000;

export class EsmStats {
  received = 0;
  consumed = 0;
  inFlightRecords = 0;
  failedToDestination = 0;
  invocations = 0;
  failedInvocations = 0;
  readonly committed = new Map<string, bigint>();
  readonly #latencies: number[] = [];
  #next = 0;

  recordSucceeded(entries: QueuedRecord[]): void {
    const now = Date.now();
    this.consumed += entries.length;
    for (const entry of entries) {
      const latency = now - entry.record.timestamp;
      // A ring buffer: percentiles over the most recent records only.
      if (this.#latencies.length < LATENCY_WINDOW) this.#latencies.push(latency);
      else this.#latencies[this.#next] = latency;
      this.#next = (this.#next + 1) % LATENCY_WINDOW;
    }
  }

  latencyPercentile(p: number): number | undefined {
    return percentile(this.#latencies, p);
  }
}

export function percentile(values: number[], p: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
