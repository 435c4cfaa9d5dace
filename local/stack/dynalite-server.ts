/**
 * dynalite, plus the one PartiQL call this project makes: BatchExecuteStatement of `INSERT INTO "T" VALUE {'a': ?,
 * ...}` statements (a conditional put each, 25 a call, one outcome per statement). dynalite runs no PartiQL and no
 * transactions, and DynamoDB Local may not be used here (the vendor's own terms), so this is the stand-in for it:
 * each statement is run as dynalite's own PutItem conditional on no item with that key, with dynalite's validation,
 * per-key lock and indexes; an item that exists answers the statement's error DuplicateItem, as DynamoDB documents
 * for INSERT (developer guide, "PartiQL insert statements for DynamoDB"; API reference, BatchStatementError). Any
 * other statement is refused with a ValidationException naming this stand-in. Every other call is dynalite's.
 *
 *   node --import tsx local/stack/dynalite-server.ts --host 127.0.0.1 --port 4567 [--path DIR] [--createTableMs 0]
 */

import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { crc32 } from 'node:zlib';

/** DynamoDB's limit of statements per BatchExecuteStatement. */
export const STATEMENTS_PER_BATCH = 25;
/** dynalite's own limit on a request body. */
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
const TARGET = 'DynamoDB_20120810.BatchExecuteStatement';

type AttributeValue = Record<string, unknown>;
interface ApiError {
  statusCode?: number;
  body?: { __type?: string; message?: string; Message?: string };
}
type Callback<T> = (error: (Error & ApiError) | null | undefined, result?: T) => void;
interface Table {
  KeySchema: Array<{ AttributeName: string; KeyType: string }>;
}
interface Store {
  getTable(name: string, callback: Callback<Table>): void;
}
interface PutItemValidation {
  types: unknown;
  custom: unknown;
}

// dynalite ships no types: the little of its internals used here, through require; loaded on first use, so that
// what imports this module for its probe (the stack's CLI) does not load dynalite.
const require = createRequire(import.meta.url);
interface Dynalite {
  db: { create(options: unknown): Store };
  server: (options: DynaliteOptions) => Server;
  validations: {
    checkTypes(data: unknown, types: unknown): Record<string, unknown>;
    checkValidations(data: unknown, types: unknown, custom: unknown, store: Store): void;
  };
  putItemValidation: PutItemValidation;
  putItem: (store: Store, data: unknown, cb: Callback<unknown>) => void;
}
let loaded: Dynalite | undefined;
function dynalite(): Dynalite {
  loaded ??= {
    db: require('dynalite/db'),
    server: require('dynalite'),
    validations: require('dynalite/validations'),
    putItemValidation: require('dynalite/validations/putItem'),
    putItem: require('dynalite/actions/putItem'),
  };
  return loaded;
}

export interface DynaliteOptions {
  path?: string;
  createTableMs?: number;
  deleteTableMs?: number;
  updateTableMs?: number;
}

/** A dynalite HTTP server (not listening yet) that also runs BatchExecuteStatement INSERTs. */
export function dynaliteServer(options: DynaliteOptions = {}): Server {
  // dynalite creates its store inside; this is how its own handler's store is reached from here.
  const { db, server: createServer } = dynalite();
  const create = db.create;
  let store: Store | undefined;
  db.create = (storeOptions: unknown) => {
    store = create.call(db, storeOptions);
    return store;
  };
  let server: Server;
  try {
    server = createServer(options);
  } finally {
    db.create = create;
  }
  if (!store)
    throw new Error('dynalite created its store another way than this stand-in expects (dynalite 4.0.0)');
  const dynaliteStore = store;
  const [dynaliteHandler] = server.listeners('request') as Array<
    (req: IncomingMessage, res: ServerResponse) => void
  >;
  server.removeAllListeners('request');
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && req.headers['x-amz-target'] === TARGET) {
      void batchExecuteStatement(dynaliteStore, req, res);
    } else {
      dynaliteHandler?.(req, res);
    }
  });
  return server;
}

