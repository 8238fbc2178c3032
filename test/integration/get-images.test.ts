/**
 * GetImages against a real server: real H.264 from GStreamer uploaded with PutMedia (RELATIVE
 * timecodes from a known producer start), images read back with the AWS SDK v3 archived-media
 * client and decoded by ffmpeg on the server; dimensions read from the JPEG SOF / PNG IHDR.
 */
import {
  GetImagesCommand,
  type GetImagesCommandInput,
  type Image,
  paginateGetImages,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ID, readBlockHeader, readChildren } from '../../lib/mkv/ebml.js';
import { splitFragments } from '../../lib/mkv/fragments.js';
import { h264Fragments } from '../helpers/media.js';
import { acksOf, body, sendBody } from '../helpers/producer.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

let t: TestServer;
const stream = 'cam-images';
// A known producer start on a whole second; 5 fragments of 1 s cover [START, START + 5 s).
const START = Math.floor(Date.now() / 1000) * 1000 - 60_000;
const at = (ms: number): Date => new Date(START + ms);

beforeAll(async () => {
  t = await startTestServer();
  const frags = await h264Fragments({ frames: 150, gop: 30, width: 320, height: 240 });
  await t.createStream(stream);
  const acks = await sendBody(t.url, stream, body(frags), { producerStartMs: START });
  expect(acksOf(acks, 'PERSISTED')).toHaveLength(5);
  await t.createStream('cam-no-retention', 0);
});
afterAll(() => t?.close());

const run = promisify(execFile);

/** 2 s of moving H.264 (videotestsrc pattern=ball), 30 fps, 1 s GOPs, as a Matroska file. */
async function movingMkv(): Promise<string> {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'openkvs-images-')), 'ball.mkv');
  await run('gst-launch-1.0', [
    '-q', '-e', 'videotestsrc', 'pattern=ball', 'num-buffers=60', '!',
    'video/x-raw,format=I420,width=320,height=240,framerate=30/1', '!',
    'x264enc', 'tune=zerolatency', 'key-int-max=30', 'speed-preset=ultrafast', '!', 'h264parse', '!',
    'matroskamux', 'streamable=true', 'min-cluster-duration=0', '!', 'filesink', `location=${file}`,
  ]);
  return file;
}

