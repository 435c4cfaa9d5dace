// Redrive: the records of failed-records objects go back to their function (Lambda Invoke with the original
// MSK event) or onto a topic (produced again with their key, headers and value), and each object is tagged with
// the outcome so a second redrive skips what succeeded. The same against AWS and locally: only the adapters
// behind these ports differ (S3 or s3rver, Lambda or the local Lambda API, MSK or the local broker).
import type { MSKEvent, MSKRecord } from 'aws-lambda';
import { MAX_PAYLOAD_BYTES } from '../../local/esm/batcher';
import {
  type BatchSelection,
  batchMatches,
  type FailedBatch,
  keyMayMatch,
  parseFailedBatch,
  redriveOrder,
  splitPartitionKey,
  UnreadableFailedBatch,
} from './failed-batch';

/** The failed-records bucket. */
export interface FailedBatchStore {
  list(prefix: string): AsyncIterable<{ key: string; lastModified?: Date }>;
  read(key: string): Promise<string>;
  tags(key: string): Promise<Record<string, string>>;
  /** Replaces the object's tags. */
  setTags(key: string, tags: Record<string, string>): Promise<void>;
}

export type InvokeResult = { ok: true; response: unknown } | { ok: false; error: string };

/** Synchronous invocation of a function with an event. */
export interface FunctionInvoker {
  invoke(functionName: string, event: MSKEvent): Promise<InvokeResult>;
}

export interface ProducedRecord {
  topic: string;
  /** Absent: the producer's partitioner picks one by key. */
  partition?: number;
  key: Buffer | null;
  value: Buffer | null;
  headers: Array<[Buffer, Buffer]>;
}

/** Produces records to Kafka, all acknowledged or an error. */
export interface RecordProducer {
  produce(records: ProducedRecord[]): Promise<void>;
}

/** Tag keys on a redriven object. */
export const STATUS_TAG = 'redrive-status';
export const AT_TAG = 'redrive-at';
export const VIA_TAG = 'redrive-via';
export type RedriveStatus = 'redriven' | 'failed-again';

export type RedriveTarget = { kind: 'invoke'; functionName: string } | { kind: 'topic'; topic: string };

export interface PlannedBatch {
  batch: FailedBatch;
  /** Absent: never redriven. */
  status?: RedriveStatus;
  tags: Record<string, string>;
}

export interface RedrivePlan {
  /** What a redrive sends, in redrive order: never redriven, or failed again last time. */
  pending: PlannedBatch[];
  /** Redriven before: skipped. */
  redriven: PlannedBatch[];
  /** Objects of the selection that are not invocation records with their payload. */
  unreadable: UnreadableFailedBatch[];
}

export async function planRedrive(
  store: FailedBatchStore,
  selection: BatchSelection,
  prefix = 'aws/lambda/',
  concurrency = 8,
): Promise<RedrivePlan> {
  const plan: RedrivePlan = { pending: [], redriven: [], unreadable: [] };
  const candidates: string[] = [];
  for await (const { key, lastModified } of store.list(prefix)) {
    if (keyMayMatch(key, lastModified, selection)) candidates.push(key);
  }
  // Two requests per object (body, tags): several objects at a time, the plan sorted afterwards.
  let next = 0;
  const worker = async () => {
    while (next < candidates.length) {
      const key = candidates[next++] as string;
      // One object that cannot be read (malformed, expired since the listing, refused) costs that object, not
      // the redrive; one whose tags cannot be read is not sent, since it may have been redriven already.
      let batch: FailedBatch;
      let tags: Record<string, string>;
      try {
        batch = parseFailedBatch(key, await store.read(key));
        if (!batchMatches(batch, selection)) continue;
        tags = await store.tags(key);
      } catch (error) {
        const err = error as Error;
        plan.unreadable.push(
          err instanceof UnreadableFailedBatch
            ? err
            : new UnreadableFailedBatch(key, `could not be read: ${err.name}: ${err.message}`),
        );
        continue;
      }
      const status = tags[STATUS_TAG] as RedriveStatus | undefined;
      const planned = { batch, tags, ...(status ? { status } : {}) };
      (status === 'redriven' ? plan.redriven : plan.pending).push(planned);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, candidates.length)) }, worker));
  const byOrder = (a: PlannedBatch, b: PlannedBatch) => redriveOrder(a.batch, b.batch);
  plan.pending.sort(byOrder);
  plan.redriven.sort(byOrder);
  plan.unreadable.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  return plan;
}

export interface FailedRecord {
  /** "<topic>-<partition>" */
  partition: string;
  offset: number;
  reason: string;
}

export interface BatchOutcome {
  key: string;
  records: number;
  succeeded: number;
  failedAgain: FailedRecord[];
  status: RedriveStatus;
  /** Why the object could not be tagged (a later redrive would send it again). */
  tagError?: string;
}

