// One event source mapping: a consumer group on the broker feeding the batcher, batches handed to the
import '../../shared/kafka/node20-polyfills';
// processor, offsets committed per partition once a batch part is resolved.
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Admin,
  Consumer,
  type Message,
  type MessagesStream,
  NetworkError,
  TimeoutError,
} from '@platformatic/kafka';
import { type BatchObserver, defaultRetryDelayMs, processBatch, type ResolvedPart } from './batch-processor';
import { type Batch, Batcher, type QueuedRecord } from './batcher';
import type { EsmDefinition } from './config';
import type { DestinationWriter } from './destinations';
import { envelopeSize, mskRecordSize, partitionKey, type SourceRecord } from './event';
import { compileFilter, type RecordFilter } from './filter';
import type { EsmHandler } from './invoker';
import { applyStartingPosition } from './starting-position';
import { EsmStats } from './stats';

export type MappingState = 'Enabled' | 'Disabled' | 'Enabling' | 'Disabling';

export interface MappingOptions {
  definition: EsmDefinition;
  brokers: string[];
  handler: EsmHandler;
  writeDestination?: DestinationWriter;
  region?: string;
  accountId?: string;
  retryDelayMs?: (attempt: number) => number;
  /** Records buffered across partitions before fetching pauses. */
  maxBufferedRecords?: number;
  /** Wait before the n-th (1-based) attempt to reach the broker again after losing it. */
  reconnectDelayMs?: (attempt: number) => number;
  log?: (message: string) => void;
}

type KafkaMessage = Message<Buffer, Buffer, Buffer, Buffer>;

const STUCK_AFTER_MS = 1000;

/** 0.5 s, 1 s, 2 s ... at most 10 s: a restarted local broker is found within 10 s, a dead one is not hammered. */
export const defaultReconnectDelayMs = (attempt: number) => Math.min(10_000, 500 * 2 ** (attempt - 1));

/** While the mapping cannot reach the broker: what AWS shows as LastProcessingResult `PROBLEM: ...`. */
export interface MappingProblem {
  message: string;
  since: Date;
  attempts: number;
}

