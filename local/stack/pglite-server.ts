/**
 * PGlite on a TCP port for the local stack, safe for several connections at once.
 *
 * PGlite has one backend. pglite-socket (the server this replaces) let other connections' messages in between any
 * two messages of a connection that was not inside BEGIN ... COMMIT, and shared named prepared statements between
 * connections: a second pg client preparing "audit_append" failed with "already exists", and a pipelined implicit
 * transaction (Bind/Execute per chunk, one Sync) could have another connection's statements run inside it. Here a
 * connection holds the backend from its first message until PostgreSQL reports it idle outside any transaction
 * (ReadyForQuery 'I'), and every named statement and portal is renamed per connection.
 *
 *   node --import tsx local/stack/pglite-server.ts --db=DIR --host=127.0.0.1 --port=15432
 */

import { createServer, type Server, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import { PGlite } from '@electric-sql/pglite';

const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 196608;
/** PostgreSQL refuses a startup packet over 10,000 bytes (MAX_STARTUP_PACKET_LENGTH); so do we. */
const MAX_STARTUP_LENGTH = 10_000;
/** Far above any statement or batch this project sends; a length beyond it is a broken or hostile client. */
export const DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/**
 * A client idle inside BEGIN holds the one backend and every other connection waits; PostgreSQL would end it
 * with idle_in_transaction_session_timeout. Longer than any pause a function or the audit CLI makes mid-transaction.
 */
export const DEFAULT_IDLE_IN_TRANSACTION_MS = 60_000;
/** Executing a portal nobody created fails, which aborts an implicit transaction left open by a lost client. */
const ABORT_OPEN_WORK = Buffer.concat([
  frontend('E', cstring('pglite_server_abort'), int32(0)),
  frontend('S'),
]);

export interface PgliteServerOptions {
  dataDir: string;
  host: string;
  port: number;
  log?: (line: string) => void;
  /** Largest frontend message accepted (bytes, length field included); longer ones close the connection. */
  maxMessageBytes?: number;
  /** A connection idle inside a transaction this long is ended (its work rolled back) so others get the backend. */
  idleInTransactionMs?: number;
}

export interface ConnectionLimits {
  maxMessageBytes: number;
  idleInTransactionMs: number;
}

/** Hands PGlite's one backend to one connection at a time, for whole transactions. */
export class PgliteServer {
  private readonly server: Server;
  private owner: Connection | undefined;
  private readonly waiting: Array<() => void> = [];
  private readonly connections = new Set<Connection>();
  private nextId = 1;

  private constructor(
    readonly db: PGlite,
    private readonly log: (line: string) => void,
    limits: ConnectionLimits,
  ) {
    this.server = createServer((socket) => {
      const connection = new Connection(this, this.nextId++, socket, log, limits);
      this.connections.add(connection);
      socket.once('close', () => this.connections.delete(connection));
    });
  }

  static async start(options: PgliteServerOptions): Promise<PgliteServer> {
    const db = await PGlite.create(options.dataDir);
    const server = new PgliteServer(db, options.log ?? (() => {}), {
      maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
      idleInTransactionMs: options.idleInTransactionMs ?? DEFAULT_IDLE_IN_TRANSACTION_MS,
    });
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.server.listen(options.port, options.host, () => resolve());
    });
    server.log(`PGlite ${options.dataDir} listening on ${options.host}:${server.port}`);
    return server;
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  async acquire(connection: Connection): Promise<void> {
    while (this.owner !== undefined && this.owner !== connection) {
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    this.owner = connection;
  }

  release(connection: Connection): void {
    if (this.owner !== connection) return;
    this.owner = undefined;
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** Runs protocol messages on the backend; the caller must hold it. */
  async exec(messages: Buffer): Promise<Buffer> {
    const reply = await this.db.runExclusive(() => this.db.execProtocolRaw(messages));
    return Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength);
  }

  async stop(): Promise<void> {
    // close() waits for every connection to end; idle pooled clients would hold the shutdown until SIGKILL.
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const connections = [...this.connections];
    for (const connection of connections) connection.destroy();
    await closed;
    // Their rollbacks run on the backend, so they finish before it closes.
    await Promise.all(connections.map((connection) => connection.settled()));
    await this.db.close();
  }
}

class Connection {
  private buffer = Buffer.alloc(0);
  private started = false;
  private closed = false;
  private work: Promise<void> = Promise.resolve();
  private readonly prefix: string;
  private readonly statements = new Set<string>();
  private idleTimer: NodeJS.Timeout | undefined;
  private rejected = false;

  constructor(
    private readonly server: PgliteServer,
    id: number,
    private readonly socket: Socket,
    private readonly log: (line: string) => void,
    private readonly limits: ConnectionLimits,
  ) {
    this.prefix = `c${id}_`;
    socket.setNoDelay(true);
    socket.on('data', (data) => {
      if (this.rejected) return;
      this.stopIdleTimer();
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, data]) : data;
      this.schedule(() => this.drain());
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.stopIdleTimer();
      this.schedule(() => this.close());
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  /** Resolves once everything scheduled so far (its close included, once the socket is gone) has run. */
  settled(): Promise<void> {
    return this.work;
  }

  private schedule(step: () => Promise<void>): void {
    this.work = this.work.then(step).catch((error: unknown) => {
      if (error instanceof ProtocolViolation) {
        this.log(`connection ${this.prefix}: closed: ${error.message}`);
        this.fatal('08P01', error.message);
      } else {
        this.log(`connection ${this.prefix}: ${(error as Error).stack ?? String(error)}`);
        this.socket.destroy();
      }
    });
  }

  /** Tells the client why (an ErrorResponse, as PostgreSQL sends before closing) and closes. */
  private fatal(code: string, message: string): void {
    this.rejected = true;
    this.buffer = Buffer.alloc(0);
    if (this.socket.destroyed) return;
    const fields = Buffer.concat([
      Buffer.from('SFATAL\0', 'latin1'),
      Buffer.from('VFATAL\0', 'latin1'),
      Buffer.from(`C${code}\0`, 'latin1'),
      cstring(`M${message}`),
      Buffer.from([0]),
    ]);
    this.socket.end(frontend('E', fields));
    // end() waits for the client; a client that never reads must not keep the connection.
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private startIdleTimer(): void {
    this.stopIdleTimer();
    this.idleTimer = setTimeout(() => {
      const seconds = this.limits.idleInTransactionMs / 1000;
      this.log(`connection ${this.prefix}: closed: idle in a transaction for ${seconds} s, rolled back`);
      this.fatal('25P03', `terminating connection due to idle-in-transaction timeout (${seconds} s)`);
    }, this.limits.idleInTransactionMs);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  /** Everything complete in the buffer goes to the backend in one call. */
  private async drain(): Promise<void> {
    if (this.closed) return;
    const messages: Buffer[] = [];
    let terminate = false;
    while (!terminate) {
      const message = this.started ? this.nextMessage() : this.nextStartupMessage();
      if (!message) break;
      if (message === 'handled') continue;
      if (message[0] === 0x58 /* X: Terminate */) terminate = true;
      else messages.push(this.renamed(message));
    }
    if (messages.length > 0) {
      await this.server.acquire(this);
      const reply = await this.server.exec(Buffer.concat(messages));
      if (reply.length > 0 && !this.socket.destroyed) this.socket.write(reply);
      const status = readyForQueryStatus(reply);
      // Idle outside any transaction: the next message from anybody may come in between.
      if (status === 'I') this.server.release(this);
      // Idle inside one ('T', or 'E' failed): it holds the backend until it speaks again, within the limit.
      else if (status !== undefined && this.buffer.length === 0) this.startIdleTimer();
    }
    if (terminate) this.socket.end();
  }

  private nextStartupMessage(): Buffer | 'handled' | undefined {
    if (this.buffer.length < 8) return undefined;
    const length = this.buffer.readInt32BE(0);
    // Anything shorter than its own header would never leave the buffer (a loop forever), as would a negative one.
    if (length < 8 || length > MAX_STARTUP_LENGTH) {
      throw new ProtocolViolation(
        `invalid startup packet length ${length} (8 to ${MAX_STARTUP_LENGTH} bytes)`,
      );
    }
    if (this.buffer.length < length) return undefined;
    const code = this.buffer.readInt32BE(4);
    const message = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
      this.socket.write('N');
      return 'handled';
    }
    if (code === CANCEL_REQUEST) {
      this.socket.destroy();
      return 'handled';
    }
    if (code !== PROTOCOL_3) throw new Error(`unsupported protocol ${code}`);
    this.started = true;
    return message;
  }

  private nextMessage(): Buffer | undefined {
    if (this.buffer.length < 5) return undefined;
    const declared = this.buffer.readInt32BE(1);
    if (declared < 4 || declared > this.limits.maxMessageBytes) {
      const type = JSON.stringify(String.fromCharCode(this.buffer[0] as number));
      throw new ProtocolViolation(
        `invalid length ${declared} of a ${type} message (4 to ${this.limits.maxMessageBytes} bytes)`,
      );
    }
    const length = 1 + declared;
    if (this.buffer.length < length) return undefined;
    const message = this.buffer.subarray(0, length);
    this.buffer = this.buffer.subarray(length);
    return message;
  }

  /** Named statements and portals get this connection's prefix: the backend's namespace is shared. */
  private renamed(message: Buffer): Buffer {
    const type = String.fromCharCode(message[0] as number);
    const body = message.subarray(5);
    switch (type) {
      case 'P': {
        const [name, rest] = splitCstring(body);
        if (name) this.statements.add(name);
        return frontend('P', cstring(this.name(name)), rest);
      }
      case 'B': {
        const [portal, afterPortal] = splitCstring(body);
        const [statement, rest] = splitCstring(afterPortal);
        return frontend('B', cstring(this.name(portal)), cstring(this.name(statement)), rest);
      }
      case 'E': {
        const [portal, rest] = splitCstring(body);
        return frontend('E', cstring(this.name(portal)), rest);
      }
      case 'D':
      case 'C': {
        const [name, rest] = splitCstring(body.subarray(1));
        if (type === 'C' && body[0] === 0x53 /* S */) this.statements.delete(name);
        return frontend(type, body.subarray(0, 1), cstring(this.name(name)), rest);
      }
      default:
        return message;
    }
  }

  private name(name: string): string {
    return name === '' ? '' : this.prefix + name;
  }

  /** A lost client's open work is rolled back, its statements dropped, and the backend handed on. */
  private async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (!this.started) return;
    await this.server.acquire(this);
    try {
      await this.server.exec(ABORT_OPEN_WORK);
      if (this.server.db.isInTransaction()) await this.server.db.exec('ROLLBACK');
      for (const name of this.statements) {
        await this.server.db.exec(`DEALLOCATE "${(this.prefix + name).replaceAll('"', '""')}"`);
      }
    } finally {
      this.server.release(this);
    }
  }
}

/** A client broke the protocol: it is told why and disconnected; the server goes on. */
class ProtocolViolation extends Error {
  override name = 'ProtocolViolation';
}

/** The status of the last message of a reply if it is a ReadyForQuery ('I', 'T' or 'E'). */
function readyForQueryStatus(reply: Buffer): string | undefined {
  let at = 0;
  let status: string | undefined;
  while (at + 5 <= reply.length) {
    const type = reply[at];
    const length = 1 + reply.readInt32BE(at + 1);
    status = type === 0x5a /* Z */ ? String.fromCharCode(reply[at + 5] as number) : undefined;
    at += length;
  }
  return status;
}

function splitCstring(buffer: Buffer): [string, Buffer] {
  const end = buffer.indexOf(0);
  if (end < 0) throw new Error('malformed message: a name is not terminated');
  return [buffer.toString('utf8', 0, end), buffer.subarray(end + 1)];
}

function cstring(text: string): Buffer {
  return Buffer.from(`${text}\0`, 'utf8');
}

function int32(value: number): Buffer {
  const buffer = Buffer.alloc(4);
  buffer.writeInt32BE(value);
  return buffer;
}

function frontend(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const header = Buffer.alloc(5);
  header.write(type, 0, 'latin1');
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      db: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string' },
      'max-message-bytes': { type: 'string' },
      'idle-in-transaction-ms': { type: 'string' },
    },
  });
  if (!values.db || !values.port)
    throw new Error(
      'usage: pglite-server.ts --db=DIR --port=PORT [--host=HOST] [--max-message-bytes=N] [--idle-in-transaction-ms=N]',
    );
  const positive = (flag: string, value: string | undefined): number | undefined => {
    if (value === undefined) return undefined;
    const number = Number(value);
    if (!Number.isInteger(number) || number <= 0)
      throw new Error(`--${flag} must be a positive integer, got ${value}`);
    return number;
  };
  const server = await PgliteServer.start({
    dataDir: values.db,
    host: values.host,
    port: Number(values.port),
    maxMessageBytes: positive('max-message-bytes', values['max-message-bytes']),
    idleInTransactionMs: positive('idle-in-transaction-ms', values['idle-in-transaction-ms']),
    log: (line) => process.stdout.write(`${line}\n`),
  });
  const stop = () => {
    server.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (process.argv[1]?.endsWith('pglite-server.ts')) {
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  });
}
