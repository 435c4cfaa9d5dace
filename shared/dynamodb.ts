import {
  BatchExecuteStatementCommand,
  type BatchExecuteStatementCommandOutput,
  BatchGetCommand,
  type BatchGetCommandOutput,
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  type DynamoDBDocumentClient,
  ScanCommand,
} from '@aws-sdk/lib-dynamodb';
import { chunk, mapBounded } from './concurrency';
import { BatchLevelError, isBatchLevelError, isStoreOutage } from './msk/errors';

/** DynamoDB's limit per BatchWriteItem request. */
export const WRITE_BATCH = 25;

/**
 * A conditional write or check that DynamoDB refused: the expected outcome of a fence or a claim, not a fault.
 * Matched by name because the document client and the low-level client both raise it under that name; with
 * ReturnValuesOnConditionCheckFailure the refused item rides along as `Item`.
 */
export function isConditionalCheckFailure(
  error: unknown,
): error is Error & { Item?: Record<string, unknown> } {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/**
 * Scans a table (consistent reads, keys only) and deletes every item (batchDeleteAll). The first step of a read-model rebuild; returns how many items it deleted.
 */
export async function deleteAllItems(
  client: DynamoDBDocumentClient,
  tableName: string,
  keyAttributes: readonly string[],
): Promise<number> {
  let deleted = 0;
  let startKey: Record<string, unknown> | undefined;
  do {
    const page = await client.send(
      new ScanCommand({
        TableName: tableName,
        ProjectionExpression: keyAttributes.map((_, i) => `#k${i}`).join(', '),
        ExpressionAttributeNames: Object.fromEntries(keyAttributes.map((name, i) => [`#k${i}`, name])),
        ExclusiveStartKey: startKey,
        ConsistentRead: true,
      }),
    );
    const keys = page.Items ?? [];
    await batchDeleteAll(client, tableName, keys);
    deleted += keys.length;
    startKey = page.LastEvaluatedKey;
  } while (startKey);
  return deleted;
}

/** DynamoDB's limit per BatchGetItem request. */
const GET_BATCH = 100;
/** A batch request's unprocessed keys or items (throttling) are resent this many times, with backoff. */
const UNPROCESSED_ATTEMPTS = 8;

const unprocessedBackoff = (attempt: number) =>
  new Promise((resolve) => setTimeout(resolve, Math.min(25 * 2 ** attempt, 1_000)));

/**
 * What DynamoDB's keeping part of a batch request back means: capacity. Named like throttling so it is
 * classified as an outage (retried inside the invocation), not as a record's fault.
 */
function stillUnprocessed(count: number): Error {
  const error = new Error(
    `${count} keys or items of a batch request still unprocessed after ${UNPROCESSED_ATTEMPTS} attempts`,
  );
  error.name = 'ProvisionedThroughputExceededException';
  return error;
}

/**
 * Reads `keys` of one table with consistent BatchGetItem requests of 100 keys, `concurrency` requests in
 * flight, resending unprocessed keys with backoff. Items come back in no particular order; with `attributes`,
 * those and the key's (a projection: fewer bytes to send and to unmarshal), or more when the request is shared
 * with another read of the table. Reads of one client begun in the same tick share requests (see `BatchRound`).
 */
export async function batchGetAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  concurrency = 4,
  attributes?: readonly string[],
): Promise<Record<string, unknown>[]> {
  const items: Record<string, unknown>[] = [];
  await mapBounded(chunk(keys, GET_BATCH), concurrency, async (part) => {
    let pending: Record<string, unknown>[] = part;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > UNPROCESSED_ATTEMPTS) throw stillUnprocessed(pending.length);
      if (attempt > 1) await unprocessedBackoff(attempt);
      const result = await roundOf(client).get(tableName, pending, attributes);
      items.push(...result.items);
      pending = result.unprocessed;
    }
  });
  return items;
}

/**
 * Puts `items` into one table with BatchWriteItem requests of 25 (no two with the same key, whose attributes
 * `key` names), `concurrency` requests in flight, resending unprocessed items with backoff. Unconditional: for
 * writes that are right whoever wrote first. Writes begun in the same tick share requests (see `BatchRound`).
 */
export function batchPutAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  key: readonly string[],
  items: readonly Record<string, unknown>[],
  concurrency = 4,
): Promise<void> {
  const requests = items.map((Item) => ({ PutRequest: { Item } }));
  return batchWriteAll(client, tableName, [...key].sort(), requests, concurrency);
}

