// A client that sends `Connection: close` on a streamed request gets the socket closed
// after the stream; the SSE headers used to force keep-alive and leave it open.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { startServer, type TestServer } from '../e2e/server.js';

let server: TestServer | null = null;
after(async () => server?.close());

function rawStream(url: string, connection: string): Promise<{ head: string; closed: boolean }> {
  const { hostname, port } = new URL(url);
  const body = JSON.stringify({ prompt: 'hi', max_tokens: 3, stream: true });
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname);
    let data = '';
    let timer: NodeJS.Timeout | null = null;
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      data += d;
      // Once the stream is over, give the server a moment to close the socket itself.
      if (data.includes('[DONE]') && !timer) timer = setTimeout(() => (sock.destroy(), resolve({ head: data, closed: false })), 500);
    });
    sock.on('end', () => {
      if (timer) clearTimeout(timer);
      resolve({ head: data, closed: true });
    });
    sock.on('error', reject);
    sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: ${connection}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  });
}

test('Connection: close on a streamed request closes the socket after [DONE]', async () => {
  server = await startServer({ parallel: 1, ctxSize: 64 });
  const closed = await rawStream(server.url, 'close');
  assert.match(closed.head, /\r\nconnection: close\r\n/i);
  assert.equal(closed.closed, true);
  const kept = await rawStream(server.url, 'keep-alive');
  assert.match(kept.head, /\r\nconnection: keep-alive\r\n/i);
  assert.equal(kept.closed, false);
});