/** The broker did not answer (refused, reset, timed out), as opposed to refusing a request it understood. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof NetworkError || error instanceof TimeoutError) return true;
  if (!(error instanceof Error)) return false;
  if (
    /^(ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|EHOSTUNREACH)$/.test(
      String((error as NodeJS.ErrnoException).code),
    )
  )
    return true;
  const nested = error instanceof AggregateError ? error.errors : [];
  return [...nested, error.cause].some((inner) => inner !== undefined && isConnectionError(inner));
}

export class EventSourceMapping {
  readonly definition: EsmDefinition;
  readonly stats = new EsmStats();
  #state: MappingState = 'Disabled';
  readonly #options: MappingOptions;
  readonly #filter: RecordFilter;
  #consumer: Consumer<Buffer, Buffer, Buffer, Buffer> | undefined;
  #stream: MessagesStream<Buffer, Buffer, Buffer, Buffer> | undefined;
  #batcher: Batcher | undefined;
  #abort = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  readonly #nextOffset = new Map<string, bigint>();
  readonly #leaderEpochs = new Map<string, number>();
  readonly #positions = new Map<string, { topic: string; partition: number }>();
  /** When each partition's current batch started: a long-running one is retrying (or slow). */
  readonly #inFlightSince = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #paused = false;
  #scheduled = false;
  readonly #pendingCommits = new Map<
    string,
    { topic: string; partition: number; offset: bigint; leaderEpoch: number }
  >();
  #committing: Promise<void> | undefined;
  #transition: Promise<void> = Promise.resolve();
  #lastStateChange = new Date();
  #reconnecting: Promise<void> | undefined;
  #problem: MappingProblem | undefined;

  constructor(options: MappingOptions) {
    this.#options = options;
    this.definition = options.definition;
    this.#filter = compileFilter(options.definition.filterPatterns);
  }

  get state(): MappingState {
    return this.#state;
  }

  get lastModified(): Date {
    return this.#lastStateChange;
  }

  get bootstrapServers(): string {
    return this.#options.brokers.join(',');
  }

  /** Set while an enabled mapping has lost the broker and is reconnecting. */
  get problem(): MappingProblem | undefined {
    return this.#problem;
  }

  /** As the Lambda API reports it: `PROBLEM: ...` while the broker is out of reach, else OK once it invoked. */
  get lastProcessingResult(): string {
    if (this.#problem) return this.#problem.message;
    return this.stats.invocations > 0 ? 'OK' : 'No records processed';
  }

  /** Enable and disable are serialized: an enable right after a disable waits until the group was left. */
  start(): Promise<void> {
    const next = this.#transition.then(() =>
      this.#start().catch(async (error: Error) => {
        // A failed enable leaves nothing half-joined behind.
        await this.#consumer?.close().catch(() => undefined);
        this.#consumer = undefined;
        this.#stream = undefined;
        this.#batcher = undefined;
        this.#setState('Disabled');
        throw error;
      }),
    );
    this.#transition = next.catch(() => undefined);
    return next;
  }

  stop(): Promise<void> {
    const next = this.#transition.then(() => this.#stop());
    this.#transition = next.catch(() => undefined);
    return next;
  }

  async #start(): Promise<void> {
    if (this.#state === 'Enabled') return;
    this.#setState('Enabling');
    const { definition, brokers } = this.#options;
    const admin = new Admin({ clientId: `esm-${definition.uuid}-admin`, bootstrapBrokers: brokers });
    try {
      await applyStartingPosition(admin, definition);
    } finally {
      await admin.close();
    }
    this.#abort = new AbortController();
    this.#nextOffset.clear();
    this.#inFlightSince.clear();
    this.#problem = undefined;
    this.#batcher = new Batcher({
      batchSize: definition.batchSize,
      windowMs: definition.maximumBatchingWindowMs,
      maxConcurrency: definition.maximumConcurrency,
      envelopeBytes: envelopeSize({
        eventSourceArn: definition.eventSourceArn,
        bootstrapServers: this.bootstrapServers,
      }),
    });
    await this.#connect();
    this.#setState('Enabled');
  }

  /** Joins the group and starts fetching from the committed offsets (the starting position when there are none). */
  async #connect(): Promise<void> {
    const { definition, brokers } = this.#options;
    const consumer = new Consumer<Buffer, Buffer, Buffer, Buffer>({
      clientId: `esm-${definition.uuid}`,
      groupId: definition.consumerGroupId,
      bootstrapBrokers: brokers,
      autocommit: false,
      // Short enough for a clean stop and a prompt rebalance after a crash; the default is one minute.
      sessionTimeout: 10_000,
      rebalanceTimeout: 10_000,
      heartbeatInterval: 1000,
      maxWaitTime: 500,
    });
    consumer.on('consumer:group:join', ({ assignments }) => this.#onAssignments(assignments ?? []));
    this.#consumer = consumer;
    try {
      const stream = await consumer.consume({
        topics: [definition.topic],
        mode: 'committed',
        fallbackMode: definition.startingPosition === 'LATEST' ? 'latest' : 'earliest',
        autocommit: false,
      });
      this.#stream = stream;
      this.#paused = false;
      stream.on('data', (message: KafkaMessage) => this.#onMessage(message));
      // The client gives up on a broker after a few fetch retries and destroys the stream; Lambda's pollers
      // reconnect by themselves, so this mapping does too.
      stream.on('error', (error: Error) => this.#connectionLost(stream, error));
      stream.on('close', () => this.#connectionLost(stream, new Error('the consumer stream closed')));
    } catch (error) {
      this.#consumer = undefined;
      await consumer.close(true).catch(() => undefined);
      throw error;
    }
  }

  #connectionLost(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>, error: Error): void {
    if (stream !== this.#stream || this.#state !== 'Enabled' || this.#reconnecting) return;
    this.#log(`consumer error: ${error.message}`);
    this.#reconnecting = this.#reconnect(error).finally(() => {
      this.#reconnecting = undefined;
    });
  }

  /**
   * Rejoins with backoff until the broker answers or the mapping is disabled. The queue, the in-flight batches
   * and the next offset per partition are kept: the new stream re-reads from the committed offsets and skips
   * what is already queued or done, and commits that failed while the broker was away go out after the rejoin.
   */
  async #reconnect(lost: Error): Promise<void> {
    const signal = this.#abort.signal;
    const since = new Date();
    const { stream, consumer } = { stream: this.#stream, consumer: this.#consumer };
    this.#stream = undefined;
    this.#consumer = undefined;
    stream?.removeAllListeners('data');
    await stream?.close().catch(() => undefined);
    await consumer?.close(true).catch(() => undefined);
    let cause = lost;
    for (let attempt = 1; !signal.aborted; attempt += 1) {
      this.#problem = {
        message: `PROBLEM: Connection error. The broker (${this.bootstrapServers}) cannot be reached: ${cause.message}`,
        since,
        attempts: attempt,
      };
      const delay = (this.#options.reconnectDelayMs ?? defaultReconnectDelayMs)(attempt);
      this.#log(`broker out of reach (${cause.message}); rejoining in ${delay} ms (attempt ${attempt})`);
      await sleep(delay, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return;
      try {
        await this.#connect();
      } catch (error) {
        cause = error as Error;
        continue;
      }
      this.#problem = undefined;
      const seconds = ((Date.now() - since.getTime()) / 1000).toFixed(1);
      this.#log(
        `rejoined the group after ${seconds} s (${attempt} attempt(s)); resuming from committed offsets`,
      );
      void this.#flushCommits();
      this.#scheduleSoon();
      return;
    }
  }

  /** Leaves the group: in-flight invocations finish (and commit), pending retries are abandoned uncommitted. */
  async #stop(): Promise<void> {
    if (this.#state === 'Disabled') return;
    this.#setState('Disabling');
    clearTimeout(this.#timer);
    this.#abort.abort();
    await this.#reconnecting;
    this.#problem = undefined;
    this.#stream?.pause();
    await Promise.allSettled([...this.#inFlight]);
    // Whatever succeeded is committed before the group is left.
    await this.#flushCommits();
    await this.#stream?.close().catch((error: Error) => this.#log(`closing the stream: ${error.message}`));
    await this.#consumer?.close().catch((error: Error) => this.#log(`leaving the group: ${error.message}`));
    this.#stream = undefined;
    this.#consumer = undefined;
    this.#batcher = undefined;
    this.stats.inFlightRecords = 0;
    this.#setState('Disabled');
  }

  #setState(state: MappingState) {
    this.#state = state;
    this.#lastStateChange = new Date();
  }

  #onMessage(message: KafkaMessage): void {
    const batcher = this.#batcher;
    if (!batcher || this.#state !== 'Enabled') return;
    const key = partitionKey(message.topic, message.partition);
    const expected = this.#nextOffset.get(key);
    // The stream re-reads from the committed offset after a rebalance: skip what is already queued.
    if (expected !== undefined && message.offset < expected) return;
    // A gap means a fetch issued before a rewind (see #relieve) answered: fetch again from the first missing
    // offset rather than skip records.
    if (expected !== undefined && message.offset > expected) {
      this.#rewind(message.topic, message.partition, expected);
      return;
    }
    this.#nextOffset.set(key, message.offset + 1n);
    this.#leaderEpochs.set(key, message.leaderEpoch);
    const record: SourceRecord = {
      topic: message.topic,
      partition: message.partition,
      offset: message.offset,
      timestamp: Number(message.timestamp),
      timestampType: 'CREATE_TIME',
      key: message.key ?? null,
      value: message.value ?? null,
      headers: message.headerEntries.map(([name, value]) => [
        name.toString('utf8'),
        value ?? Buffer.alloc(0),
      ]),
    };
    const entry: QueuedRecord = {
      record,
      matched: this.#filter(record),
      size: mskRecordSize(record),
      arrivedAt: Date.now(),
      leaderEpoch: message.leaderEpoch,
    };
    batcher.add(entry);
    this.stats.received += 1;
    this.#positions.set(key, { topic: message.topic, partition: message.partition });
    this.#applyBackpressure(batcher);
    this.#scheduleSoon();
  }

  #maxBuffered(): number {
    return this.#options.maxBufferedRecords ?? Math.max(10_000, this.definition.batchSize * 8);
  }

  #applyBackpressure(batcher: Batcher): void {
    if (this.#paused || batcher.buffered < this.#maxBuffered()) return;
    this.#relieve(batcher);
    if (batcher.buffered >= this.#maxBuffered()) {
      this.#paused = true;
      this.#stream?.pause();
    }
  }

  /**
   * A partition stuck on a retrying batch must not stall the others through the shared buffer: keep a short
   * queue for it and fetch the rest again once it moves.
   */
  #relieve(batcher: Batcher): void {
    const now = Date.now();
    for (const [key, since] of this.#inFlightSince) {
      if (now - since < STUCK_AFTER_MS) continue;
      const firstDropped = batcher.trim(key, this.definition.batchSize * 2);
      const position = this.#positions.get(key);
      if (firstDropped === undefined || !position) continue;
      this.#nextOffset.set(key, firstDropped);
      this.#rewind(position.topic, position.partition, firstDropped);
    }
  }

  #rewind(topic: string, partition: number, offset: bigint): void {
    this.#stream?.offsetsToFetch.set(`${topic}:${partition}`, offset);
  }

  #maybeResume(): void {
    const batcher = this.#batcher;
    if (this.#paused && batcher && batcher.buffered < this.#maxBuffered() / 2 && this.#state === 'Enabled') {
      this.#paused = false;
      this.#stream?.resume();
    }
  }

  #onAssignments(assignments: Array<{ topic: string; partitions: number[] }>): void {
    const owned = new Set(assignments.flatMap((a) => a.partitions.map((p) => partitionKey(a.topic, p))));
    for (const key of [...this.#nextOffset.keys()]) {
      if (owned.has(key)) continue;
      this.#batcher?.drop(key);
      this.#nextOffset.delete(key);
    }
  }

  /** Messages arrive in bursts: decide about batches once per burst, not once per message. */
  #scheduleSoon(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      this.#schedule();
    });
  }

  #schedule(): void {
    const batcher = this.#batcher;
    if (!batcher || this.#state !== 'Enabled') return;
    const now = Date.now();
    for (const batch of batcher.takeReady(now)) this.#launch(batcher, batch);
    clearTimeout(this.#timer);
    const due = batcher.nextDueIn(now);
    if (due !== undefined) this.#timer = setTimeout(() => this.#schedule(), due);
  }

  #launch(batcher: Batcher, batch: Batch): void {
    const { definition } = this.#options;
    let records = 0;
    for (const entries of batch.partitions.values()) records += entries.length;
    this.stats.inFlightRecords += records;
    const launchedAt = Date.now();
    for (const key of batch.partitions.keys()) this.#inFlightSince.set(key, launchedAt);
    const running = processBatch(batch, {
      esmUuid: definition.uuid,
      policy: definition,
      handler: this.#options.handler,
      source: { eventSourceArn: definition.eventSourceArn, bootstrapServers: this.bootstrapServers },
      fn: {
        functionName: definition.functionName,
        timeoutSeconds: definition.timeoutSeconds,
        memorySize: definition.memorySize,
        region: this.#options.region ?? process.env.AWS_REGION ?? 'eu-west-1',
        accountId: this.#options.accountId ?? '000000000000',
      },
      ...(this.#options.writeDestination ? { writeDestination: this.#options.writeDestination } : {}),
      resolve: (parts) => this.#resolve(batcher, batch, parts),
      retryDelayMs: this.#options.retryDelayMs ?? defaultRetryDelayMs,
      signal: this.#abort.signal,
      observer: this.#observer(),
    })
      .catch((error: Error) =>
        this.#log(`batch ${batch.id} failed unexpectedly: ${error.stack ?? error.message}`),
      )
      .finally(() => {
        this.#inFlight.delete(running);
        this.stats.inFlightRecords -= records;
        batcher.batchDone();
        this.#maybeResume();
        this.#schedule();
      });
    this.#inFlight.add(running);
  }

  /**
   * Queues the commit of every resolved part and frees the finished partitions at once: the next batch of a
   * partition need not wait for the broker's round trip. Commits go out one request at a time, in order,
   * each carrying the highest resolved offset per partition, so the committed offset never passes a record
   * that has not succeeded (or reached its destination); a crash before a commit lands means redelivery.
   */
  async #resolve(batcher: Batcher, batch: Batch, parts: ResolvedPart[]): Promise<void> {
    for (const { key, lastOffset } of parts) {
      const first = batch.partitions.get(key)?.[0]?.record;
      if (!first) continue;
      this.#pendingCommits.set(key, {
        topic: first.topic,
        partition: first.partition,
        offset: lastOffset + 1n,
        leaderEpoch: this.#leaderEpochs.get(key) ?? -1,
      });
    }
    this.#flushCommits();
    for (const { key, done } of parts) {
      if (!done) continue;
      this.#inFlightSince.delete(key);
      batcher.release(key);
    }
  }

  #flushCommits(): Promise<void> {
    if (!this.#committing) {
      this.#committing = this.#commitLoop().finally(() => {
        this.#committing = undefined;
      });
    }
    return this.#committing;
  }

  async #commitLoop(): Promise<void> {
    while (this.#pendingCommits.size > 0 && this.#consumer) {
      const consumer = this.#consumer;
      const offsets = [...this.#pendingCommits.values()];
      this.#pendingCommits.clear();
      try {
        await consumer.commit({ offsets });
        for (const o of offsets) this.stats.committed.set(partitionKey(o.topic, o.partition), o.offset);
      } catch (error) {
        const what = offsets.map((o) => `${o.topic}-${o.partition}@${o.offset}`).join(', ');
        if (isConnectionError(error)) {
          // The broker is away: keep them (unless a later offset is queued) for after the rejoin, so what
          // succeeded is not delivered again.
          for (const o of offsets) {
            const key = partitionKey(o.topic, o.partition);
            if (!this.#pendingCommits.has(key)) this.#pendingCommits.set(key, o);
          }
          this.#log(`commit of ${what} postponed, the broker is out of reach: ${(error as Error).message}`);
          // Rejoined meanwhile: commit through the new member now; otherwise the rejoin flushes them.
          if (this.#consumer && this.#consumer !== consumer) continue;
          return;
        }
        // Typically a rebalance took the partition away: its records will be redelivered (at-least-once).
        this.#log(`commit of ${what} failed: ${(error as Error).message}`);
      }
    }
  }

  #observer(): BatchObserver {
    return {
      invoked: (_records, ok, error) => {
        this.stats.invocations += 1;
        if (!ok) {
          this.stats.failedInvocations += 1;
          if (error) this.#log(`invocation failed: ${error.message}`);
        }
      },
      succeeded: (entries) => this.stats.recordSucceeded(entries),
      sentToDestination: (entries) => {
        this.stats.failedToDestination += entries.length;
      },
      destinationError: (error) =>
        this.#log(`on-failure destination write failed, retrying: ${error.message}`),
    };
  }

  #log(message: string): void {
    (this.#options.log ?? ((m: string) => console.error(m)))(
      `[esm ${this.definition.functionKey} ${this.definition.topic}] ${message}`,
    );
  }
}
