/**
 * Batch reading of a time range (ListFragments + GetMediaForFragmentList) and its export to one
 * playable MKV / MP4, checked with ffprobe; and the `openkvs consume` command.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConsumerError } from '../../lib/errors.js';
import { exportRange, readRange, type RangeFragment } from '../../lib/consumer/range-reader.js';
import { ffprobePackets } from '../helpers/media.js';
import { awsEnv, gstLaunch } from '../helpers/gst.js';
import { credentials, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);

describe('consumer: time ranges', () => {
  let t: TestServer;
  let all: RangeFragment[] = [];
  const src = () => ({ streamName: 'range', endpoint: t.url, region: 'us-east-1', credentials });
  beforeAll(async () => {
    t = await startTestServer();
    await t.createStream('range');
    const up = gstLaunch(
      `videotestsrc num-buffers=180 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 speed-preset=ultrafast ! h264parse ! kvssink stream-name=range endpoint=${t.url}`,
      awsEnv,
    );
    expect(await up.exited, up.output()).toBe(0);
    for await (const f of readRange({ ...src(), start: new Date(Date.now() - 3_600_000), end: new Date(Date.now() + 60_000) })) all.push(f);
  });
  afterAll(() => t?.close());

  it('lists and reads every fragment of a range in order, with listing metadata', () => {
    expect(all.length).toBe(6);
    expect(all.map((f) => f.frames.length)).toEqual([30, 30, 30, 30, 30, 30]);
    for (let i = 1; i < all.length; i++) expect(all[i]!.producerTimestampMs!).toBeGreaterThan(all[i - 1]!.producerTimestampMs!);
    expect(all.every((f) => f.durationMs >= 966 && f.durationMs <= 1000 && f.sizeBytes > 0)).toBe(true);
    expect(all[0]!.header.tracks.length).toBeGreaterThan(10);
  });

  it('reads only the fragments that start inside the range (inclusive)', async () => {
    const got = [];
    for await (const f of readRange({ ...src(), start: new Date(all[1]!.producerTimestampMs!), end: new Date(all[3]!.producerTimestampMs!) })) got.push(f.fragmentNumber);
    expect(got).toEqual([all[1]!.fragmentNumber, all[2]!.fragmentNumber, all[3]!.fragmentNumber]);
  });

  it('exports a range as one MKV and one MP4 that ffprobe reads frame for frame', async () => {
    const dir = tempDir();
    const range = { ...src(), start: new Date(all[0]!.producerTimestampMs!), end: new Date(all[5]!.producerTimestampMs!) };
    for (const format of ['mkv', 'mp4'] as const) {
      const file = path.join(dir, `range.${format}`);
      const r = await exportRange({ ...range, format, output: file });
      expect(r).toMatchObject({ fragments: 6, frames: 180 });
      expect(r.durationMs).toBeGreaterThan(5900);
      const packets = await ffprobePackets(file);
      expect(packets.length, format).toBe(180);
      expect(packets.filter((p) => p.keyframe).length, format).toBe(6);
      const { stdout } = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', file]);
      expect(stdout.trim()).toBe('h264,320,240');
      // Decodes without errors.
      const decoded = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
      expect(decoded.stderr).toBe('');
    }
    expect(readFileSync(path.join(dir, 'range.mp4')).subarray(4, 8).toString()).toBe('ftyp');
  });

  it('refuses an empty range, a reversed range and an unknown stream with typed errors', async () => {
    const err = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as ConsumerError);
    const empty = await err(exportRange({ ...src(), start: new Date(0), end: new Date(1000), format: 'mkv', output: path.join(tempDir(), 'x.mkv') }));
    expect(empty).toBeInstanceOf(ConsumerError);
    expect(empty!.message).toMatch(/no fragments/);
    await expect(exportRange({ ...src(), start: new Date(2000), end: new Date(1000), format: 'mkv', output: path.join(tempDir(), 'reversed.mkv') })).rejects.toThrow(/end: end must be later than start/);
    const unknown = await err((async () => {
      for await (const _ of readRange({ ...src(), streamName: 'nope', start: new Date(0), end: new Date() })) break;
    })());
    expect(unknown!.code).toBe('CONSUMER_STREAM_NOT_FOUND');
  });

  it('openkvs consume prints frames as JSON lines and exports a range with --output', async () => {
    const cli = path.resolve('dist/lib/cli/main.js');
    const env = { ...process.env, ...awsEnv, AWS_REGION: 'us-east-1' };
    const { stdout, stderr } = await run(process.execPath, [cli, 'consume', '--stream', 'range', '--endpoint', t.url, '--start', 'earliest', '--frames', '--count', '45'], { env });
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as { timestampMs: number; keyframe: boolean; size: number });
    expect(lines.length).toBe(45);
    expect(lines[0]!.keyframe).toBe(true);
    expect(lines[30]!.keyframe).toBe(true);
    expect(lines.every((l, i) => i === 0 || l.timestampMs > lines[i - 1]!.timestampMs)).toBe(true);
    expect(stderr).toMatch(/frames 45 \| fragments 1/);

    const out = path.join(tempDir(), 'cli.mp4');
    const end = String((all[5]!.producerTimestampMs! + 1) / 1000);
    const e = await run(process.execPath, [cli, 'consume', '--stream', 'range', '--endpoint', t.url, '--start', 'earliest', '--end', end, '--output', out], { env });
    expect(e.stderr).toMatch(/6 fragments, 180 frames/);
    expect((await ffprobePackets(out)).length).toBe(180);

    const images = tempDir();
    const im = await run(process.execPath, [cli, 'consume', '--stream', 'range', '--endpoint', t.url, '--start', 'earliest', '--images', images, '--every', '1s', '--count', '180', '--quiet'], { env });
    expect(im.stderr).toMatch(/wrote 6 images/);
    const pngs = readdirSync(images).sort();
    expect(pngs.length).toBe(6);
    const probe = await run('ffprobe', ['-v', 'error', '-show_entries', 'stream=codec_name,width,height', '-of', 'csv=p=0', path.join(images, pngs[0]!)]);
    expect(probe.stdout.trim()).toBe('png,320,240');
    expect(Date.parse(pngs[1]!.replace(/T(\d\d)-(\d\d)-/, 'T$1:$2:').replace('.png', '')) - Date.parse(pngs[0]!.replace(/T(\d\d)-(\d\d)-/, 'T$1:$2:').replace('.png', ''))).toBeGreaterThanOrEqual(1000);

    const bad = await run(process.execPath, [cli, 'consume', '--stream', 'range', '--endpoint', t.url, '--start', 'yesterday-ish'], { env }).catch((x: { stderr: string; code: number }) => x);
    expect((bad as { code: number }).code).toBe(1);
    expect((bad as { stderr: string }).stderr).toMatch(/--start: expected now, earliest/);
  });
});
