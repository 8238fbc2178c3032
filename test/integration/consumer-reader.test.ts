/**
 * The consumer's StreamReader against a real server, with real H.264/H.265 uploaded by kvssink:
 * every frame back in order with its timestamp and key flag, resume after a reader restart, a
 * server SIGKILL and expired sessions with nothing lost or repeated, and the typed errors.
 */
import type { ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rssAfterGc } from '../helpers/memory.js';
import { ConsumerError } from '../../lib/errors.js';
import { FileCheckpointStore, MemoryCheckpointStore } from '../../lib/consumer/checkpoint-store.js';
import type { ConsumedFrame } from '../../lib/consumer/get-media-parser.js';
import { StreamReader, type StreamFrame } from '../../lib/consumer/stream-reader.js';
import { awsEnv, gstLaunch, hasElement } from '../helpers/gst.js';
import {
  type Clients,
  clientsFor,
  credentials,
  freePort,
  listAllFragments,
  readFragments,
  spawnServer,
  startTestServer,
  tempDir,
  type TestServer,
} from '../helpers/server.js';

const H264 = 'x264enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h264parse';
const H265 = 'x265enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h265parse';

function upload(url: string, stream: string, frames: number, enc = H264, live = false) {
  return gstLaunch(
    `videotestsrc is-live=${live} num-buffers=${frames} ! video/x-raw,width=320,height=240,framerate=30/1 ! ${enc} ! kvssink stream-name=${stream} endpoint=${url}`,
    awsEnv,
  );
}

/** The stored frames as GetMediaForFragmentList gives them (an independent reading path). */
async function storedFrames(c: Clients, stream: string): Promise<ConsumedFrame[]> {
  const numbers = (await listAllFragments(c.archived, stream)).map((f) => f.FragmentNumber!);
  return (await readFragments(c.archived, stream, numbers)).flatMap((f) => f.frames);
}

async function take(reader: StreamReader, count: number): Promise<StreamFrame[]> {
  const out: StreamFrame[] = [];
  for await (const f of reader.frames()) {
    out.push(f);
    if (out.length >= count) break;
  }
  return out;
}

const summary = (frames: ConsumedFrame[]) => frames.map((f) => `${f.track}:${f.timestampMs}:${f.keyframe ? 'K' : '-'}:${f.data.length}`);

function expectSteady30fps(frames: ConsumedFrame[]): void {
  for (let i = 1; i < frames.length; i++) {
    const d = frames[i]!.timestampMs - frames[i - 1]!.timestampMs;
    expect(d, `frame ${i}`).toBeGreaterThanOrEqual(33);
    expect(d, `frame ${i}`).toBeLessThanOrEqual(34);
  }
}