/** Deletes the items of `keys` (no key twice), like batchPutAll. */
export function batchDeleteAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  keys: readonly Record<string, unknown>[],
  concurrency = 4,
): Promise<void> {
  const requests = keys.map((Key) => ({ DeleteRequest: { Key } }));
  return batchWriteAll(client, tableName, keyNames(keys[0] ?? {}), requests, concurrency);
}

type WriteRequest =
  | { PutRequest: { Item: Record<string, unknown> } }
  | { DeleteRequest: { Key: Record<string, unknown> } };

async function batchWriteAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  key: readonly string[],
  requests: readonly WriteRequest[],
  concurrency: number,
): Promise<void> {
  await mapBounded(chunk(requests, WRITE_BATCH), concurrency, async (part) => {
    let pending: WriteRequest[] = part;
    for (let attempt = 1; pending.length > 0; attempt++) {
      if (attempt > UNPROCESSED_ATTEMPTS) throw stillUnprocessed(pending.length);
      if (attempt > 1) await unprocessedBackoff(attempt);
      pending = await roundOf(client).write(tableName, key, pending);
    }
  });
}

/** DynamoDB's limit of statements per BatchExecuteStatement. */
export const STATEMENT_BATCH = 25;
/** A statement's errors that are the store's capacity or a race with another write, not the item's: resent. */
const RESENT_STATEMENT_ERRORS = new Set([
  'ThrottlingError',
  'ProvisionedThroughputExceeded',
  'RequestLimitExceeded',
  'InternalServerError',
  'TransactionConflict',
]);
/** A statement's errors that are the item's own (too large, a key or index type wrong): that item fails alone. */
const ITEM_STATEMENT_ERRORS = new Set(['ValidationError', 'ItemCollectionSizeLimitExceeded']);
/** The item's key is taken: INSERT's DuplicateItem (ConditionalCheckFailed is a condition's, named the same way). */
const KEY_TAKEN_STATEMENT_ERRORS = new Set(['DuplicateItem', 'ConditionalCheckFailed']);

type InsertEntry = { index: number; item: Record<string, unknown> };

/**
 * Puts each item unless the table holds one with its key: a PartiQL INSERT each (DynamoDB refuses it with
 * DuplicateItem when the key is taken), in BatchExecuteStatement requests of 25, `concurrency` in flight. The
 * conditional put of PutItem with `attribute_not_exists`, at a request per 25 items instead of one each: per item,
 * true if this call put it, false if the key was taken, or the reason it failed. Statements throttled one by one
 * are resent with backoff, then fail as an outage; one refused for its item fails alone, as the item's fault; any
 * other refusal of a statement (a missing table, no permission, an answer this code does not know) fails as
 * batch-level. A request that fails as a whole for what its items hold (an item the client cannot send, a request
 * DynamoDB refuses as invalid) is sent again one statement a request, so that one item costs itself only; for any
 * other reason (the store out, refusing us, an answer not understood) its items fail as batch-level. No two items
 * may share a key (one request would run both).
 */
export async function insertAll(
  client: DynamoDBDocumentClient,
  tableName: string,
  items: readonly Record<string, unknown>[],
  concurrency = 4,
): Promise<PromiseSettledResult<boolean>[]> {
  const results = new Array<PromiseSettledResult<boolean>>(items.length);
  const entries: InsertEntry[] = items.map((item, index) => ({ index, item }));
  await mapBounded(chunk(entries, STATEMENT_BATCH), concurrency, async (part) => {
    for (const [index, result] of await insertRequest(client, tableName, part)) results[index] = result;
  });
  return results;
}

