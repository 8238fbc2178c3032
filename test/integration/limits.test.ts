/**
 * Request limits: per-stream request rates (ClientLimitExceededException), request size, and
 * connections that send their headers or body too slowly (slow-loris) are closed while the
 * server keeps answering everyone else.
 */
import net from 'node:net';
import { DescribeStreamCommand } from '@aws-sdk/client-kinesis-video';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { putMedia } from '../../lib/producer/put-media-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({ limits: { streamRequestsPerSecond: 2, streamRequestBurst: 3, headersTimeoutMs: 1_500, requestBodyTimeoutMs: 1_000 } });
  await t.createStream('busy');
  await t.createStream('quiet');
});
afterAll(() => t?.close());

it('refuses requests beyond the per-stream rate with ClientLimitExceededException, per stream and operation', async () => {
  const describe = (name: string) => t.kv.send(new DescribeStreamCommand({ StreamName: name }));
  for (let i = 0; i < 3; i++) await describe('busy');
  await expect(describe('busy')).rejects.toMatchObject({ name: 'ClientLimitExceededException', $metadata: { httpStatusCode: 400 }, message: expect.stringMatching(/limit is 2 per second/) });
  await expect(describe('quiet')).resolves.toBeDefined();
  for (let i = 0; i < 3; i++) await putMedia({ endpoint: t.url, streamName: 'busy' }).end().catch(() => []);
  const fourth = putMedia({ endpoint: t.url, streamName: 'busy' });
  expect(await fourth.status).toBe(400);
  fourth.destroy();
  await new Promise((r) => setTimeout(r, 600)); // one token back
  await expect(describe('busy')).resolves.toBeDefined();
});

it('refuses a JSON body over 1 MiB', async () => {
  const res = await fetch(`${t.url}/describeStream`, { method: 'POST', body: JSON.stringify({ StreamName: 'x'.repeat(1_100_000) }) });
  expect(res.status).toBe(400);
  expect(await res.text()).toMatch(/larger than 1 MiB/);
});

/** Opens a raw connection, sends `first`, then `drip` bytes one at a time every 300 ms; resolves with ms until the server closes it. */
function slowClient(first: string, drip: string): Promise<number> {
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect(t.server.port, '127.0.0.1', () => socket.write(first));
    let i = 0;
    const timer = setInterval(() => {
      if (i < drip.length && !socket.destroyed) socket.write(drip[i++]!);
    }, 300);
    const done = () => {
      clearInterval(timer);
      resolve(Date.now() - started);
    };
    socket.on('close', done);
    socket.on('error', () => {});
    socket.resume();
  });
}

it('closes a connection whose headers trickle in, and one whose body does, while others are served', async () => {
  const headers = slowClient('POST /listStreams HTTP/1.1\r\nHost: x\r\n', 'X-Slow: '.padEnd(60, 'a'));
  const body = slowClient('POST /listStreams HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{', ' '.repeat(60));
  // Meanwhile the server answers others.
  await expect(t.kv.send(new DescribeStreamCommand({ StreamName: 'quiet' }))).resolves.toBeDefined();
  const [headersClosedMs, bodyClosedMs] = await Promise.all([headers, body]);
  // 60 bytes at 300 ms would take 18 s; the server cuts them after its 1.5 s / 1 s limits (checked every second).
  expect(headersClosedMs).toBeLessThan(5_000);
  expect(bodyClosedMs).toBeLessThan(5_000);
});