async function batchExecuteStatement(store: Store, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let body: string;
  try {
    body = await readBody(req);
  } catch {
    res.statusCode = 413;
    res.end();
    return;
  }
  let input: unknown;
  try {
    input = JSON.parse(body);
  } catch {
    send(res, 400, { __type: 'com.amazon.coral.service#SerializationException' });
    return;
  }
  const statements = parseStatements(input);
  if (typeof statements === 'string') {
    send(res, 400, { __type: 'com.amazon.coral.validate#ValidationException', message: statements });
    return;
  }
  try {
    send(res, 200, { Responses: await Promise.all(statements.map((statement) => insert(store, statement))) });
  } catch (error) {
    // dynalite's own PutItem throws on some malformed values (a null attribute); an answer, not a dead process.
    send(res, 500, {
      __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError',
      message: `dynalite failed: ${(error as Error).message}`,
    });
  }
}

interface Insert {
  table: string;
  item: Record<string, AttributeValue>;
}

/** The statements as inserts, or what is wrong with the request (a ValidationException's message). */
export function parseStatements(input: unknown): Insert[] | string {
  if (typeof input !== 'object' || input === null || Array.isArray(input))
    return 'the request is not a JSON object';
  const unknown = Object.keys(input).filter((key) => key !== 'Statements');
  if (unknown.length > 0) return `this local stand-in does not run ${unknown.join(', ')}`;
  const statements = (input as { Statements?: unknown }).Statements;
  if (!Array.isArray(statements) || statements.length === 0)
    return 'Statements: at least one statement is required';
  if (statements.length > STATEMENTS_PER_BATCH)
    return `Statements: at most ${STATEMENTS_PER_BATCH} statements per batch, got ${statements.length}`;
  const inserts: Insert[] = [];
  for (const [index, entry] of statements.entries()) {
    const { Statement, Parameters, ...rest } = (entry ?? {}) as Record<string, unknown>;
    if (Object.keys(rest).length > 0)
      return `Statements[${index}]: this local stand-in does not run ${Object.keys(rest).join(', ')}`;
    const parsed = typeof Statement === 'string' ? parseInsert(Statement) : undefined;
    if (!parsed)
      return (
        `Statements[${index}]: this local stand-in (local/stack/dynalite-server.ts) runs only ` +
        `INSERT INTO "table" VALUE {'attribute': ?, ...} with every value a parameter`
      );
    const parameters = Parameters === undefined ? [] : Parameters;
    if (!Array.isArray(parameters) || parameters.length !== parsed.names.length)
      return `Statements[${index}]: ${parsed.names.length} parameters expected, got ${Array.isArray(parameters) ? parameters.length : 'none'}`;
    const item: Record<string, AttributeValue> = {};
    for (const [i, name] of parsed.names.entries()) {
      if (Object.hasOwn(item, name)) return `Statements[${index}]: attribute '${name}' given twice`;
      item[name] = parameters[i] as AttributeValue;
    }
    inserts.push({ table: parsed.table, item });
  }
  return inserts;
}

const INSERT = /^\s*INSERT\s+INTO\s+"([a-zA-Z0-9_.-]{3,255})"\s+VALUE\s+\{(.*)\}\s*;?\s*$/is;
/** One `'name' : ?` of the tuple (a quote inside a name doubled, as PartiQL writes it), and what follows it. */
const PAIR = /^\s*'((?:[^']|'')+)'\s*:\s*\?\s*(,|$)/s;

function parseInsert(statement: string): { table: string; names: string[] } | undefined {
  const match = INSERT.exec(statement);
  if (!match) return undefined;
  const names: string[] = [];
  let rest = match[2] as string;
  let more = true;
  while (more) {
    const pair = PAIR.exec(rest);
    if (!pair) return undefined;
    names.push((pair[1] as string).replaceAll("''", "'"));
    rest = rest.slice(pair[0].length);
    more = pair[2] === ',';
  }
  return rest.trim() === '' ? { table: match[1] as string, names } : undefined;
}

