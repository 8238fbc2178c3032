/**
 * Trusting a CA on the producer and consumer side of an https openkvs server (`tls: 'auto'`):
 * kvssink's `ca-cert` property and the env vars it reads, the Node Pipeline, the consumer and
 * ensureStream. Without the CA, or for a certificate naming another host, each refuses at once
 * with an error that says so, and nothing is uploaded.
 */
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { KinesisVideoArchivedMediaClient } from '@aws-sdk/client-kinesis-video-archived-media';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRange } from '../../lib/consumer/range-reader.js';
import { ConsumerError, Pipeline, PipelineError, StreamConfigError, ensureStream } from '../../lib/index.js';
import { awsEnv, gstLaunch } from '../helpers/gst.js';
import { credentials, listAllFragments, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

const CLIP = (frames: number) =>
  `videotestsrc num-buffers=${frames} ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ` +
  'x264enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h264parse';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ tls: 'auto' });
});
afterAll(() => t?.close());

async function fragmentsOf(stream: string, archived = t.archived): Promise<number> {
  const fragments = await listAllFragments(archived, stream).catch((e: { name?: string }) => {
    if (e.name === 'ResourceNotFoundException') return [];
    throw e;
  });
  return fragments.length;
}

describe('kvssink over https', () => {
  const upload = (stream: string, extra: string, env: Record<string, string> = {}) =>
    gstLaunch(`${CLIP(60)} ! kvssink stream-name=${stream} endpoint=${t.url} ${extra}`, { ...awsEnv, ...env });

  it('uploads when ca-cert names the server CA, verifying the host name', async () => {
    const run = upload('tls-prop', `ca-cert=${t.server.tlsCertFile}`);
    expect(await run.exited, run.output()).toBe(0);
    expect(run.messages.filter((m) => m.name === 'kvssink-fragment-ack' && m.fields['event-type'] === 'PERSISTED').length).toBe(2);
    expect(await fragmentsOf('tls-prop')).toBe(2);
  });

  it('reads the CA from AWS_CA_BUNDLE or AWS_KVS_CACERT_PATH when the property is not set', async () => {
    for (const [stream, variable] of [['tls-bundle', 'AWS_CA_BUNDLE'], ['tls-kvs-path', 'AWS_KVS_CACERT_PATH']] as const) {
      const run = upload(stream, '', { [variable]: t.server.tlsCertFile! });
      expect(await run.exited, run.output()).toBe(0);
      expect(await fragmentsOf(stream)).toBe(2);
    }
  });

  it('accepts a directory of hashed CA certificates', async () => {
    const dir = tempDir();
    execFileSync('cp', [t.server.tlsCertFile!, path.join(dir, 'openkvs.pem')]);
    execFileSync('openssl', ['rehash', dir]);
    const run = upload('tls-dir', `ca-cert=${dir}`);
    expect(await run.exited, run.output()).toBe(0);
    expect(await fragmentsOf('tls-dir')).toBe(2);
  });

  it('refuses an untrusted certificate at once, as a fatal error naming the fix, and uploads nothing', async () => {
    // A live source would run forever if kvssink retried; the error must end the pipeline.
    const run = gstLaunch(
      `videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h264parse ! kvssink stream-name=tls-untrusted endpoint=${t.url}`,
      { ...awsEnv, AWS_CA_BUNDLE: '', AWS_KVS_CACERT_PATH: '', KVSSINK_CA_CERT_PATH: '' },
    );
    const code = await run.exited;
    expect(code).not.toBe(0);
    expect(run.output()).toMatch(/certificate of https:\/\/127\.0\.0\.1:\d+ is not trusted/);
    expect(run.output()).toMatch(/ca-cert/);
    expect(await fragmentsOf('tls-untrusted')).toBe(0);
  });

  it('names a CA file that cannot be used', async () => {
    const run = upload('tls-missing-ca', 'ca-cert=/nonexistent/ca.pem');
    expect(await run.exited).not.toBe(0);
    expect(run.output()).toMatch(/\/nonexistent\/ca\.pem.*cannot be used|cannot be used.*\/nonexistent\/ca\.pem/);
  });

  it('refuses a trusted certificate issued for another host name', async () => {
    const dir = tempDir();
    const cert = path.join(dir, 'cert.pem');
    const key = path.join(dir, 'key.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=camera.example', '-addext', 'subjectAltName=DNS:camera.example', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    const other = await startTestServer({ tls: { cert, key } });
    try {
      const run = gstLaunch(`${CLIP(30)} ! kvssink stream-name=tls-name endpoint=${other.url} ca-cert=${cert}`, awsEnv);
      expect(await run.exited).not.toBe(0);
      expect(run.output()).toMatch(/not trusted/);
      expect(run.output()).toMatch(/127\.0\.0\.1|camera\.example|name/);
      // Asked without host verification: did anything arrive?
      const agent = new https.Agent({ ca: readFileSync(cert), checkServerIdentity: () => undefined });
      const archived = new KinesisVideoArchivedMediaClient({ endpoint: other.url, region: 'us-east-1', credentials, requestHandler: new NodeHttpHandler({ httpsAgent: agent }) });
      expect(await fragmentsOf('tls-name', archived)).toBe(0);
    } finally {
      await other.close();
    }
  });
});

describe('the Node side over https', () => {
  it('Pipeline uploads with caCert and fails fatally without it', async () => {
    const ok = new Pipeline(`${CLIP(60)} ! kvssink stream-name=tls-pipeline`, { endpoint: t.url, region: 'us-east-1', credentials, caCert: t.server.tlsCertFile! });
    await ok.start();
    await ok.finished;
    await ok.stop();
    expect(await fragmentsOf('tls-pipeline')).toBe(2);

    const saved = process.env.AWS_CA_BUNDLE;
    delete process.env.AWS_CA_BUNDLE;
    try {
      const bad = new Pipeline(`${CLIP(600)} ! kvssink stream-name=tls-pipeline-bad`, { endpoint: t.url, region: 'us-east-1', credentials });
      await bad.start();
      const err = await bad.finished.then(() => undefined, (e: unknown) => e);
      await bad.stop({ drain: false });
      expect(err).toBeInstanceOf(PipelineError);
      expect((err as PipelineError).retryable).toBe(false);
      expect((err as PipelineError).message).toMatch(/not trusted/);
    } finally {
      if (saved !== undefined) process.env.AWS_CA_BUNDLE = saved;
    }
    expect(await fragmentsOf('tls-pipeline-bad')).toBe(0);
  });

  it('ensureStream and the consumer trust caCert, and say what is wrong without it', async () => {
    const source = { streamName: 'tls-pipeline', endpoint: t.url, region: 'us-east-1', credentials };
    await expect(ensureStream({ ...source, caCert: t.server.tlsCertFile!, dataRetentionInHours: 24 })).resolves.toMatchObject({ created: false });
    const got = [];
    for await (const f of readRange({ ...source, caCert: t.server.tlsCertFile!, start: new Date(0), end: new Date(Date.now() + 60_000) })) got.push(f);
    expect(got.map((f) => f.frames.length)).toEqual([30, 30]);

    const saved = process.env.AWS_CA_BUNDLE;
    delete process.env.AWS_CA_BUNDLE;
    try {
      const ensured = await ensureStream({ ...source, dataRetentionInHours: 24 }).then(() => undefined, (e: unknown) => e);
      expect(ensured).toBeInstanceOf(StreamConfigError);
      expect((ensured as StreamConfigError).code).toBe('UNTRUSTED_CERTIFICATE');
      expect((ensured as Error).message).toMatch(/caCert/);

      const reading = (async () => {
        for await (const _ of readRange({ ...source, start: new Date(0), end: new Date() })) void _;
      })().then(() => undefined, (e: unknown) => e);
      const err = await reading;
      expect(err).toBeInstanceOf(ConsumerError);
      expect((err as ConsumerError).code).toBe('CONSUMER_UNTRUSTED_CERTIFICATE');

      // AWS_CA_BUNDLE, the AWS CLI's variable, is honoured too.
      process.env.AWS_CA_BUNDLE = t.server.tlsCertFile!;
      await expect(ensureStream({ ...source, dataRetentionInHours: 24 })).resolves.toMatchObject({ created: false });
    } finally {
      if (saved === undefined) delete process.env.AWS_CA_BUNDLE;
      else process.env.AWS_CA_BUNDLE = saved;
    }
  });

  it('refuses an unreadable caCert naming the file', async () => {
    const source = { streamName: 'tls-pipeline', endpoint: t.url, region: 'us-east-1', credentials, caCert: '/nonexistent/ca.pem' };
    const ensured = await ensureStream({ ...source, dataRetentionInHours: 24 }).then(() => undefined, (e: unknown) => e);
    expect((ensured as StreamConfigError).code).toBe('INVALID_ARGUMENT');
    expect((ensured as Error).message).toMatch(/\/nonexistent\/ca\.pem/);
    const reading = (async () => {
      for await (const _ of readRange({ ...source, start: new Date(0), end: new Date() })) void _;
    })().then(() => undefined, (e: unknown) => e);
    expect(((await reading) as ConsumerError).code).toBe('CONSUMER_INVALID_OPTIONS');
  });
});

describe('the CLI over https', () => {
  it('openkvs stream --ca-cert uploads; without it, it exits with the reason', async () => {
    const cli = (args: string[]) =>
      new Promise<{ code: number | null; out: string }>((resolve) => {
        const child = spawn(process.execPath, ['dist/lib/cli/main.js', ...args], { env: { ...process.env, ...awsEnv, AWS_CA_BUNDLE: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        const on = (d: Buffer) => {
          out += d.toString();
          if (/persisted [2-9]/.test(out)) child.kill('SIGINT');
        };
        child.stdout.on('data', on);
        child.stderr.on('data', on);
        child.on('exit', (code) => resolve({ code, out }));
      });
    const base = ['stream', '--source', 'test', '--endpoint', t.url, '--region', 'us-east-1'];
    const ok = await cli([...base, '--stream-name', 'tls-cli', '--ca-cert', t.server.tlsCertFile!]);
    expect(ok.code, ok.out).toBe(0);
    expect(await fragmentsOf('tls-cli')).toBeGreaterThanOrEqual(2);
    const refused = await cli([...base, '--stream-name', 'tls-cli-refused']);
    expect(refused.code).not.toBe(0);
    expect(refused.out).toMatch(/not trusted/);
    expect(refused.out).toMatch(/--ca-cert|caCert|ca-cert/);
  });
});