describe('StreamReader on one server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer({ limits: { getMediaMaxDurationMs: 1500 } });
  });
  afterAll(() => t?.close());
  const readerFor = (stream: string, extra: Partial<ConstructorParameters<typeof StreamReader>[0]> = {}) =>
    new StreamReader({ streamName: stream, endpoint: t.url, region: 'us-east-1', credentials, start: 'earliest', ...extra });

  it('gives back every frame of an H.264 upload in order, with timestamps, key flags and fragment metadata', async () => {
    await t.createStream('c-h264');
    const run = upload(t.url, 'c-h264', 150);
    expect(await run.exited, run.output()).toBe(0);
    const reader = readerFor('c-h264');
    const frames = await take(reader, 150);
    const stored = await storedFrames(t, 'c-h264');
    expect(stored.length).toBe(150);
    expect(summary(frames)).toEqual(summary(stored));
    expect(frames.every((f, i) => f.data.equals(stored[i]!.data))).toBe(true);
    expect(frames.filter((f) => f.keyframe).length).toBe(5);
    expectSteady30fps(frames);
    const first = frames[0]!.fragment;
    expect(first.fragmentNumber).toMatch(/^[0-9]+$/);
    expect(first.tracks[0]!.codecId).toBe('V_MPEG4/ISO/AVC');
    expect(first.tracks[0]!.codecPrivate!.length).toBeGreaterThan(5);
    expect(Math.abs(first.producerTimestampMs! - Date.now())).toBeLessThan(120_000);
    expect(first.serverTimestampMs).toBeGreaterThanOrEqual(first.producerTimestampMs! - 5000);
  });

  it('reads fragments with their closing metadata, and raw MKV elements', async () => {
    const fragments = [];
    for await (const f of readerFor('c-h264').fragments()) {
      fragments.push(f);
      if (fragments.length === 5) break;
    }
    expect(fragments.map((f) => f.frames.length)).toEqual([30, 30, 30, 30, 30]);
    for (const f of fragments) {
      expect(f.continuationToken).toBe(f.fragmentNumber);
      expect(f.millisBehindNow).toBeGreaterThanOrEqual(0);
      expect(f.tags.AWS_KINESISVIDEO_SERVER_TIMESTAMP).toMatch(/^\d+\.\d{3}$/);
    }
    const kinds: string[] = [];
    for await (const e of readerFor('c-h264').elements()) {
      kinds.push(e.kind);
      if (e.kind === 'cluster-end') break;
    }
    expect(kinds.slice(0, 2)).toEqual(['ebml-header', 'segment-start']);
    expect(kinds.filter((k) => k === 'block').length).toBe(30);
  });

  it.skipIf(!hasElement('x265enc'))('gives back every frame of an H.265 upload', async () => {
    await t.createStream('c-h265');
    const run = upload(t.url, 'c-h265', 60, H265);
    expect(await run.exited, run.output()).toBe(0);
    const frames = await take(readerFor('c-h265'), 60);
    expect(summary(frames)).toEqual(summary(await storedFrames(t, 'c-h265')));
    expect(frames[0]!.fragment.tracks[0]!.codecId).toBe('V_MPEGH/ISO/HEVC');
    expect(frames[0]!.keyframe).toBe(true);
  });

  it('follows a live upload across expiring sessions (1.5 s) without losing or repeating a frame', async () => {
    await t.createStream('c-live');
    const reader = readerFor('c-live', { start: 'now' });
    let connects = 0;
    reader.on('connect', () => connects++);
    const reading = take(reader, 150);
    await new Promise((r) => setTimeout(r, 300));
    const run = upload(t.url, 'c-live', 150, H264, true);
    const frames = await reading;
    expect(await run.exited, run.output()).toBe(0);
    expect(connects).toBeGreaterThanOrEqual(3);
    expect(summary(frames)).toEqual(summary(await storedFrames(t, 'c-live')));
    expectSteady30fps(frames);
  });

  it('resumes from its checkpoint file after a reader restart: nothing lost, nothing twice', async () => {
    const file = path.join(tempDir(), 'checkpoints.json');
    const first = await take(readerFor('c-h264', { checkpoints: file }), 70); // stops inside the third fragment
    const saved = await new FileCheckpointStore(file).load('c-h264');
    expect(saved?.fragmentNumber).toMatch(/^[0-9]+$/);
    expect(saved?.lastFrameTimestampMs['1']).toBe(first.at(-1)!.timestampMs);
    const second = await take(readerFor('c-h264', { checkpoints: file }), 80);
    expect(summary([...first, ...second])).toEqual(summary(await storedFrames(t, 'c-h264')));
  });

  it('refuses an unknown stream, a malformed continuation token and expired credentials with typed errors', async () => {
    const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ConsumerError);
    const unknown = await err(take(readerFor('no-such-stream'), 1));
    expect(unknown).toBeInstanceOf(ConsumerError);
    expect(unknown!.code).toBe('CONSUMER_STREAM_NOT_FOUND');
    expect(unknown!.message).toContain('no-such-stream');

    const store = new MemoryCheckpointStore();
    await store.save('c-h264', { continuationToken: 'not-a-token', lastFrameTimestampMs: {}, updatedAt: new Date().toISOString() });
    const bad = await err(take(readerFor('c-h264', { checkpoints: store }), 1));
    expect(bad!.code).toBe('CONSUMER_BAD_CHECKPOINT');
    expect(bad!.message).toContain('not-a-token');

    const stale = { ...credentials, sessionToken: 'x', expiration: new Date(Date.now() - 1000) };
    const expired = await err(take(readerFor('c-h264', { credentials: async () => stale }), 1));
    expect(expired!.code).toBe('CONSUMER_NOT_AUTHORIZED');
    expect(expired!.retryable).toBe(false);
    expect(() => readerFor('c-h264', { credentials: stale })).toThrow(expect.objectContaining({ code: 'CONSUMER_NOT_AUTHORIZED' }));

    expect(() => new StreamReader({ endpoint: t.url } as never)).toThrow(/expected streamName or streamArn/);
    expect(() => readerFor('x', { start: 'later' as never })).toThrow(ConsumerError);
  });

  it('reports malformed media from a broken server as CONSUMER_MALFORMED_MEDIA and serves nothing of it', async () => {
    const broken = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': req.url === '/getDataEndpoint' ? 'application/json' : 'video/webm' });
      if (req.url === '/getDataEndpoint') return res.end(JSON.stringify({ DataEndpoint: `http://127.0.0.1:${(broken.address() as { port: number }).port}` }));
      res.end(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x80, 0x00, 0x00, 0x00, 0x07, 0x01, 0x02]));
    });
    await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
    const port = (broken.address() as { port: number }).port;
    const reader = new StreamReader({ streamName: 'x', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials });
    const got: StreamFrame[] = [];
    const e = await (async () => {
      for await (const f of reader.frames()) got.push(f);
    })().then(() => undefined, (x: unknown) => x as ConsumerError);
    broken.close();
    expect(e!.code).toBe('CONSUMER_MALFORMED_MEDIA');
    expect(got).toEqual([]);
  });

  it('50 start/stop cycles do not grow RSS', async () => {
    const cycle = async () => {
      await take(readerFor('c-h264', { checkpoints: false }), 40);
    };
    for (let i = 0; i < 5; i++) await cycle();
    const before = rssAfterGc();
    for (let i = 0; i < 50; i++) await cycle();
    const growthMb = (rssAfterGc() - before) / 1e6;
    expect(growthMb).toBeLessThan(40);
  });
});

