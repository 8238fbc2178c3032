/**
 * VideoDecoder (GStreamer in the native addon) on real x264/x265 output: frames equal ffmpeg's
 * decode, sizes and strides per format, scaling, sampling, typed errors, and no growth over
 * 50 create/close cycles.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { rssAfterGc } from '../helpers/memory.js';
import { ConsumerError } from '../../lib/errors.js';
import { type ConsumedFrame, GetMediaParser } from '../../lib/consumer/get-media-parser.js';
import { type DecodedFrame, VideoDecoder } from '../../lib/consumer/video-decoder.js';
import type { TrackInfo } from '../../lib/mkv/ebml.js';
import { hasElement } from '../helpers/gst.js';

const run = promisify(execFile);
const dir = mkdtempSync(path.join(os.tmpdir(), 'openkvs-decoder-'));

interface Media { file: string; track: TrackInfo; frames: ConsumedFrame[] }

async function encode(name: string, encoder: string, frames: number, size = '320x240'): Promise<Media> {
  const [w, h] = size.split('x');
  const file = path.join(dir, `${name}.mkv`);
  await run('gst-launch-1.0', ['-q', '-e', 'videotestsrc', 'pattern=ball', `num-buffers=${frames}`, '!', `video/x-raw,format=I420,width=${w},height=${h},framerate=30/1`, '!',
    ...encoder.split(' '), '!', 'matroskamux', '!', 'filesink', `location=${file}`]);
  const out: ConsumedFrame[] = [];
  let track: TrackInfo | undefined;
  const parser = new GetMediaParser({ onFrame: (f, frag) => { out.push(f); track ??= frag.tracks[0]; } });
  parser.push(readFileSync(file));
  parser.end();
  return { file, track: track!, frames: out };
}

async function decodeAll(m: Media, options: Partial<ConstructorParameters<typeof VideoDecoder>[0]> = {}): Promise<DecodedFrame[]> {
  const d = new VideoDecoder({ codecId: m.track.codecId as 'V_MPEG4/ISO/AVC', codecPrivate: m.track.codecPrivate!, ...options });
  const got: DecodedFrame[] = [];
  d.on('frame', (f) => got.push(f));
  for (const f of m.frames) d.push(f);
  await d.end();
  await d.close();
  return got;
}

describe('VideoDecoder', () => {
  let h264: Media;
  beforeAll(async () => {
    h264 = await encode('h264', 'x264enc key-int-max=30 speed-preset=ultrafast ! h264parse', 150);
  });

  it('decodes every H.264 frame in order, each equal to ffmpeg\'s decode of the same frame', async () => {
    const frames = await decodeAll(h264);
    expect(frames.length).toBe(150);
    expect(frames.map((f) => f.timestampMs)).toEqual(h264.frames.map((f) => f.timestampMs));
    expect(frames[0]).toMatchObject({ width: 320, height: 240, format: 'RGB', strides: [960] });
    for (const n of [0, 17, 100]) {
      const { stdout } = await run('ffmpeg', ['-v', 'error', '-i', h264.file, '-vf', `select=eq(n\\,${n})`, '-vframes', '1', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'], { encoding: 'buffer', maxBuffer: 1 << 24 });
      const ours = frames[n]!.data;
      expect(ours.length).toBe(stdout.length);
      const diff = (a: Buffer) => { let s = 0; for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - stdout[i]!); return s / a.length; };
      expect(diff(ours), `frame ${n}`).toBeLessThan(3);
      // The pattern moves: the neighbouring frame is measurably different, so a wrong frame would fail.
      expect(diff(frames[n + 1]!.data), `frame ${n + 1} vs ${n}`).toBeGreaterThan(diff(ours));
    }
  });

  it('gives GRAY8 and I420 with their strides and plane offsets, scaled when asked', async () => {
    const gray = (await decodeAll({ ...h264, frames: h264.frames.slice(0, 30) }, { format: 'GRAY8', width: 160, height: 120 }))[0]!;
    expect(gray).toMatchObject({ width: 160, height: 120, format: 'GRAY8', strides: [160] });
    expect(gray.data.length).toBe(160 * 120);
    const i420 = (await decodeAll({ ...h264, frames: h264.frames.slice(0, 30) }, { format: 'I420' }))[0]!;
    expect(i420).toMatchObject({ format: 'I420', strides: [320, 160, 160], offsets: [0, 320 * 240, 320 * 240 + 160 * 120] });
    expect(i420.data.length).toBe((320 * 240 * 3) / 2);
  });

  it('samples at most one frame per everyMs of producer time', async () => {
    const frames = await decodeAll(h264, { everyMs: 1000, format: 'GRAY8' });
    expect(frames.length).toBe(5);
    for (let i = 1; i < frames.length; i++) expect(frames[i]!.timestampMs - frames[i - 1]!.timestampMs).toBeGreaterThanOrEqual(1000);
  });

  it('drops to live: when decoding falls behind, input is skipped up to the next key frame', async () => {
    const d = new VideoDecoder({ codecId: h264.track.codecId as 'V_MPEG4/ISO/AVC', codecPrivate: h264.track.codecPrivate!, format: 'GRAY8', dropToLive: true, maxLagMs: 300 });
    const got: DecodedFrame[] = [];
    d.on('frame', (f) => got.push(f));
    // The first second, then (once it decodes) the other 4 s at once: far ahead of the decoder.
    for (const f of h264.frames.slice(0, 30)) d.push(f);
    while (got.length === 0) await new Promise((r) => setTimeout(r, 5));
    const kept = h264.frames.slice(30).filter((f) => d.push(f));
    await d.end();
    await d.close();
    expect(d.stats.dropped).toBeGreaterThan(0);
    expect(kept.length + 30 + d.stats.dropped).toBe(150);
    expect(got.length).toBe(kept.length + 30);
    // What is kept after each gap starts at a key frame, so every kept frame decodes.
    const keyTimes = new Set(h264.frames.filter((f) => f.keyframe).map((f) => f.timestampMs));
    const all = h264.frames.map((f) => f.timestampMs);
    for (let i = 1; i < got.length; i++) {
      const prev = all.indexOf(got[i - 1]!.timestampMs);
      const here = all.indexOf(got[i]!.timestampMs);
      expect(here).toBeGreaterThan(prev);
      if (here !== prev + 1) expect(keyTimes.has(got[i]!.timestampMs), `frame ${here} after a gap`).toBe(true);
    }
  });

  it.skipIf(!hasElement('x265enc'))('decodes H.265', async () => {
    const h265 = await encode('h265', 'x265enc key-int-max=30 speed-preset=ultrafast ! h265parse', 30);
    expect(h265.track.codecId).toBe('V_MPEGH/ISO/HEVC');
    const frames = await decodeAll(h265, { format: 'RGBA' });
    expect(frames.length).toBe(30);
    expect(frames[0]).toMatchObject({ width: 320, height: 240, format: 'RGBA', strides: [1280] });
  });

  it('refuses bad options and reports undecodable input as a ConsumerError', async () => {
    expect(() => new VideoDecoder({ codecId: 'V_VP8' as never, codecPrivate: Buffer.from([1]) })).toThrow(expect.objectContaining({ code: 'CONSUMER_UNSUPPORTED_CODEC' }));
    expect(() => new VideoDecoder({ codecId: 'V_MPEG4/ISO/AVC', codecPrivate: Buffer.alloc(0) })).toThrow(/codecPrivate: expected the track codec private data/);
    expect(() => new VideoDecoder({ codecId: 'V_MPEG4/ISO/AVC', codecPrivate: h264.track.codecPrivate!, format: 'BGR' as never })).toThrow(ConsumerError);
    const d = new VideoDecoder({ codecId: 'V_MPEG4/ISO/AVC', codecPrivate: Buffer.from([1, 2, 3, 4, 5, 6, 7, 8]) });
    for (let i = 0; i < 10; i++) d.push({ data: Buffer.alloc(500, i), timestampMs: i * 33, keyframe: i === 0 });
    const e = await d.end().then(() => undefined, (x: unknown) => x as ConsumerError);
    await d.close();
    expect(e).toBeInstanceOf(ConsumerError);
    expect(e!.code).toBe('CONSUMER_DECODE_FAILED');
  });

  it('50 create/decode/close cycles do not grow RSS', async () => {
    const m = { ...h264, frames: h264.frames.slice(0, 10) };
    for (let i = 0; i < 5; i++) await decodeAll(m, { format: 'GRAY8' });
    const before = rssAfterGc();
    for (let i = 0; i < 50; i++) await decodeAll(m, { format: 'GRAY8' });
    expect((rssAfterGc() - before) / 1e6).toBeLessThan(40);
  });
});
