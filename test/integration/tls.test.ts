/**
 * HTTPS: `tls: 'auto'` makes a self-signed certificate once and keeps it; the AWS SDK clients
 * trusting it get through, clients that do not are refused, plain HTTP to the TLS port gets
 * nothing, and the URLs the server hands out (HLS) are https.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import { KinesisVideoClient, ListStreamsCommand } from '@aws-sdk/client-kinesis-video';
import { GetHLSStreamingSessionURLCommand, KinesisVideoArchivedMediaClient } from '@aws-sdk/client-kinesis-video-archived-media';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startServer, type OpenKvsServer } from '../../lib/service/server.js';
import { credentials, tempDir } from '../helpers/server.js';

let server: OpenKvsServer;
const dataDir = tempDir();

const trusting = (certFile: string) => new NodeHttpHandler({ httpsAgent: new https.Agent({ ca: readFileSync(certFile) }) });

beforeAll(async () => {
  server = await startServer({ port: 0, dataDir, logLevel: 'silent', tls: 'auto' });
});
afterAll(() => server?.close());

it('serves the API over HTTPS to a client that trusts the generated certificate', async () => {
  expect(server.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  expect(server.tlsCertFile).toBe(`${dataDir}/tls/cert.pem`);
  const kv = new KinesisVideoClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: trusting(server.tlsCertFile!) });
  await expect(kv.send(new ListStreamsCommand({}))).resolves.toMatchObject({ StreamInfoList: [] });
  // Host names are verified against the certificate's names: localhost is one of them.
  const byName = new KinesisVideoClient({ endpoint: server.url.replace('127.0.0.1', 'localhost'), region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: trusting(server.tlsCertFile!) });
  await expect(byName.send(new ListStreamsCommand({}))).resolves.toBeDefined();
});

it('refuses a client that does not trust the certificate, and plain HTTP to the TLS port', async () => {
  const kv = new KinesisVideoClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1 });
  await expect(kv.send(new ListStreamsCommand({}))).rejects.toThrow(/self[- ]signed certificate/i);

  const port = Number(new URL(server.url).port);
  const answer = await new Promise<string>((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write('POST /listStreams HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}'));
    let got = '';
    socket.on('data', (d: Buffer) => (got += d.toString('latin1')));
    socket.on('error', () => resolve(got));
    socket.on('close', () => resolve(got));
  });
  expect(answer).not.toContain('StreamInfoList');
  expect(answer).not.toMatch(/^HTTP\/1\.1 200/);
});

it('hands out https playback URLs', async () => {
  const handler = trusting(server.tlsCertFile!);
  const kv = new KinesisVideoClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: handler });
  const { CreateStreamCommand } = await import('@aws-sdk/client-kinesis-video');
  await kv.send(new CreateStreamCommand({ StreamName: 'tls-hls', DataRetentionInHours: 1 }));
  const archived = new KinesisVideoArchivedMediaClient({ endpoint: server.url, region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: handler });
  // No media yet: the error proves the request went through TLS and was answered.
  await expect(archived.send(new GetHLSStreamingSessionURLCommand({ StreamName: 'tls-hls', PlaybackMode: 'LIVE' }))).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
});

it('keeps the certificate across restarts', async () => {
  const before = readFileSync(server.tlsCertFile!, 'utf8');
  await server.close();
  server = await startServer({ port: 0, dataDir, logLevel: 'silent', tls: 'auto' });
  expect(readFileSync(server.tlsCertFile!, 'utf8')).toBe(before);
});

it('refuses TLS files it cannot read, naming them', async () => {
  await expect(startServer({ port: 0, dataDir: tempDir(), logLevel: 'silent', tls: { cert: '/nonexistent/cert.pem', key: '/nonexistent/key.pem' } })).rejects.toThrow(
    /cannot read the TLS certificate \/nonexistent\/cert\.pem/,
  );
});

it('names the client in refusals, failed handshakes are logged, slow handshakes dropped', async () => {
  const { capturingLogger } = await import('../helpers/server.js');
  const { logger, logs } = capturingLogger();
  const dir = tempDir();
  const s = await startServer({ port: 0, dataDir: dir, logger, tls: 'auto', accessKeys: { [credentials.accessKeyId]: credentials.secretAccessKey }, limits: { headersTimeoutMs: 500 } });
  try {
    const handler = trusting(s.tlsCertFile!);
    // A wrong secret: refused, and the refusal names the client's address.
    const wrong = new KinesisVideoClient({ endpoint: s.url, region: 'us-east-1', credentials: { ...credentials, secretAccessKey: 'wrong' }, maxAttempts: 1, requestHandler: handler });
    await expect(wrong.send(new ListStreamsCommand({}))).rejects.toMatchObject({ name: 'InvalidSignatureException' });
    expect(logs.find((l) => l.code === 'InvalidSignatureException')).toMatchObject({ remote: '127.0.0.1' });
    const right = new KinesisVideoClient({ endpoint: s.url, region: 'us-east-1', credentials, maxAttempts: 1, requestHandler: handler });
    await expect(right.send(new ListStreamsCommand({}))).resolves.toMatchObject({ StreamInfoList: [] });

    const port = Number(new URL(s.url).port);
    const closedAfter = (send?: string) =>
      new Promise<number>((resolve) => {
        const t0 = Date.now();
        const socket = net.connect(port, '127.0.0.1', () => send && socket.write(send));
        socket.on('error', () => {});
        socket.on('close', () => resolve(Date.now() - t0));
      });
    // Plain HTTP to the TLS port: the handshake fails and is logged.
    await closedAfter('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    await expect.poll(() => logs.some((l) => l.msg === 'TLS handshake failed' && l.remote === '127.0.0.1')).toBe(true);
    // A connection that never starts its handshake is closed after the headers timeout.
    expect(await closedAfter()).toBeLessThan(5_000);
  } finally {
    await s.close();
  }
});
