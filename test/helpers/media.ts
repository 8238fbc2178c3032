/**
 * Real media for tests, made by GStreamer on the fly and cached per process in a temp folder.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type MkvFragments, splitFragments } from '../../lib/mkv/fragments.js';

const run = promisify(execFile);
const dir = mkdtempSync(path.join(os.tmpdir(), 'openkvs-media-'));
const cache = new Map<string, Promise<Buffer>>();

export interface H264Options {
  /** Number of video frames (default 90). */
  frames?: number;
  /** Frames per second (default 30). */
  fps?: number;
  /** Key frame interval in frames (default 30: 1 s fragments at 30 fps). */
  gop?: number;
  width?: number;
  height?: number;
  /** Encoder bitrate, kbit/s (default 500). */
  bitrate?: number;
  /** Add an AAC audio track. */
  audio?: boolean;
}

/** H.264 (and optionally AAC) in Matroska, as `videotestsrc ! x264enc ! matroskamux` writes it. */
export function h264Mkv(o: H264Options = {}): Promise<Buffer> {
  const frames = o.frames ?? 90;
  const fps = o.fps ?? 30;
  const gop = o.gop ?? 30;
  const width = o.width ?? 320;
  const height = o.height ?? 240;
  const bitrate = o.bitrate ?? 500;
  const key = JSON.stringify([frames, fps, gop, width, height, bitrate, !!o.audio]);
  let p = cache.get(key);
  if (!p) {
    const file = path.join(dir, `h264-${cache.size}.mkv`);
    const seconds = frames / fps;
    const args = [
      '-q', '-e',
      'videotestsrc', `num-buffers=${frames}`, '!',
      `video/x-raw,format=I420,width=${width},height=${height},framerate=${fps}/1`, '!',
      'x264enc', 'tune=zerolatency', `key-int-max=${gop}`, `bitrate=${bitrate}`, 'speed-preset=ultrafast', '!',
      'h264parse', '!', 'mux.',
      'matroskamux', 'name=mux', 'streamable=true', 'min-cluster-duration=0', '!',
      'filesink', `location=${file}`,
    ];
    if (o.audio) {
      args.push(
        'audiotestsrc', `num-buffers=${Math.ceil((seconds * 44100) / 1024)}`, 'samplesperbuffer=1024', '!',
        'audio/x-raw,rate=44100,channels=1', '!', 'avenc_aac', '!', 'aacparse', '!', 'mux.',
      );
    }
    p = run('gst-launch-1.0', args).then(() => readFileSync(file));
    cache.set(key, p);
  }
  return p;
}

export async function h264Fragments(o: H264Options = {}): Promise<MkvFragments> {
  return splitFragments(await h264Mkv(o));
}

export interface ProbedPacket {
  ptsTime: number;
  keyframe: boolean;
}

/** Video packets of an MKV file or buffer as ffprobe reads them. */
export async function ffprobePackets(input: Buffer | string): Promise<ProbedPacket[]> {
  let file = input as string;
  if (Buffer.isBuffer(input)) {
    file = path.join(dir, `probe-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.mkv`);
    writeFileSync(file, input);
  }
  const { stdout } = await run('ffprobe', [
    '-v', 'error', '-select_streams', 'v:0', '-show_entries', 'packet=pts_time,flags', '-of', 'json', file,
  ]);
  const parsed = JSON.parse(stdout) as { packets?: Array<{ pts_time: string; flags: string }> };
  return (parsed.packets ?? []).map((p) => ({ ptsTime: Number(p.pts_time), keyframe: p.flags.includes('K') }));
}
