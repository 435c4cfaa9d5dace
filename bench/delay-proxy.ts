// A TCP proxy on 127.0.0.1 that adds a round trip to every request: what the server sends back is held for
// `delayMs` before the client sees it (the client's bytes go through at once), so a request/response
// exchange takes `delayMs` longer, and requests in flight at once overlap as they would on a real network.
// It also counts the requests it carries, per protocol:
//   http     request lines (one per request; the SDKs' keep-alive agents do not pipeline)
//   postgres Sync and simple Query messages: one round trip each (extended protocol: Parse/Bind/Execute/Sync)
//   kafka    requests, and Produce requests (API key 0) among them
import { syncBuiltinESMExports } from 'node:module';
import net, { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyProtocol = 'http' | 'postgres' | 'kafka';

/** One HTTP request through a proxy: when it was sent, answered by the server, and seen by the client. */
export interface TracedRequest {
  proxy: string;
  /** X-Amz-Target (DynamoDB) or the request line's path. */
  operation: string;
  sent: number;
  served?: number;
  delivered?: number;
  /** 1 + the deepest request delivered before this one was sent: its place on the longest chain. */
  depth: number;
}

/**
 * The HTTP requests of one or more proxies, for the critical path of a batch: a request sent after another
 * one's answer reached the client may depend on it, so the longest such chain (`depth`) is the number of
 * sequential round trips; requests in flight together (batched writes in parallel) share one.
 */
export class RoundTripTrace {
  requests: TracedRequest[] = [];
  private deepestDelivered = 0;

  start(proxy: string, operation: string): TracedRequest {
    const request = { proxy, operation, sent: performance.now(), depth: this.deepestDelivered + 1 };
    this.requests.push(request);
    return request;
  }

  delivered(request: TracedRequest): void {
    request.delivered = performance.now();
    this.deepestDelivered = Math.max(this.deepestDelivered, request.depth);
  }

  /** Starts a new batch: what follows does not depend on what came before. */
  reset(): TracedRequest[] {
    const previous = this.requests;
    this.requests = [];
    this.deepestDelivered = 0;
    return previous;
  }
}

export interface DelayProxy {
  port: number;
  /** Requests carried so far (see the protocols above). */
  requests(): number;
  /** Kafka Produce requests carried so far (0 for other protocols). */
  produces(): number;
  close(): Promise<void>;
}

const REQUEST_LINE = /^(GET|POST|PUT|DELETE|HEAD|PATCH|OPTIONS) \S+ HTTP\/1\.1\r\n/;
/** PostgreSQL's SSLRequest and GSSENCRequest codes: another untyped (startup) message follows them. */
const PG_NEGOTIATION = new Set([80877103, 80877104]);

/** Counts the requests in one connection's client-to-server byte stream. */
function requestCounter(protocol: ProxyProtocol, count: (produce: boolean) => void): (chunk: Buffer) => void {
  if (protocol === 'http') {
    return (chunk) => {
      if (REQUEST_LINE.test(chunk.subarray(0, 64).toString('latin1'))) count(false);
    };
  }
  // Length-framed messages: postgres [type(1)] length(4, includes itself) body; kafka size(4) body. Only a
  // frame's header is kept; its body is skipped as it passes. (Concatenating the chunks of a 1 MB produce to
  // count it cost the handler's process, which hosts the proxy, up to ~10 ms of CPU a batch.)
  let untyped = protocol === 'postgres'; // the startup message has no type byte
  const headerLength = () => (protocol === 'kafka' ? 6 : untyped ? 8 : 5);
  let header: Buffer = Buffer.alloc(0);
  let skip = 0; // bytes of the current frame still to pass
  return (chunk) => {
    let at = 0;
    while (at < chunk.length) {
      if (skip > 0) {
        const passed = Math.min(skip, chunk.length - at);
        skip -= passed;
        at += passed;
        continue;
      }
      const wanted = headerLength();
      const taken = Math.min(wanted - header.length, chunk.length - at);
      header = Buffer.concat([header, chunk.subarray(at, at + taken)]);
      at += taken;
      if (header.length < wanted) return;
      let frameLength: number;
      if (protocol === 'kafka') {
        frameLength = 4 + header.readInt32BE(0);
        count(header.readInt16BE(4) === 0);
      } else if (untyped) {
        frameLength = header.readInt32BE(0);
        untyped = PG_NEGOTIATION.has(header.readInt32BE(4));
      } else {
        frameLength = 1 + header.readInt32BE(1);
        const type = String.fromCharCode(header[0] as number);
        if (type === 'S' || type === 'Q') count(false);
      }
      skip = Math.max(0, frameLength - wanted);
      header = Buffer.alloc(0);
    }
  };
}

export async function startDelayProxy(options: {
  target: { host: string; port: number };
  delayMs: number;
  protocol: ProxyProtocol;
  /** HTTP only: records every request's round trip (bench:latency's critical path). */
  trace?: { name: string; into: RoundTripTrace };
}): Promise<DelayProxy> {
  let requests = 0;
  let produces = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(options.target.port, options.target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    const counter = requestCounter(options.protocol, (produce) => {
      requests++;
      if (produce) produces++;
    });
    // The request this connection carries (HTTP/1.1 keep-alive: one at a time), while traced.
    let traced: TracedRequest | undefined;
    client.on('data', (chunk: Buffer) => {
      counter(chunk);
      if (options.trace && REQUEST_LINE.test(chunk.subarray(0, 64).toString('latin1'))) {
        const head = chunk.subarray(0, 2048).toString('latin1');
        const target = /\r\nx-amz-target: *([^\r]+)/i.exec(head)?.[1];
        traced = options.trace.into.start(options.trace.name, target ?? head.split(' ')[1] ?? '?');
      }
      upstream.write(chunk);
    });
    // Timers of one duration fire in the order they were set, so the stream keeps its order.
    upstream.on('data', (chunk: Buffer) => {
      const answered = traced;
      traced = undefined;
      if (answered) answered.served = performance.now();
      setTimeout(() => {
        if (answered) options.trace?.into.delivered(answered);
        if (!client.destroyed) client.write(chunk);
      }, options.delayMs);
    });
    client.on('end', () => upstream.end());
    upstream.on('end', () => setTimeout(() => client.end(), options.delayMs));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('delay proxy has no TCP port');
  return {
    port: address.port,
    requests: () => requests,
    produces: () => produces,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

/**
 * Sends this process's TCP connections to `from` (host:port) to 127.0.0.1:`toPort` instead. For Kafka: a
 * client bootstraps through the proxy but then connects to the address the broker advertises, which is the
 * broker itself; this sends those connections through the proxy too.
 */
export function redirectConnections(from: { host: string; port: number }, toPort: number): void {
  const original = net.createConnection;
  const redirected = ((...args: Parameters<typeof net.createConnection>) => {
    const [first] = args;
    if (typeof first === 'object' && first !== null && 'port' in first) {
      const target = first as net.TcpNetConnectOpts;
      if (Number(target.port) === from.port && (target.host ?? 'localhost') === from.host) {
        return original({ ...target, host: '127.0.0.1', port: toPort }, ...(args.slice(1) as []));
      }
    }
    return original(...args);
  }) as typeof net.createConnection;
  net.createConnection = redirected;
  net.connect = redirected;
  // ESM `import { createConnection } from 'node:net'` (the Kafka client's) sees the patched function.
  syncBuiltinESMExports();
}