/** One request's statements, resent as `insertAll` says; the outcome of each entry, by its index. */
async function insertRequest(
  client: DynamoDBDocumentClient,
  tableName: string,
  part: readonly InsertEntry[],
): Promise<Map<number, PromiseSettledResult<boolean>>> {
  const results = new Map<number, PromiseSettledResult<boolean>>();
  const settle = (entries: readonly InsertEntry[], result: PromiseSettledResult<boolean>) => {
    for (const { index } of entries) results.set(index, result);
  };
  let pending = part;
  for (let attempt = 1; pending.length > 0; attempt++) {
    if (attempt > UNPROCESSED_ATTEMPTS) {
      settle(pending, { status: 'rejected', reason: stillUnprocessed(pending.length) });
      break;
    }
    if (attempt > 1) await unprocessedBackoff(attempt);
    let responses: NonNullable<BatchExecuteStatementCommandOutput['Responses']>;
    try {
      const output = await client.send(
        new BatchExecuteStatementCommand({
          Statements: pending.map(({ item }) => insertStatement(tableName, item)),
        }),
      );
      responses = output.Responses ?? [];
    } catch (reason) {
      if (!refusesItems(reason)) {
        // Not about what the items hold (the store out, refusing us, or an answer not understood, which may
        // come after the statements ran): none is the item's fault, and resending them one by one would not help.
        const batchLevel = isBatchLevelError(reason)
          ? reason
          : new BatchLevelError(`BatchExecuteStatement on ${tableName} failed: ${String(reason)}`, {
              cause: reason,
            });
        settle(pending, { status: 'rejected', reason: batchLevel });
      } else if (pending.length === 1) {
        settle(pending, { status: 'rejected', reason });
      } else {
        // Sent again alone, one after another (a share of `concurrency`): one bad item costs itself only; once
        // one fails for a batch-level reason, so do the rest, unsent.
        for (const [i, entry] of pending.entries()) {
          const alone = await insertRequest(client, tableName, [entry]);
          for (const [index, result] of alone) results.set(index, result);
          const result = alone.get(entry.index);
          if (result?.status === 'rejected' && isBatchLevelError(result.reason)) {
            settle(pending.slice(i + 1), result);
            break;
          }
        }
      }
      break;
    }
    if (responses.length !== pending.length) {
      // Responses come in the order of the statements; another count says nothing about which went in.
      const reason = new BatchLevelError(
        `BatchExecuteStatement on ${tableName} answered ${responses.length} of ${pending.length} statements`,
      );
      settle(pending, { status: 'rejected', reason });
      break;
    }
    const again: InsertEntry[] = [];
    pending.forEach((entry, i) => {
      const error = responses[i]?.Error;
      const code = error?.Code;
      if (error === undefined) settle([entry], { status: 'fulfilled', value: true });
      else if (code !== undefined && KEY_TAKEN_STATEMENT_ERRORS.has(code))
        settle([entry], { status: 'fulfilled', value: false });
      else if (code !== undefined && RESENT_STATEMENT_ERRORS.has(code)) again.push(entry);
      else settle([entry], { status: 'rejected', reason: statementError(tableName, code, error.Message) });
    });
    pending = again;
  }
  return results;
}

/**
 * Whether a BatchExecuteStatement that failed as a whole was refused for what its items hold: the client could not
 * send it (an error raised before the request, with no AWS metadata and no network code: a value it cannot
 * marshal), or DynamoDB refused the request as invalid.
 */
function refusesItems(error: unknown): boolean {
  if (!(error instanceof Error) || isBatchLevelError(error)) return false;
  const { $metadata, code } = error as Error & { $metadata?: unknown; code?: unknown };
  if ($metadata === undefined) return typeof code !== 'string';
  return error.name === 'ValidationException';
}

/** `INSERT INTO "table" VALUE {'a': ?, ...}` with the item's attributes as parameters (no value in the text). */
function insertStatement(
  tableName: string,
  item: Record<string, unknown>,
): { Statement: string; Parameters: unknown[] } {
  const names = Object.keys(item).filter((name) => item[name] !== undefined);
  const tuple = names.map((name) => `'${name.replaceAll("'", "''")}': ?`).join(', ');
  return {
    Statement: `INSERT INTO "${tableName}" VALUE {${tuple}}`,
    Parameters: names.map((name) => item[name]),
  };
}

function statementError(tableName: string, code: string | undefined, message: string | undefined): Error {
  const text = `INSERT into ${tableName} refused: ${code ?? 'an error without a code'}${message ? `: ${message}` : ''}`;
  if (code === undefined || !ITEM_STATEMENT_ERRORS.has(code)) return new BatchLevelError(text);
  const error = new Error(text);
  error.name = `Statement${code}`;
  return error;
}

