/**
 * fMP4 remux of real H.264, H.264 + AAC and H.265 (GStreamer) Matroska fragments: boxes parsed back, and ffprobe on
 * init + media segments.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { clusterElement, splitFragments, type MkvFragments } from '../../lib/mkv/fragments.js';
import { initSegment, mediaSegment, parseBoxes } from '../../lib/service/playback/fmp4.js';
import { fragmentRuns, streamLayout, type StreamLayout } from '../../lib/service/playback/remux.js';
import type { StoredFragment } from '../../lib/service/storage/fragment-store.js';
import { h264Fragments } from '../helpers/media.js';

const run = promisify(execFile);
let frags: MkvFragments;
let layout: StreamLayout;

const fakeFragment = (i: number, startMs: number): StoredFragment => ({
  seq: i + 1, fragmentNumber: String(i + 1), streamId: 1, producerTimestampMs: startMs, serverTimestampMs: startMs,
  durationMs: 1000, sizeBytes: 0, headerId: 1, fileId: 1, offset: 0, length: 0,
}) as StoredFragment;

beforeAll(async () => {
  frags = await h264Fragments({ frames: 90, gop: 30 });
  layout = streamLayout({ ebml: frags.ebml, tracks: Buffer.concat([frags.info, frags.tracks]) });
});

const child = (buf: Buffer, type: string): Buffer => {
  const b = parseBoxes(buf).find((x) => x.type === type);
  if (!b) throw new Error(`no ${type}`);
  return b.data;
};

describe('fMP4 writer', () => {
  it('builds an init segment with avc1/avcC from the Tracks element', () => {
    expect(layout.tracks).toHaveLength(1);
    const t = layout.tracks[0]!;
    expect(t.codec).toBe('avc1');
    expect([t.width, t.height]).toEqual([320, 240]);
    expect(t.codecString).toMatch(/^avc1\.[0-9a-f]{6}$/);
    const init = initSegment(layout.tracks);
    expect(parseBoxes(init).map((b) => b.type)).toEqual(['ftyp', 'moov']);
    const moov = child(init, 'moov');
    expect(parseBoxes(moov).map((b) => b.type)).toEqual(['mvhd', 'trak', 'mvex']);
    const stbl = child(child(child(child(moov, 'trak'), 'mdia'), 'minf'), 'stbl');
    expect(parseBoxes(stbl).map((b) => b.type)).toEqual(['stsd', 'stts', 'stsc', 'stsz', 'stco']);
    const stsd = child(stbl, 'stsd');
    const avc1 = parseBoxes(stsd.subarray(8))[0]!;
    expect(avc1.type).toBe('avc1');
    expect(avc1.data.readUInt16BE(24)).toBe(320);
    const avcC = child(avc1.data.subarray(78), 'avcC');
    expect(avcC.equals(t.config)).toBe(true);
  });

  it('writes one moof/mdat per fragment with durations, sizes, key flags and a data offset into mdat', () => {
    const stored = clusterElement(frags.clusters[0]!, 0);
    const runs = fragmentRuns(layout, stored, fakeFragment(0, 5000), 0);
    expect(runs).toHaveLength(1);
    const r = runs[0]!;
    expect(r.baseDecodeTime).toBe(5000 * 90);
    expect(r.samples).toHaveLength(30);
    expect(r.samples.map((s) => s.keyframe)).toEqual([true, ...Array<boolean>(29).fill(false)]);
    const total = r.samples.reduce((a, s) => a + s.duration, 0);
    expect(Math.abs(total - 90_000)).toBeLessThan(200);
    const seg = mediaSegment(7, runs);
    const [moof, mdat] = parseBoxes(seg);
    expect([moof!.type, mdat!.type]).toEqual(['moof', 'mdat']);
    expect(child(moof!.data, 'mfhd').readUInt32BE(4)).toBe(7);
    const traf = child(moof!.data, 'traf');
    expect(child(traf, 'tfdt').readBigUInt64BE(4)).toBe(450_000n);
    const trun = child(traf, 'trun');
    expect(trun.readUInt32BE(4)).toBe(30);
    const dataOffset = trun.readInt32BE(8);
    expect(dataOffset).toBe(moof!.data.length + 8 + 8);
    expect(seg.subarray(dataOffset, dataOffset + r.samples[0]!.data.length).equals(r.samples[0]!.data)).toBe(true);
    expect(trun.readUInt32BE(12 + 4)).toBe(r.samples[0]!.data.length);
  });

  it('init + media segments play in ffprobe: frame count, key frames, timestamps', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'openkvs-fmp4-'));
    const parts = [initSegment(layout.tracks)];
    frags.clusters.forEach((c, i) => {
      parts.push(mediaSegment(i + 1, fragmentRuns(layout, clusterElement(c, 0), fakeFragment(i, 1000 * i), 0)));
    });
    const file = path.join(dir, 'out.mp4');
    writeFileSync(file, Buffer.concat(parts));
    const { stdout } = await run('ffprobe', ['-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'json', file]);
    const packets = (JSON.parse(stdout) as { packets: Array<{ pts_time: string; flags: string }> }).packets;
    expect(packets).toHaveLength(90);
    expect(packets.filter((p) => p.flags.includes('K')).length).toBe(3);
    expect(Number(packets[0]!.pts_time)).toBeCloseTo(0, 2);
    expect(Number(packets[30]!.pts_time)).toBeCloseTo(1, 2);
    expect(Number(packets[89]!.pts_time)).toBeCloseTo(89 / 30, 1);
    const dec = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
    expect(dec.stderr).toBe('');
  });
});

describe('fMP4 writer with H.264 + AAC', () => {
  it('muxes both tracks (avc1 + mp4a/esds); ffprobe reads every video frame and audio packet', async () => {
    const av = await h264Fragments({ frames: 60, gop: 30, audio: true });
    const l = streamLayout({ ebml: av.ebml, tracks: Buffer.concat([av.info, av.tracks]) });
    expect(l.tracks.map((t) => [t.codec, t.codecString])).toEqual([['avc1', expect.stringMatching(/^avc1\./)], ['mp4a', 'mp4a.40.2']]);
    expect(l.tracks[1]).toMatchObject({ sampleRate: 44100, channels: 1, timescale: 44100 });
    const parts = [initSegment(l.tracks)];
    let audioIn = 0;
    av.clusters.forEach((c, i) => {
      const runs = fragmentRuns(l, clusterElement(c, 0), fakeFragment(i, c.timecode), 0);
      audioIn += runs.find((r) => r.track.kind === 'audio')?.samples.length ?? 0;
      parts.push(mediaSegment(i + 1, runs));
    });
    const dir = mkdtempSync(path.join(os.tmpdir(), 'openkvs-fmp4-'));
    const file = path.join(dir, 'av.mp4');
    writeFileSync(file, Buffer.concat(parts));
    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=codec_name,nb_read_packets,sample_rate', '-of', 'json', file]);
    const streams = (JSON.parse(stdout) as { streams: Array<{ codec_name: string; nb_read_packets: string }> }).streams;
    expect(streams.map((s) => [s.codec_name, Number(s.nb_read_packets)])).toEqual([['h264', 60], ['aac', audioIn]]);
    expect(audioIn).toBeGreaterThan(80);
    const dec = await run('ffmpeg', ['-v', 'error', '-i', file, '-f', 'null', '-']);
    expect(dec.stderr).toBe('');
  });
});

describe('fMP4 writer with H.265', () => {
  it('writes hvc1/hvcC; ffprobe decodes every frame', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'openkvs-fmp4-'));
    const mkv = path.join(dir, 'hevc.mkv');
    await run('gst-launch-1.0', [
      '-q', '-e', 'videotestsrc', 'num-buffers=60', '!', 'video/x-raw,format=I420,width=320,height=240,framerate=30/1', '!',
      'x265enc', 'tune=zerolatency', 'key-int-max=30', 'speed-preset=ultrafast', '!', 'h265parse', '!',
      'matroskamux', 'streamable=true', 'min-cluster-duration=0', '!', 'filesink', `location=${mkv}`,
    ]);
    const hv = splitFragments(readFileSync(mkv));
    const l = streamLayout({ ebml: hv.ebml, tracks: Buffer.concat([hv.info, hv.tracks]) });
    expect(l.tracks[0]).toMatchObject({ codec: 'hvc1', width: 320, height: 240 });
    expect(l.tracks[0]!.codecString).toMatch(/^hvc1\.\d+\.[0-9a-f]+\.[LH]\d+\.B0$/);
    const parts = [initSegment(l.tracks)];
    hv.clusters.forEach((c, i) => parts.push(mediaSegment(i + 1, fragmentRuns(l, clusterElement(c, 0), fakeFragment(i, c.timecode), 0))));
    const file = path.join(dir, 'hevc.mp4');
    writeFileSync(file, Buffer.concat(parts));
    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_frames', '-show_entries', 'stream=codec_name,codec_tag_string,nb_read_frames', '-of', 'json', file]);
    expect((JSON.parse(stdout) as { streams: unknown[] }).streams).toEqual([{ codec_name: 'hevc', codec_tag_string: 'hvc1', nb_read_frames: '60' }]);
  });
});
