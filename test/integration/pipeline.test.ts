/**
 * The Node API end to end: ensureStream, a kvssink Pipeline in-process with typed events,
 * fragment numbers that match ListFragments, typed errors, and credentials refreshed while
 * uploading.
 */
import { KinesisVideoArchivedMediaClient } from '@aws-sdk/client-kinesis-video-archived-media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OpenKvsError, Pipeline, PipelineError, ensureStream, type FragmentAck, type UploadStats } from '../../lib/index.js';
import { readdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { capturingLogger, listAllFragments, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

const A = { accessKeyId: 'AKIAPIPELINETESTAAAA', secretAccessKey: 'secret-a' };
const B = { accessKeyId: 'AKIAPIPELINETESTBBBB', secretAccessKey: 'secret-b' };
const CLIP = (frames: number, gop = 30, live = false) =>
  `videotestsrc ${live ? 'is-live=true ' : ''}num-buffers=${frames} ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ` +
  `x264enc key-int-max=${gop} speed-preset=ultrafast tune=zerolatency ! h264parse`;

let t: TestServer;
const { logger, logs } = capturingLogger();

beforeAll(async () => {
  t = await startTestServer({
    accessKeys: { [A.accessKeyId]: A.secretAccessKey, [B.accessKeyId]: B.secretAccessKey },
    logger,
  });
});
afterAll(() => t?.close());

const listed = (stream: string, credentials = A) =>
  listAllFragments(new KinesisVideoArchivedMediaClient({ endpoint: t.url, region: 'us-east-1', credentials }), stream);

describe('Pipeline', () => {
  it('setProperty / getProperty refuse unknown elements, properties and values with PipelineErrors', async () => {
    const p = new Pipeline('videotestsrc name=src ! fakesink name=out', { credentials: false });
    const refusal = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        expect(e).toBeInstanceOf(OpenKvsError);
        expect(e).toBeInstanceOf(PipelineError);
        const err = e as PipelineError;
        // The addon's own error stays reachable, with its ERR_* code.
        expect((err.cause as { code?: string } | undefined)?.code).toBe(`ERR_${err.code}`);
        return { code: err.code, fatal: err.fatal, message: err.message };
      }
      return 'no error';
    };
    expect(refusal(() => p.setProperty('nope', 'pattern', 1))).toEqual({ code: 'NO_SUCH_ELEMENT', fatal: false, message: expect.stringContaining('"nope"') });
    expect(refusal(() => p.setProperty('src', 'no-such-property', 1))).toMatchObject({ code: 'NO_SUCH_PROPERTY', fatal: false });
    expect(refusal(() => p.getProperty('src', 'no-such-property'))).toMatchObject({ code: 'NO_SUCH_PROPERTY', fatal: false });
    expect(refusal(() => p.setProperty('src', 'num-buffers', 'many'))).toEqual({
      code: 'INVALID_PROPERTY_VALUE',
      fatal: false,
      message: expect.stringContaining('"num-buffers"'),
    });
    p.setProperty('src', 'num-buffers', 5);
    expect(p.getProperty('src', 'num-buffers')).toBe(5);
    await p.stop({ drain: false }).catch(() => {});
    expect(refusal(() => p.setProperty('src', 'num-buffers', 6))).toMatchObject({ code: 'PIPELINE_CLOSED', fatal: true });
  });

  it('uploads with typed events; fragment-ack numbers are the ones ListFragments returns', async () => {
    const ensured = await ensureStream({ streamName: 'cam1', endpoint: t.url, region: 'us-east-1', credentials: A, dataRetentionInHours: 24, tags: { site: 'a' } });
    expect(ensured.created).toBe(true);
    const p = new Pipeline(`${CLIP(150)} ! kvssink name=sink stream-name=cam1`, { endpoint: t.url, region: 'us-east-1', credentials: A });
    expect(p.sinks).toEqual(['sink']);
    const acks: FragmentAck[] = [];
    const states: string[] = [];
    const stats: UploadStats[] = [];
    p.on('fragment-ack', (a) => acks.push(a));
    p.on('state', (s) => states.push(s.to));
    p.on('stats', (s) => stats.push(s));
    let eos = false;
    p.on('eos', () => (eos = true));
    await p.start();
    await p.finished;
    expect(eos).toBe(true);
    await p.stop();
    expect(states).toContain('PLAYING');
    const persisted = acks.filter((a) => a.eventType === 'PERSISTED');
    expect(persisted.length).toBe(5);
    expect(persisted.every((a) => a.sink === 'sink' && typeof a.latencyMs === 'number')).toBe(true);
    const frags = await listed('cam1');
    expect(frags.map((f) => f.FragmentNumber)).toEqual(persisted.map((a) => a.fragmentNumber).sort());
    expect(acks.filter((a) => a.eventType === 'BUFFERING').map((a) => a.timecode)).toEqual(persisted.map((a) => a.timecode));
  });

  it('storagePath gives every kvssink a spool, emptied as fragments are persisted', async () => {
    const dir = tempDir('pipeline-spool-');
    const p = new Pipeline(`${CLIP(60)} ! kvssink name=sink stream-name=cam-spool`, { endpoint: t.url, region: 'us-east-1', credentials: A, storagePath: dir, storagePathSizeMb: 64 });
    expect(p.getProperty('sink', 'storage-path')).toBe(dir);
    expect(p.getProperty('sink', 'storage-path-size')).toBe(64);
    await p.start();
    await p.finished;
    await p.stop();
    expect((await listed('cam-spool')).length).toBe(2);
    const left = readdirSync(path.join(dir, 'cam-spool'), { recursive: true }).filter((f) => String(f).endsWith('.frag'));
    expect(left).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('rejects `finished` with a typed, non-retryable error for a missing stream', async () => {
    const p = new Pipeline(`${CLIP(300, 30, true)} ! kvssink stream-name=nope allow-create-stream=false`, {
      endpoint: t.url,
      region: 'us-east-1',
      credentials: A,
    });
    const errors: PipelineError[] = [];
    p.on('error', (e) => errors.push(e));
    await p.start();
    const err = await p.finished.then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineError);
    expect((err as PipelineError).code).toBe('KVS_STREAM_NOT_FOUND');
    expect((err as PipelineError).retryable).toBe(false);
    expect((err as PipelineError).info.httpStatus).toBe(404);
    expect(errors.some((e) => e.fatal)).toBe(true);
    await p.stop();
  });

  it('reports wrong credentials as KVS_ACCESS_DENIED error events while it retries', async () => {
    const p = new Pipeline(`${CLIP(300, 30, true)} ! kvssink stream-name=cam1`, {
      endpoint: t.url,
      region: 'us-east-1',
      credentials: { ...A, secretAccessKey: 'wrong' },
    });
    const first = new Promise<PipelineError>((resolve) => p.once('error', resolve));
    await p.start();
    const e = await first;
    expect(e.code).toBe('KVS_ACCESS_DENIED');
    expect(e.info.serviceCode).toBe('InvalidSignatureException');
    await p.stop({ drain: false });
  });

  it('refuses a bad description and unknown options with clear errors', () => {
    expect(() => new Pipeline('videotestsrc ! no-such-element-here')).toThrow(/no-such-element-here/);
    expect(() => new Pipeline('videotestsrc ! fakesink', { bogus: 1 } as never)).toThrow(/bogus/);
  });

  it('pushes refreshed credentials into the running sink; later connections use them, no frame lost', async () => {
    await ensureStream({ streamName: 'refresh', endpoint: t.url, region: 'us-east-1', credentials: A, dataRetentionInHours: 1 });
    process.env.KVSSINK_CONNECTION_ROTATION_SECONDS = '1';
    let calls = 0;
    // Expires 5 min + 1.5 s from now: the refresher (5 min ahead) refreshes after ~1.5 s.
    const provider = async () => {
      calls++;
      return calls === 1 ? { ...A, expiration: new Date(Date.now() + 301_500) } : { ...B, expiration: new Date(Date.now() + 3_600_000) };
    };
    try {
      const p = new Pipeline(`${CLIP(150, 15, true)} ! kvssink stream-name=refresh`, {
        endpoint: t.url,
        region: 'us-east-1',
        credentials: provider,
        credentialsRefresh: { minRetryIntervalMs: 500 },
      });
      const errors: PipelineError[] = [];
      p.on('error', (e) => errors.push(e));
      await p.start();
      await p.finished;
      await p.stop();
      expect(errors).toEqual([]);
    } finally {
      delete process.env.KVSSINK_CONNECTION_ROTATION_SECONDS;
    }
    expect(calls).toBeGreaterThanOrEqual(2);
    const keys = logs.filter((l) => l.msg === 'PutMedia started' && l.stream === 'refresh').map((l) => l.accessKeyId);
    expect(keys[0]).toBe(A.accessKeyId);
    expect(keys.at(-1)).toBe(B.accessKeyId);
    expect((await listed('refresh', B)).length).toBe(10); // 150 frames, a key frame every 15
  });
});
