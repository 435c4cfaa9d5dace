import { createServer as createHttpServer } from 'node:http';
import { type AddressInfo, connect, createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { type DelayProxy, type ProxyProtocol, startDelayProxy } from '../../../bench/delay-proxy';

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A TCP server that answers every chunk with "ok". */
async function echo(): Promise<number> {
  const server: Server = createServer((socket) => socket.on('data', () => socket.write('ok')));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => server.close(resolve)));
  return (server.address() as AddressInfo).port;
}

async function proxyTo(port: number, protocol: ProxyProtocol, delayMs = 0): Promise<DelayProxy> {
  const proxy = await startDelayProxy({ target: { host: '127.0.0.1', port }, delayMs, protocol });
  closers.push(() => proxy.close());
  return proxy;
}

/** Writes the chunks one by one through the proxy, then waits for the answers to come back. */
async function send(port: number, chunks: Buffer[]): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  let received = '';
  socket.on('data', (data: Buffer) => {
    received += data.toString();
  });
  for (const chunk of chunks) {
    socket.write(chunk);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  await new Promise((resolve) => setTimeout(resolve, 20));
  socket.destroy();
  return received;
}

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const kafkaRequest = (apiKey: number) => {
  const body = Buffer.alloc(10);
  body.writeInt16BE(apiKey, 0);
  return Buffer.concat([int32(body.length), body]);
};
const pgMessage = (type: string, body = Buffer.alloc(0)) =>
  Buffer.concat([Buffer.from(type), int32(4 + body.length), body]);

describe('the delaying proxy of bench:latency', () => {
  it('counts Kafka requests and Produce requests, also when a frame spans chunks', async () => {
    const proxy = await proxyTo(await echo(), 'kafka');
    const stream = Buffer.concat([kafkaRequest(3), kafkaRequest(0), kafkaRequest(0), kafkaRequest(18)]);
    await send(proxy.port, [stream.subarray(0, 7), stream.subarray(7, 30), stream.subarray(30)]);
    expect(proxy.requests()).toBe(4);
    expect(proxy.produces()).toBe(2);
  });

  it('counts a large Kafka frame once, whatever the chunks, and the frame after it from a split header', async () => {
    const proxy = await proxyTo(await echo(), 'kafka');
    const produce = Buffer.alloc(1_000_000);
    produce.writeInt16BE(0, 0);
    const stream = Buffer.concat([int32(produce.length), produce, kafkaRequest(3), kafkaRequest(0)]);
    const chunks: Buffer[] = [];
    for (let at = 0; at < 1_000_004; at += 65_536)
      chunks.push(stream.subarray(at, Math.min(at + 65_536, 1_000_004)));
    // The next frame's header one byte at a time, then the rest.
    for (let at = 1_000_004; at < 1_000_010; at++) chunks.push(stream.subarray(at, at + 1));
    chunks.push(stream.subarray(1_000_010));
    await send(proxy.port, chunks);
    expect(proxy.requests()).toBe(3);
    expect(proxy.produces()).toBe(2);
  });

  it('counts PostgreSQL round trips (Sync, Query) after the SSL request and the startup message', async () => {
    const proxy = await proxyTo(await echo(), 'postgres');
    const ssl = Buffer.concat([int32(8), int32(80877103)]);
    const startup = Buffer.concat([int32(9), int32(196608), Buffer.from([0])]);
    const extended = Buffer.concat([
      pgMessage('P', Buffer.from('x')),
      pgMessage('B'),
      pgMessage('E'),
      pgMessage('S'),
    ]);
    await send(proxy.port, [
      ssl,
      startup,
      extended,
      pgMessage('Q', Buffer.from('SELECT 1\0')),
      pgMessage('X'),
    ]);
    expect(proxy.requests()).toBe(2);
  });

  it('counts HTTP requests and passes the answers through', async () => {
    const server = createHttpServer((_request, response) => response.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise((resolve) => server.close(resolve)));
    const proxy = await proxyTo((server.address() as AddressInfo).port, 'http', 30);
    for (let i = 0; i < 2; i++) {
      const body = await (
        await fetch(`http://127.0.0.1:${proxy.port}/`, { method: 'POST', body: '{"a":1}' })
      ).text();
      expect(body).toBe('ok');
    }
    expect(proxy.requests()).toBe(2);
  });
});
