// Shapes batches the way a Lambda Kafka poller does: one batch in flight per partition, records of several
// partitions may share a batch, and a batch is due at batchSize, at the 6 MB payload cap, or when the
// batching window that started with its oldest record has passed.
import { partitionKey, type SourceRecord } from './event';

/** Lambda's synchronous invocation payload limit. */
export const MAX_PAYLOAD_BYTES = 6 * 1024 * 1024;

export interface QueuedRecord {
  record: SourceRecord;
  /** False when the ESM's filter patterns drop it: its offset is committed, it is never invoked. */
  matched: boolean;
  size: number;
  arrivedAt: number;
  leaderEpoch: number;
}

export interface Batch {
  id: number;
  /** "<topic>-<partition>" -> its records in offset order. */
  partitions: Map<string, QueuedRecord[]>;
}

export interface BatcherOptions {
  batchSize: number;
  windowMs: number;
  maxConcurrency: number;
  envelopeBytes: number;
  maxPayloadBytes?: number;
}

export class Batcher {
  readonly #options: Required<BatcherOptions>;
  readonly #queues = new Map<string, QueuedRecord[]>();
  /** Sum of record sizes per queue, kept up to date so deciding "due" never walks the records. */
  readonly #bytes = new Map<string, number>();
  readonly #inFlight = new Set<string>();
  #batchesInFlight = 0;
  #buffered = 0;
  #nextId = 1;

  constructor(options: BatcherOptions) {
    this.#options = { maxPayloadBytes: MAX_PAYLOAD_BYTES, ...options };
  }

  get buffered(): number {
    return this.#buffered;
  }

  get batchesInFlight(): number {
    return this.#batchesInFlight;
  }

  queued(key: string): number {
    return this.#queues.get(key)?.length ?? 0;
  }

  add(entry: QueuedRecord): void {
    const key = partitionKey(entry.record.topic, entry.record.partition);
    let queue = this.#queues.get(key);
    if (!queue) {
      queue = [];
      this.#queues.set(key, queue);
    }
    queue.push(entry);
    this.#bytes.set(key, (this.#bytes.get(key) ?? 0) + entry.size);
    this.#buffered += 1;
  }

  /** Forms every batch that is due now, within the concurrency limit. */
  takeReady(now: number): Batch[] {
    const batches: Batch[] = [];
    while (this.#batchesInFlight < this.#options.maxConcurrency) {
      const ready = this.#readyKeys();
      if (ready.length === 0 || !this.#isDue(ready, now)) break;
      batches.push(this.#form(ready));
    }
    return batches;
  }

  /** Milliseconds until the oldest waiting record's window closes, or undefined when nothing waits. */
  nextDueIn(now: number): number | undefined {
    if (this.#batchesInFlight >= this.#options.maxConcurrency) return undefined;
    const ready = this.#readyKeys();
    if (ready.length === 0) return undefined;
    const oldest = this.#queues.get(ready[0] as string)?.[0]?.arrivedAt ?? now;
    return Math.max(0, oldest + this.#options.windowMs - now);
  }

  /** Called when a partition's part of a batch is resolved (committed): the partition may be read again. */
  release(key: string): void {
    this.#inFlight.delete(key);
  }

  batchDone(): void {
    this.#batchesInFlight -= 1;
  }

  /** Drops what is queued for a partition (lost assignment); returns the dropped records. */
  drop(key: string): QueuedRecord[] {
    const queue = this.#queues.get(key) ?? [];
    this.#queues.delete(key);
    this.#bytes.delete(key);
    this.#buffered -= queue.length;
    return queue;
  }

  /** Keeps at most `max` queued records of a partition; returns the first dropped offset, if any. */
  trim(key: string, max: number): bigint | undefined {
    const queue = this.#queues.get(key);
    if (!queue || queue.length <= max) return undefined;
    const dropped = queue.splice(max);
    this.#buffered -= dropped.length;
    this.#subtractBytes(key, dropped);
    return dropped[0]?.record.offset;
  }

  isInFlight(key: string): boolean {
    return this.#inFlight.has(key);
  }

  #readyKeys(): string[] {
    const ready: string[] = [];
    for (const [key, queue] of this.#queues) {
      if (queue.length > 0 && !this.#inFlight.has(key)) ready.push(key);
    }
    const headArrival = (key: string) => this.#queues.get(key)?.[0]?.arrivedAt ?? 0;
    return ready.sort((a, b) => headArrival(a) - headArrival(b));
  }

  #isDue(ready: string[], now: number): boolean {
    const { batchSize, windowMs, maxPayloadBytes, envelopeBytes } = this.#options;
    const oldest = this.#queues.get(ready[0] as string)?.[0]?.arrivedAt ?? now;
    if (now - oldest >= windowMs) return true;
    let count = 0;
    let bytes = envelopeBytes;
    for (const key of ready) {
      count += this.#queues.get(key)?.length ?? 0;
      bytes += this.#bytes.get(key) ?? 0;
      if (count >= batchSize || bytes >= maxPayloadBytes) return true;
    }
    return false;
  }

  #subtractBytes(key: string, entries: QueuedRecord[]): void {
    let bytes = this.#bytes.get(key) ?? 0;
    for (const entry of entries) bytes -= entry.size;
    this.#bytes.set(key, bytes);
  }

  #form(ready: string[]): Batch {
    const { batchSize, maxPayloadBytes, envelopeBytes } = this.#options;
    const partitions = new Map<string, QueuedRecord[]>();
    let count = 0;
    let bytes = envelopeBytes;
    for (const key of ready) {
      const queue = this.#queues.get(key) ?? [];
      let taken = 0;
      while (taken < queue.length && count < batchSize) {
        const entry = queue[taken] as QueuedRecord;
        // A single record above the cap still forms a batch of one: it fails as MaximumPayloadSizeExceeded.
        if (count > 0 && bytes + entry.size > maxPayloadBytes) break;
        bytes += entry.size;
        count += 1;
        taken += 1;
      }
      if (taken > 0) {
        const entries = queue.splice(0, taken);
        this.#subtractBytes(key, entries);
        partitions.set(key, entries);
        this.#inFlight.add(key);
        this.#buffered -= taken;
      }
      if (count >= batchSize || bytes >= maxPayloadBytes) break;
    }
    this.#batchesInFlight += 1;
    return { id: this.#nextId++, partitions };
  }
}