export interface RedriveDeps {
  store: FailedBatchStore;
  invoker?: FunctionInvoker;
  producer?: RecordProducer;
  now?: () => Date;
  /** Per object, as it finishes. */
  onOutcome?: (outcome: BatchOutcome) => void;
}

/**
 * Redrives every pending object and tags each with its outcome. Objects that share a partition go one after
 * another in redrive order (older records first, as the ESM would); independent groups run `concurrency` at a
 * time. Outcomes come back in plan order.
 */
export async function executeRedrive(
  plan: RedrivePlan,
  target: RedriveTarget,
  deps: RedriveDeps,
  concurrency = 1,
): Promise<BatchOutcome[]> {
  const results = new Map<PlannedBatch, BatchOutcome>();
  const groups = partitionGroups(plan.pending);
  let next = 0;
  const worker = async () => {
    while (next < groups.length) {
      const group = groups[next++] as PlannedBatch[];
      for (const planned of group) {
        const outcome = await redriveOne(planned, target, deps);
        results.set(planned, outcome);
        deps.onOutcome?.(outcome);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(concurrency, groups.length)) }, worker));
  return plan.pending.map((planned) => results.get(planned) as BatchOutcome);
}

async function redriveOne(
  { batch, tags }: PlannedBatch,
  target: RedriveTarget,
  deps: RedriveDeps,
): Promise<BatchOutcome> {
  const failedAgain =
    target.kind === 'invoke'
      ? await invokeBatch(batch.event, target.functionName, requireDep(deps.invoker, 'invoker'))
      : await produceBatch(batch.event, target.topic, requireDep(deps.producer, 'producer'));
  const status: RedriveStatus = failedAgain.length === 0 ? 'redriven' : 'failed-again';
  const outcome: BatchOutcome = {
    key: batch.key,
    records: batch.recordCount,
    succeeded: batch.recordCount - failedAgain.length,
    failedAgain,
    status,
  };
  try {
    await deps.store.setTags(batch.key, {
      ...tags,
      [STATUS_TAG]: status,
      [AT_TAG]: (deps.now?.() ?? new Date()).toISOString(),
      [VIA_TAG]: target.kind === 'invoke' ? 'invoke' : `topic/${target.topic}`,
    });
  } catch (error) {
    outcome.tagError = (error as Error).message;
  }
  return outcome;
}

/** The pending objects in groups that share no partition (transitively), each group in plan order. */
export function partitionGroups(pending: PlannedBatch[]): PlannedBatch[][] {
  const parent = new Map<string, string>();
  const find = (key: string): string => {
    let root = key;
    while (parent.get(root) !== root) root = parent.get(root) as string;
    parent.set(key, root);
    return root;
  };
  for (const { batch } of pending) {
    for (const key of batch.partitions) if (!parent.has(key)) parent.set(key, key);
    const [first, ...rest] = batch.partitions;
    if (first === undefined) continue;
    for (const key of rest) parent.set(find(key), find(first));
  }
  const groups = new Map<string, PlannedBatch[]>();
  const ungrouped: PlannedBatch[][] = [];
  for (const planned of pending) {
    const first = planned.batch.partitions[0];
    if (first === undefined) {
      ungrouped.push([planned]);
      continue;
    }
    const root = find(first);
    groups.set(root, [...(groups.get(root) ?? []), planned]);
  }
  return [...groups.values(), ...ungrouped];
}

function requireDep<T>(dep: T | undefined, name: string): T {
  if (!dep) throw new Error(`redrive: no ${name} configured for this target`);
  return dep;
}

const recordsOf = (event: MSKEvent) =>
  Object.entries(event.records).flatMap(([partition, records]) =>
    records.map((record) => ({ partition, record })),
  );

/**
 * Invokes the function with the batch's records in their original MSK event shape: one invocation when it fits
 * Lambda's 6 MB payload (every object but a MaximumPayloadSizeExceeded one), else consecutive slices. Returns
 * the records that failed again: those a partial batch response names and the later ones of their partition
 * (the ESM would redeliver from there), every record of an invocation that failed, and a partition's records
 * after one that failed in an earlier slice (never sent: order within a partition).
 */