interface Share<Entry, Result> {
  table: string;
  /** The key attributes' names; a share's entries are told apart, and routed back, by their values. */
  key: readonly string[];
  entries: Entry[];
  /** Where an entry's key attributes are. */
  locate(entry: Entry): Record<string, unknown>;
  /** A get's projection; undefined: every attribute. */
  attributes?: readonly string[];
  resolve(result: Result): void;
  reject(error: unknown): void;
}
interface GetResult {
  items: Record<string, unknown>[];
  unprocessed: Record<string, unknown>[];
}
type GetShare = Share<Record<string, unknown>, GetResult>;
type WriteShare = Share<WriteRequest, WriteRequest[]>;
type AnyShare = GetShare | WriteShare;

/** Where a write request's key attributes are: its item, or its key. */
const writeKey = (request: WriteRequest): Record<string, unknown> =>
  'PutRequest' in request ? request.PutRequest.Item : request.DeleteRequest.Key;
const itself = (entry: Record<string, unknown>) => entry;

const keyNames = (key: Record<string, unknown>) => Object.keys(key).sort();
/** A key's values as text, the same for what was sent and what came back (a binary value as base64). */
const keyOf = (names: readonly string[], value: Record<string, unknown>) =>
  JSON.stringify(
    names.map((name) => {
      const part = value[name];
      return ArrayBuffer.isView(part)
        ? `b:${Buffer.from(part.buffer, part.byteOffset, part.byteLength).toString('base64')}`
        : `${typeof part}:${String(part)}`;
    }),
  );

/**
 * The batch requests one client's callers begin in one tick, sent together once it ends: every BatchGetItem share
 * in as few requests of at most 100 keys as fit, every BatchWriteItem share in requests of at most 25 items, any
 * tables, a share never split, no key twice in one request (DynamoDB refuses that) and one key schema per table.
 * A batch whose reads (or writes) go to two ports of one table thus costs one round trip, not two. Each share gets
 * back its own items and its own unprocessed keys or items, matched by key. A request of several shares that fails
 * for another reason than an outage (a throttled or unreachable store fails them all, to be retried) is sent again
 * share by share, so that one caller's bad item fails that caller alone. Requests begun in one tick go out at
 * once: a put and a delete of the same key in one tick go in two requests whose order is not kept.
 */
class BatchRound {
  private readonly gets: GetShare[] = [];
  private readonly writes: WriteShare[] = [];

  constructor(private readonly client: DynamoDBDocumentClient) {}

  get(table: string, keys: Record<string, unknown>[], attributes?: readonly string[]) {
    return new Promise<GetResult>((resolve, reject) => {
      this.gets.push({
        table,
        key: keyNames(keys[0] ?? {}),
        entries: keys,
        locate: itself,
        attributes,
        resolve,
        reject,
      });
    });
  }

  write(table: string, key: readonly string[], requests: WriteRequest[]) {
    return new Promise<WriteRequest[]>((resolve, reject) => {
      this.writes.push({ table, key, entries: requests, locate: writeKey, resolve, reject });
    });
  }

  send(): void {
    try {
      for (const shares of pack(this.gets, GET_BATCH)) this.sendGet(shares);
      for (const shares of pack(this.writes, WRITE_BATCH)) this.sendWrite(shares);
    } catch (error) {
      // Every share settles (one sent already ignores this).
      for (const share of [...this.gets, ...this.writes]) share.reject(error);
    }
  }

  /**
   * Runs one request for `shares`, which resolves them; when it fails, a request of several shares is sent again
   * share by share unless the store is out (see the class), otherwise every share fails with it.
   */
  private exchange<S extends AnyShare>(shares: S[], request: () => Promise<void>, alone: (share: S) => void) {
    request().catch((error: unknown) => {
      if (shares.length > 1 && !isStoreOutage(error)) for (const share of shares) alone(share);
      else for (const share of shares) share.reject(error);
    });
  }

  private sendGet(shares: GetShare[]): void {
    const byTable = groupByTable(shares);
    const RequestItems = Object.fromEntries(
      [...byTable].map(([table, group]) => {
        const Keys = group.flatMap((share) => share.entries);
        // One projection per table and request: the union of the shares', or everything if one wants everything.
        const wanted = group.every((share) => share.attributes)
          ? [...new Set(group.flatMap((share) => [...share.key, ...(share.attributes ?? [])]))]
          : undefined;
        const projection = wanted
          ? {
              ProjectionExpression: wanted.map((_, i) => `#a${i}`).join(', '),
              ExpressionAttributeNames: Object.fromEntries(wanted.map((name, i) => [`#a${i}`, name])),
            }
          : {};
        return [table, { Keys, ConsistentRead: true, ...projection }];
      }),
    );
    this.exchange(
      shares,
      async () => {
        const result: BatchGetCommandOutput = await this.client.send(new BatchGetCommand({ RequestItems }));
        // Every share's part is worked out before any is resolved: a part that cannot be fails them all.
        const parts = [...byTable].flatMap(([table, group]) => {
          const items = route(group, result.Responses?.[table] ?? []);
          const unprocessed = route(group, result.UnprocessedKeys?.[table]?.Keys ?? []);
          return group.map(
            (share, i) => () => share.resolve({ items: items[i] ?? [], unprocessed: unprocessed[i] ?? [] }),
          );
        });
        for (const resolve of parts) resolve();
      },
      (share) => this.sendGet([share]),
    );
  }

