// A TCP proxy on 127.0.0.1 that adds a round trip to every request: what the server sends back is held for
// `delayMs` before the client sees it (the client's bytes go through at once), so a request/response
// exchange takes `delayMs` longer, and requests in flight at once overlap as they would on a real network.
// It also counts the requests it carries, per protocol:
//   http     request lines (one per request; the SDKs' keep-alive agents do not pipeline)
//   postgres Sync and simple Query messages: one round trip each (extended protocol: Parse/Bind/Execute/Sync)
//   kafka    requests, and Produce requests (API key 0) among them

import { syncBuiltinESMExports } from 'node:module';
// A TCP proxy on 127.0.0.1 that adds a round trip to every request: what the server sends back is held for
// `delayMs` before the client sees it (the client's bytes go through at once), so a request/response
// exchange takes `delayMs` longer, and requests in flight at once overlap as they would on a real network.
// It also counts the requests it carries, per protocol:
//   http     request lines (one per request; the SDKs' keep-alive agents do not pipeline)
//   postgres Sync and simple Query messages: one round trip each (extended protocol: Parse/Bind/Execute/Sync)
//   kafka    requests, and Produce requests (API key 0) among them
import net, { connect, createServer, type Server, type Socket } from 'node:net';

export type ProxyProtocol = 'http' | 'postgres' | 'kafka';

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
  // Length-framed messages: postgres [type(1)] length(4, includes itself) body; kafka size(4) body.
  let pending: Buffer = Buffer.alloc(0);
  let untyped = protocol === 'postgres'; // the startup message has no type byte
  return (chunk) => {
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    for (;;) {
      if (protocol === 'kafka') {
        if (pending.length < 6) return;
        const size = pending.readInt32BE(0);
        if (pending.length < 4 + size) return;
        count(pending.readInt16BE(4) === 0);
        pending = pending.subarray(4 + size);
        continue;
      }
      if (untyped) {
        if (pending.length < 8) return;
        const length = pending.readInt32BE(0);
        if (pending.length < length) return;
        untyped = PG_NEGOTIATION.has(pending.readInt32BE(4));
        pending = pending.subarray(length);
        continue;
      }
      if (pending.length < 5) return;
      const length = pending.readInt32BE(1);
      if (pending.length < 1 + length) return;
      const type = String.fromCharCode(pending[0] as number);
      if (type === 'S' || type === 'Q') count(false);
      pending = pending.subarray(1 + length);
    }
  };
}

export async function startDelayProxy(options: {
  target: { host: string; port: number };
  delayMs: number;
  protocol: ProxyProtocol;
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
    client.on('data', (chunk: Buffer) => {
      counter(chunk);
      upstream.write(chunk);
    });
    // Timers of one duration fire in the order they were set, so the stream keeps its order.
    upstream.on('data', (chunk: Buffer) => {
      setTimeout(() => {
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