export async function invokeBatch(
  event: MSKEvent,
  functionName: string,
  invoker: FunctionInvoker,
  maxBytes = MAX_PAYLOAD_BYTES,
): Promise<FailedRecord[]> {
  const failed: FailedRecord[] = [];
  const brokenPartitions = new Set<string>();
  const fail = (partition: string, record: MSKRecord, reason: string) => {
    failed.push({ partition, offset: record.offset, reason });
    brokenPartitions.add(partition);
  };
  for (const slice of invocationSlices(event, maxBytes)) {
    const records: Record<string, MSKRecord[]> = {};
    for (const { partition, record } of slice.records) {
      if (brokenPartitions.has(partition)) {
        failed.push({
          partition,
          offset: record.offset,
          reason: 'not sent: an earlier record of its partition failed',
        });
        continue;
      }
      records[partition] ??= [];
      records[partition].push(record);
    }
    const sent = Object.entries(records).flatMap(([partition, list]) =>
      list.map((record) => ({ partition, record })),
    );
    if (sent.length === 0) continue;
    if (slice.tooLarge) {
      for (const { partition, record } of sent)
        fail(
          partition,
          record,
          `larger than Lambda's ${maxBytes}-byte invocation payload on its own: use --to-topic`,
        );
      continue;
    }
    const result = await invoker.invoke(functionName, { ...event, records });
    if (!result.ok) {
      for (const { partition, record } of sent) fail(partition, record, `invocation failed: ${result.error}`);
      continue;
    }
    const firstFailed = reportedFailures(result.response, records);
    if (firstFailed === 'invalid') {
      for (const { partition, record } of sent)
        fail(partition, record, 'the partial batch response names a record that was not sent');
      continue;
    }
    for (const { partition, record } of sent) {
      const first = firstFailed.get(partition);
      if (first !== undefined && record.offset >= first)
        fail(partition, record, 'reported as a batch item failure');
    }
  }
  return failed;
}

/** The lowest reported offset per partition, or 'invalid' when the response names a record not sent. */
function reportedFailures(
  response: unknown,
  records: Record<string, MSKRecord[]>,
): Map<string, number> | 'invalid' {
  const first = new Map<string, number>();
  const items = (response as { batchItemFailures?: unknown } | null)?.batchItemFailures;
  if (!Array.isArray(items)) return first;
  for (const item of items) {
    const id = (item as { itemIdentifier?: { partition?: unknown; offset?: unknown } } | null)
      ?.itemIdentifier;
    const offset = Number(id?.offset);
    const partition = id?.partition;
    if (typeof partition !== 'string' || !records[partition]?.some((r) => r.offset === offset))
      return 'invalid';
    const current = first.get(partition);
    if (current === undefined || offset < current) first.set(partition, offset);
  }
  return first;
}

interface Slice {
  records: Array<{ partition: string; record: MSKRecord }>;
  /** One record that alone exceeds the payload limit. */
  tooLarge?: boolean;
}

/** Consecutive slices of the event's records, each within `maxBytes` as an event (records keep their order). */
export function invocationSlices(event: MSKEvent, maxBytes: number): Slice[] {
  const envelope = Buffer.byteLength(JSON.stringify({ ...event, records: {} }));
  const all = recordsOf(event);
  if (envelope + Buffer.byteLength(JSON.stringify(event.records)) <= maxBytes) return [{ records: all }];
  const slices: Slice[] = [];
  let current: Slice = { records: [] };
  let size = envelope;
  for (const entry of all) {
    // The record, plus its partition's key when it starts a new list in this slice.
    const bytes = Buffer.byteLength(JSON.stringify(entry.record)) + entry.partition.length + 8;
    if (envelope + bytes > maxBytes) {
      if (current.records.length > 0) slices.push(current);
      slices.push({ records: [entry], tooLarge: true });
      current = { records: [] };
      size = envelope;
      continue;
    }
    if (size + bytes > maxBytes && current.records.length > 0) {
      slices.push(current);
      current = { records: [] };
      size = envelope;
    }
    current.records.push(entry);
    size += bytes;
  }
  if (current.records.length > 0) slices.push(current);
  return slices;
}

/**
 * Produces the batch's records to `topic` with their original key, headers and value, in order, all or none
 * acknowledged. To their own topic they go to their own partition; the timestamp is new, so an ESM with
 * MaximumRecordAgeInSeconds does not send them straight back to the bucket.
 */
export async function produceBatch(
  event: MSKEvent,
  topic: string,
  producer: RecordProducer,
): Promise<FailedRecord[]> {
  const entries = recordsOf(event);
  try {
    await producer.produce(
      entries.map(({ partition, record }) => ({
        topic,
        ...(splitPartitionKey(partition).topic === topic ? { partition: record.partition } : {}),
        key: record.key === null || record.key === undefined ? null : Buffer.from(record.key, 'base64'),
        value: record.value === null ? null : Buffer.from(record.value, 'base64'),
        headers: (record.headers ?? []).flatMap((header) =>
          Object.entries(header).map(
            ([name, bytes]) => [Buffer.from(name), Buffer.from(bytes)] as [Buffer, Buffer],
          ),
        ),
      })),
    );
    return [];
  } catch (error) {
    return entries.map(({ partition, record }) => ({
      partition,
      offset: record.offset,
      reason: `produce to ${topic} failed: ${(error as Error).message}`,
    }));
  }
}

/** The topics a plan's records come from. */
export function topicsOf(plan: RedrivePlan): string[] {
  const topics = new Set<string>();
  for (const { batch } of plan.pending)
    for (const key of batch.partitions) topics.add(splitPartitionKey(key).topic);
  return [...topics].sort();
}