  private sendWrite(shares: WriteShare[]): void {
    const byTable = groupByTable(shares);
    const RequestItems = Object.fromEntries(
      [...byTable].map(([table, group]) => [table, group.flatMap((share) => share.entries)]),
    );
    this.exchange(
      shares,
      async () => {
        const result: BatchWriteCommandOutput = await this.client.send(
          new BatchWriteCommand({ RequestItems }),
        );
        const parts = [...byTable].flatMap(([table, group]) => {
          const unprocessed = route(group, (result.UnprocessedItems?.[table] ?? []) as WriteRequest[]);
          return group.map((share, i) => () => share.resolve(unprocessed[i] ?? []));
        });
        for (const resolve of parts) resolve();
      },
      (share) => this.sendWrite([share]),
    );
  }
}

const rounds = new WeakMap<DynamoDBDocumentClient, BatchRound>();

/**
 * The client's round of this tick, sent on process.nextTick: after the synchronous work that began it and the
 * nextTick callbacks queued before it, before promise callbacks queued meanwhile.
 */
function roundOf(client: DynamoDBDocumentClient): BatchRound {
  let round = rounds.get(client);
  if (!round) {
    const started = new BatchRound(client);
    rounds.set(client, started);
    process.nextTick(() => {
      rounds.delete(client);
      started.send();
    });
    round = started;
  }
  return round;
}

/**
 * Shares into requests of at most `limit` entries, first fit in arrival order, no key twice in a request and one
 * key schema per table in it (shares are told apart by their key's values).
 */
function pack<S extends AnyShare>(shares: readonly S[], limit: number): S[][] {
  const requests: Array<{ shares: S[]; size: number; keys: Set<string>; schemas: Map<string, string> }> = [];
  for (const share of shares) {
    const keys = (share.entries as never[]).map(
      (entry) => `${share.table}\u0000${keyOf(share.key, share.locate(entry))}`,
    );
    const schema = share.key.join(',');
    let request = requests.find(
      (open) =>
        open.size + share.entries.length <= limit &&
        (open.schemas.get(share.table) ?? schema) === schema &&
        !keys.some((key) => open.keys.has(key)),
    );
    if (!request) {
      request = { shares: [], size: 0, keys: new Set(), schemas: new Map() };
      requests.push(request);
    }
    request.shares.push(share);
    request.size += share.entries.length;
    request.schemas.set(share.table, schema);
    for (const key of keys) request.keys.add(key);
  }
  return requests.map((request) => request.shares);
}

function groupByTable<S extends AnyShare>(shares: readonly S[]): Map<string, S[]> {
  const byTable = new Map<string, S[]>();
  for (const share of shares) {
    const group = byTable.get(share.table);
    if (group) group.push(share);
    else byTable.set(share.table, [share]);
  }
  return byTable;
}

/** `values` (items, keys or write requests of one table) back to the shares whose keys they carry, one list each. */
function route<Entry extends Record<string, unknown> | WriteRequest>(
  group: readonly Share<Entry, unknown>[],
  values: readonly Entry[],
): Entry[][] {
  const lists = group.map(() => [] as Entry[]);
  if (values.length === 0) return lists;
  const first = group[0];
  if (!first) return lists;
  const names = first.key;
  const owner = new Map<string, number>();
  group.forEach((share, i) => {
    for (const entry of share.entries) owner.set(keyOf(names, share.locate(entry)), i);
  });
  for (const value of values) {
    const at = owner.get(keyOf(names, first.locate(value)));
    if (at === undefined)
      throw new Error(
        `DynamoDB answered a batch request with a key none of its callers asked for (${first.table})`,
      );
    lists[at]?.push(value);
  }
  return lists;
}