/** Frame n of a file decoded by ffmpeg straight from the file, as the server encodes PNGs. */
async function referencePng(file: string, n: number): Promise<Buffer> {
  const { stdout } = await run(
    'ffmpeg',
    ['-hide_banner', '-loglevel', 'error', '-i', file, '-map', '0:v:0', '-vf', `select=eq(n\\,${n}),format=rgb24`, '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'png', 'pipe:1'],
    { encoding: 'buffer', maxBuffer: 64 << 20 },
  );
  return stdout;
}

/** Width and height of a JPEG (first SOFn marker) or PNG (IHDR). */
function imageSize(img: Buffer): { kind: 'JPEG' | 'PNG'; width: number; height: number } {
  if (img.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) {
    expect(img.toString('latin1', 12, 16)).toBe('IHDR');
    return { kind: 'PNG', width: img.readUInt32BE(16), height: img.readUInt32BE(20) };
  }
  expect([...img.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
  let pos = 2;
  while (pos + 4 < img.length) {
    expect(img[pos]).toBe(0xff);
    const marker = img[pos + 1]!;
    const len = img.readUInt16BE(pos + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { kind: 'JPEG', height: img.readUInt16BE(pos + 5), width: img.readUInt16BE(pos + 7) };
    }
    pos += 2 + len;
  }
  throw new Error('no SOF marker in the JPEG');
}

const request = (o: Partial<GetImagesCommandInput> = {}): GetImagesCommandInput => ({
  StreamName: stream,
  ImageSelectorType: 'PRODUCER_TIMESTAMP',
  StartTimestamp: at(0),
  EndTimestamp: at(5000),
  SamplingInterval: 500,
  Format: 'JPEG',
  MaxResults: 100,
  ...o,
});

const times = (images: Image[]): number[] => images.map((i) => i.TimeStamp!.getTime() - START);

async function expectError(input: unknown, name: string, message: RegExp): Promise<void> {
  const err = await t.archived.send(new GetImagesCommand(input as GetImagesCommandInput)).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
  expect(err?.name).toBe(name);
  expect(err?.message).toMatch(message);
}

describe('GetImages', () => {
  it('returns JPEG images of the requested size at exactly the sample times', async () => {
    const out = await t.archived.send(new GetImagesCommand(request({ WidthPixels: 160, HeightPixels: 96, FormatConfig: { JPEGQuality: '90' } })));
    const images = out.Images ?? [];
    expect(images).toHaveLength(10); // 5 s / 500 ms
    expect(times(images)).toEqual([0, 500, 1000, 1500, 2000, 2500, 3000, 3500, 4000, 4500]);
    expect(out.NextToken).toBeUndefined();
    for (const img of images) {
      expect(img.Error).toBeUndefined();
      expect(typeof img.ImageContent).toBe('string');
      expect(imageSize(Buffer.from(img.ImageContent!, 'base64'))).toEqual({ kind: 'JPEG', width: 160, height: 96 });
    }
  });

  it('returns PNG images, keeping the aspect ratio when only WidthPixels is given, and the original size by default', async () => {
    const scaled = await t.archived.send(new GetImagesCommand(request({ Format: 'PNG', WidthPixels: 160, SamplingInterval: 1000 })));
    expect(times(scaled.Images!)).toEqual([0, 1000, 2000, 3000, 4000]);
    for (const img of scaled.Images!) expect(imageSize(Buffer.from(img.ImageContent!, 'base64'))).toEqual({ kind: 'PNG', width: 160, height: 120 });

    const original = await t.archived.send(
      new GetImagesCommand(request({ Format: 'PNG', SamplingInterval: 3000, StartTimestamp: at(1234), EndTimestamp: at(1300) })),
    );
    expect(times(original.Images!)).toEqual([1234]);
    expect(imageSize(Buffer.from(original.Images![0]!.ImageContent!, 'base64'))).toEqual({ kind: 'PNG', width: 320, height: 240 });

    const tall = await t.archived.send(new GetImagesCommand(request({ HeightPixels: 60, SamplingInterval: 2500 })));
    for (const img of tall.Images!) expect(imageSize(Buffer.from(img.ImageContent!, 'base64'))).toEqual({ kind: 'JPEG', width: 80, height: 60 });
  });

  it('defaults SamplingInterval to 3000 ms', async () => {
    const { SamplingInterval: _, ...rest } = request({ WidthPixels: 64, HeightPixels: 48 });
    const out = await t.archived.send(new GetImagesCommand(rest));
    expect(times(out.Images!)).toEqual([0, 3000]);
  });

  it('answers NO_MEDIA for samples before and after the stored media', async () => {
    const out = await t.archived.send(
      new GetImagesCommand(request({ StartTimestamp: at(-1500), EndTimestamp: at(6500), SamplingInterval: 1000, WidthPixels: 64, HeightPixels: 48 })),
    );
    const images = out.Images!;
    expect(times(images)).toEqual([-1500, -500, 500, 1500, 2500, 3500, 4500, 5500]);
    expect(images.map((i) => i.Error ?? 'OK')).toEqual(['NO_MEDIA', 'NO_MEDIA', 'OK', 'OK', 'OK', 'OK', 'OK', 'NO_MEDIA']);
    for (const i of images.filter((x) => x.Error)) expect(i.ImageContent).toBeUndefined();
  });

  it('pages with MaxResults and NextToken (paginateGetImages)', async () => {
    const first = await t.archived.send(new GetImagesCommand(request({ MaxResults: 4, WidthPixels: 64, HeightPixels: 48 })));
    expect(times(first.Images!)).toEqual([0, 500, 1000, 1500]);
    expect(first.NextToken).toMatch(/^[A-Za-z0-9+/]+=*$/);

    const pages: number[][] = [];
    // The paginator's pageSize only fills MaxResults when the input has none.
    const { MaxResults: _, ...input } = request({ WidthPixels: 64, HeightPixels: 48 });
    for await (const page of paginateGetImages({ client: t.archived, pageSize: 3 }, input)) {
      pages.push(times(page.Images!));
    }
    expect(pages).toEqual([[0, 500, 1000], [1500, 2000, 2500], [3000, 3500, 4000], [4500]]);

    // A token only continues the request it came from.
    await expectError(
      { ...request({ MaxResults: 4 }), EndTimestamp: at(4000), NextToken: first.NextToken },
      'InvalidArgumentException',
      /NextToken/,
    );
    await expectError({ ...request(), NextToken: 'bm90LWEtdG9rZW4=' }, 'InvalidArgumentException', /NextToken/);
  });

  it('selects by SERVER_TIMESTAMP too', async () => {
    const { ListFragmentsCommand } = await import('@aws-sdk/client-kinesis-video-archived-media');
    const list = await t.archived.send(
      new ListFragmentsCommand({
        StreamName: stream,
        FragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: at(0), EndTimestamp: at(4000) } },
      }),
    );
    const first = Math.min(...list.Fragments!.map((f) => f.ServerTimestamp!.getTime()));
    const out = await t.archived.send(
      new GetImagesCommand(
        request({ ImageSelectorType: 'SERVER_TIMESTAMP', StartTimestamp: new Date(first), EndTimestamp: new Date(first + 1), WidthPixels: 64, HeightPixels: 48 }),
      ),
    );
    expect(out.Images).toHaveLength(1);
    expect(out.Images![0]!.Error).toBeUndefined();
    expect(imageSize(Buffer.from(out.Images![0]!.ImageContent!, 'base64'))).toEqual({ kind: 'JPEG', width: 64, height: 48 });
  });

  it('refuses bad requests with an exception naming the field', async () => {
    await expectError(request({ EndTimestamp: at(-1000) }), 'InvalidArgumentException', /EndTimestamp must be after StartTimestamp/);
    await expectError(request({ EndTimestamp: at(0) }), 'InvalidArgumentException', /EndTimestamp must be after StartTimestamp/);
    await expectError(request({ EndTimestamp: at(301_000) }), 'InvalidArgumentException', /must not exceed 300 seconds/);
    await expectError({ ...request(), Format: 'GIF' }, 'InvalidArgumentException', /Format: expected JPEG or PNG/);
    await expectError({ ...request(), ImageSelectorType: 'NOW' }, 'InvalidArgumentException', /ImageSelectorType: expected PRODUCER_TIMESTAMP or SERVER_TIMESTAMP/);
    await expectError(request({ WidthPixels: 4000 }), 'InvalidArgumentException', /WidthPixels: expected an integer 1-3840/);
    await expectError(request({ HeightPixels: 0 }), 'InvalidArgumentException', /HeightPixels: expected an integer 1-2160/);
    await expectError(request({ SamplingInterval: 100 }), 'InvalidArgumentException', /SamplingInterval: expected an integer 200-20000/);
    await expectError(request({ MaxResults: 101 }), 'InvalidArgumentException', /MaxResults: expected an integer 1-100/);
    await expectError(request({ FormatConfig: { JPEGQuality: '0' } }), 'InvalidArgumentException', /FormatConfig.JPEGQuality: expected a string "1".."100"/);
    await expectError(request({ FormatConfig: { Other: '1' } as never }), 'InvalidArgumentException', /Unknown field in FormatConfig: Other/);
    await expectError({ ...request(), StartTimestamp: undefined }, 'InvalidArgumentException', /StartTimestamp/);
    await expectError({ ...request(), StreamName: undefined }, 'InvalidArgumentException', /StreamName or StreamARN/);
    await expectError(request({ StreamName: 'no-such-stream' }), 'ResourceNotFoundException', /not found/);
    await expectError(request({ StartTimestamp: at(-100_000), EndTimestamp: at(-50_000) }), 'ResourceNotFoundException', /No fragments/);
    await expectError(request({ StreamName: 'cam-no-retention' }), 'NoDataRetentionException', /no data retention/);
  });

  it('decodes the frame at or just before each sample time (pixel-identical to ffmpeg on the original file)', async () => {
    const file = await movingMkv();
    const frags = splitFragments(readFileSync(file));
    expect(frags.clusters).toHaveLength(2);
    await t.createStream('cam-ball');
    await sendBody(t.url, 'cam-ball', body(frags), { producerStartMs: START });
    // Frames are at round(n * 33.3) ms: 1000 is frame 30, 1050 → frame 31 (1033), 1999 → frame 59 (1967).
    const want: Array<[number, number]> = [[0, 0], [40, 1], [1000, 30], [1050, 31], [1500, 45], [1999, 59]];
    for (const [ms, n] of want) {
      const out = await t.archived.send(
        new GetImagesCommand(request({ StreamName: 'cam-ball', Format: 'PNG', StartTimestamp: at(ms), EndTimestamp: at(ms + 1) })),
      );
      const got = Buffer.from(out.Images![0]!.ImageContent!, 'base64');
      expect(got.equals(await referencePng(file, n)), `sample at +${ms} ms is frame ${n}`).toBe(true);
      expect(got.equals(await referencePng(file, n + 1)), `sample at +${ms} ms is not frame ${n + 1}`).toBe(false);
    }
  });

  it('answers MEDIA_ERROR for a fragment the decoder cannot decode', async () => {
    const frags = await h264Fragments({ frames: 30, gop: 30 });
    const broken = frags.clusters.map((c) => {
      const copy = Buffer.from(c.body);
      for (const child of readChildren(copy)) {
        if (child.id === ID.SimpleBlock) child.data.subarray(readBlockHeader(child.data).headerLength).fill(0xff);
      }
      return { ...c, body: copy };
    });
    await t.createStream('cam-broken');
    await sendBody(t.url, 'cam-broken', body({ ...frags, clusters: broken }), { producerStartMs: START });
    const out = await t.archived.send(new GetImagesCommand(request({ StreamName: 'cam-broken', EndTimestamp: at(1000), SamplingInterval: 500 })));
    expect(out.Images!.map((i) => [i.TimeStamp!.getTime() - START, i.Error])).toEqual([[0, 'MEDIA_ERROR'], [500, 'MEDIA_ERROR']]);
  });

  it('measures the cost of one decoded image (not asserted)', async () => {
    // A size not requested before, so every image is a cache miss.
    const n = 10;
    const t0 = performance.now();
    const out = await t.archived.send(new GetImagesCommand(request({ WidthPixels: 200, HeightPixels: 150 })));
    const ms = performance.now() - t0;
    expect(out.Images!.filter((i) => i.ImageContent)).toHaveLength(n);
    const t1 = performance.now();
    await t.archived.send(new GetImagesCommand(request({ WidthPixels: 200, HeightPixels: 150 })));
    const cached = performance.now() - t1;
    console.log(`GetImages: ${n} JPEG 200x150 from 320x240 H.264: ${ms.toFixed(0)} ms (${(ms / n).toFixed(1)} ms/image, 2 ffmpeg at a time); cached repeat ${cached.toFixed(0)} ms`);
  });
});