/** One statement: dynalite's PutItem, conditional on no item with its key; its outcome as BatchStatementResponse. */
function insert(store: Store, { table, item }: Insert): Promise<Record<string, unknown>> {
  const failed = (Code: string, Message: string) => ({ TableName: table, Error: { Code, Message } });
  return new Promise((resolve, reject) => {
    store.getTable(table, (tableError, description) => {
      if (tableError || !description) {
        if (tableError?.statusCode) resolve(failed('ResourceNotFound', messageOf(tableError)));
        else reject(tableError ?? new Error(`no description of table ${table}`));
        return;
      }
      const hashKey = description.KeySchema.find((key) => key.KeyType === 'HASH')?.AttributeName as string;
      let data: Record<string, unknown>;
      try {
        const { validations, putItemValidation } = dynalite();
        data = validations.checkTypes(
          {
            TableName: table,
            Item: item,
            ConditionExpression: 'attribute_not_exists(#key)',
            ExpressionAttributeNames: { '#key': hashKey },
          },
          putItemValidation.types,
        );
        validations.checkValidations(data, putItemValidation.types, putItemValidation.custom, store);
      } catch (error) {
        // dynalite's validation throws a plain TypeError on some malformed values (a null attribute): the item's
        // fault all the same, as DynamoDB would answer it.
        const apiError = error as Error & ApiError;
        resolve(failed('ValidationError', apiError.statusCode ? messageOf(apiError) : apiError.message));
        return;
      }
      dynalite().putItem(store, data, (error) => {
        if (!error) resolve({ TableName: table });
        else if (error.body?.__type?.endsWith('ConditionalCheckFailedException'))
          resolve(failed('DuplicateItem', 'Duplicate primary key exists in table'));
        else if (error.statusCode) resolve(failed('ValidationError', messageOf(error)));
        else reject(error);
      });
    });
  });
}

const messageOf = (error: ApiError) => error.body?.message ?? error.body?.Message ?? 'refused';

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    req.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length > MAX_REQUEST_BYTES) {
        req.destroy();
        reject(new Error('request body too large'));
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, status: number, data: unknown): void {
  const body = JSON.stringify(data);
  res.statusCode = status;
  res.setHeader('x-amzn-RequestId', randomUUID());
  res.setHeader('x-amz-crc32', String(crc32(body)));
  res.setHeader('Content-Type', 'application/x-amz-json-1.0');
  res.setHeader('Content-Length', Buffer.byteLength(body, 'utf8'));
  res.end(body);
}

/**
 * What answers on this port: this stand-in (an empty BatchExecuteStatement refused with its ValidationException),
 * another DynamoDB (a plain dynalite, say one a checkout before this file started: UnknownOperation), or nothing in
 * time (a busy machine can hold an answer for seconds: that is no reason to restart what may be this stand-in).
 */
export async function probeStandIn(
  port: number,
  timeoutMs = 2_000,
): Promise<'stand-in' | 'other' | 'no-answer'> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': TARGET },
      body: JSON.stringify({ Statements: [] }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await response.text();
    return response.status === 400 && body.includes('Statements: at least one statement')
      ? 'stand-in'
      : 'other';
  } catch {
    return 'no-answer';
  }
}

/** The command line: dynalite's own options. */
function main(): void {
  const { values } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '4567' },
      path: { type: 'string' },
      createTableMs: { type: 'string' },
      deleteTableMs: { type: 'string' },
      updateTableMs: { type: 'string' },
    },
  });
  const number = (value: string | undefined) => (value === undefined ? undefined : Number(value));
  const server = dynaliteServer({
    ...(values.path ? { path: values.path } : {}),
    ...definedOnly({
      createTableMs: number(values.createTableMs),
      deleteTableMs: number(values.deleteTableMs),
      updateTableMs: number(values.updateTableMs),
    }),
  });
  server.listen(Number(values.port), values.host, () => {
    process.stdout.write(
      `dynalite (with BatchExecuteStatement INSERT) listening at http://${values.host}:${values.port}\n`,
    );
  });
}

const definedOnly = <T extends Record<string, unknown>>(record: T) =>
  Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined)) as Partial<T>;

if (process.argv[1]?.endsWith('dynalite-server.ts')) main();