describe('StreamReader across a server SIGKILL', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

  it('resumes after the server is killed and restarted mid-upload: every frame once', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const first = await spawnServer(dataDir, port);
    children.push(first.child);
    const c = clientsFor(first.url);
    await c.kv.send(new CreateStreamCommand({ StreamName: 'c-crash', DataRetentionInHours: 1 }));
    const reader = new StreamReader({
      streamName: 'c-crash', endpoint: first.url, region: 'us-east-1', credentials, start: 'earliest',
      reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
    });
    let reconnects = 0;
    reader.on('reconnect', () => reconnects++);
    const frames: StreamFrame[] = [];
    const reading = (async () => {
      for await (const f of reader.frames()) {
        frames.push(f);
        if (frames.length >= 300) break;
      }
    })();
    const run = upload(first.url, 'c-crash', 300, H264, true);
    while (frames.length < 100) await new Promise((r) => setTimeout(r, 20));
    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    await new Promise((r) => setTimeout(r, 700));
    const second = await spawnServer(dataDir, port);
    children.push(second.child);
    expect(await run.exited, run.output()).toBe(0);
    await reading;
    expect(reconnects).toBeGreaterThanOrEqual(1);
    expect(frames.length).toBe(300);
    expectSteady30fps(frames);
    expect(summary(frames)).toEqual(summary(await storedFrames(c, 'c-crash')));
  });
});
