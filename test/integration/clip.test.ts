/**
 * GetClip with the real AWS SDK: one MP4 for a time range, checked with ffprobe (duration and
 * frame count of the range), the 200-fragment limit, and clear errors.
 */
import { execFile } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { GetClipCommand, type GetClipCommandInput } from '@aws-sdk/client-kinesis-video-archived-media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { h264Fragments } from '../helpers/media.js';
import { body, sendBody } from '../helpers/producer.js';
import { type TestServer, startTestServer, tempDir } from '../helpers/server.js';

const run = promisify(execFile);
const dir = tempDir('openkvs-clip-');
let t: TestServer;
const stream = 'clip-cam';
const producerStart = Date.now() - 60_000;
let ingestStart: number;
let ingestEnd: number;

beforeAll(async () => {
  t = await startTestServer();
  await t.createStream(stream);
  await t.createStream('clip-many');
  await t.createStream('clip-noretention', 0);
  ingestStart = Date.now() - 1000;
  await sendBody(t.url, stream, body(await h264Fragments({ frames: 150, gop: 30 })), { producerStartMs: producerStart });
  ingestEnd = Date.now() + 1000;
  await new Promise((r) => setTimeout(r, 1100));
});
afterAll(() => t?.close());

async function clip(input: GetClipCommandInput, name: string): Promise<{ file: string; contentType: string | undefined; ms: number }> {
  const t0 = performance.now();
  const out = await t.archived.send(new GetClipCommand(input));
  const bytes = await out.Payload!.transformToByteArray();
  const ms = performance.now() - t0;
  const file = path.join(dir, `${name}.mp4`);
  writeFileSync(file, bytes);
  return { file, contentType: out.ContentType, ms };
}

async function probe(file: string): Promise<{ frames: number; duration: number; keyframes: number; firstPts: number }> {
  const { stdout } = await run('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags:format=duration', '-of', 'json', file,
  ]);
  const p = JSON.parse(stdout) as { packets: Array<{ pts_time: string; flags: string }>; format: { duration: string } };
  return {
    frames: p.packets.length,
    duration: Number(p.format.duration),
    keyframes: p.packets.filter((x) => x.flags.includes('K')).length,
    firstPts: Number(p.packets[0]?.pts_time),
  };
}

const producerRange = (from: number, to: number): GetClipCommandInput => ({
  StreamName: stream,
  ClipFragmentSelector: {
    FragmentSelectorType: 'PRODUCER_TIMESTAMP',
    TimestampRange: { StartTimestamp: new Date(producerStart + from), EndTimestamp: new Date(producerStart + to) },
  },
});

describe('GetClip', () => {
  it('SERVER_TIMESTAMP: the whole stream as one MP4 (video/mp4), every frame, 5 s', async () => {
    const c = await clip(
      {
        StreamName: stream,
        ClipFragmentSelector: {
          FragmentSelectorType: 'SERVER_TIMESTAMP',
          TimestampRange: { StartTimestamp: new Date(ingestStart), EndTimestamp: new Date(ingestEnd) },
        },
      },
      'server',
    );
    expect(c.contentType).toBe('video/mp4');
    const p = await probe(c.file);
    expect(p).toMatchObject({ frames: 150, keyframes: 5, firstPts: 0 });
    expect(p.duration).toBeCloseTo(5, 1);
    const dec = await run('ffmpeg', ['-v', 'error', '-i', c.file, '-f', 'null', '-']);
    expect(dec.stderr).toBe('');
  });

  it('PRODUCER_TIMESTAMP: fragments starting within [Start, End] (End inclusive): 3 fragments, 90 frames, 3 s', async () => {
    const p = await probe((await clip(producerRange(500, 3000), 'producer')).file);
    expect(p).toMatchObject({ frames: 90, keyframes: 3, firstPts: 0 });
    expect(p.duration).toBeCloseTo(3, 1);
  });

  it('holds at most the first 200 fragments of the range', async () => {
    const many = 'clip-many';
    const start = Date.now() - 600_000;
    await sendBody(t.url, many, body(await h264Fragments({ frames: 410, gop: 2, fps: 30 })), { producerStartMs: start });
    const c = await clip(
      {
        StreamName: many,
        ClipFragmentSelector: {
          FragmentSelectorType: 'PRODUCER_TIMESTAMP',
          TimestampRange: { StartTimestamp: new Date(start), EndTimestamp: new Date(start + 3_600_000) },
        },
      },
      'many',
    );
    const p = await probe(c.file);
    expect(p.keyframes).toBe(200);
    expect(p.frames).toBe(400);
    console.log(`GetClip of 200 fragments (400 frames 320x240): ${c.ms.toFixed(0)} ms`);
  });

  it('refuses bad requests with clear errors', async () => {
    const fail = (input: GetClipCommandInput) =>
      t.archived.send(new GetClipCommand(input)).then(
        () => { throw new Error('expected a failure'); },
        (e: Error) => `${e.name}: ${e.message}`,
      );
    expect(await fail({ ...producerRange(0, 1000), StreamName: 'nope' })).toBe(
      'ResourceNotFoundException: The requested stream is not found or not active.',
    );
    expect(await fail(producerRange(100_000, 200_000))).toBe('ResourceNotFoundException: No fragments found in the stream for the clip request.');
    expect(await fail(producerRange(3000, 1000))).toBe(
      'InvalidArgumentException: ClipFragmentSelector.TimestampRange.EndTimestamp must be later than StartTimestamp.',
    );
    expect(await fail(producerRange(0, 25 * 3_600_000))).toBe('InvalidArgumentException: ClipFragmentSelector.TimestampRange must not span more than 24 hours.');
    expect(await fail({ StreamName: stream } as GetClipCommandInput)).toMatch(/^InvalidArgumentException: Invalid value for ClipFragmentSelector/);
    expect(await fail({ ...producerRange(0, 1000), StreamName: 'clip-noretention' })).toMatch(/^NoDataRetentionException: /);
  });
});
