/**
 * The kvssink benchmark's input: a raw H.264 byte-stream (Annex B) file encoded once by GStreamer
 * and cached under `.bench-cache/`.
 */
import { readFileSync, statSync } from 'node:fs';
import { encodeOnce } from '../lib/encode-once.js';

export interface H264ClipSpec {
  width: number;
  height: number;
  fps: number;
  /** x264enc bitrate, kbit/s. */
  kbps: number;
  seconds: number;
}

export const CLIP_1080P30_4MBPS: H264ClipSpec = { width: 1920, height: 1080, fps: 30, kbps: 4000, seconds: 60 };

export interface H264Clip {
  file: string;
  spec: H264ClipSpec;
  bytes: number;
  frames: number;
  keyFrames: number;
  /** Media duration, s (frames / fps). */
  seconds: number;
  mbps: number;
  /** The gst-launch-1.0 arguments that encoded it (location= is the cached file). */
  encodeArgs: string[];
}

export function encodeArgs(spec: H264ClipSpec, location: string): string[] {
  return [
    '-q', '-e',
    'videotestsrc', `num-buffers=${spec.fps * spec.seconds}`, 'pattern=smpte', '!',
    `video/x-raw,format=I420,width=${spec.width},height=${spec.height},framerate=${spec.fps}/1`, '!',
    'x264enc', `bitrate=${spec.kbps}`, `key-int-max=${spec.fps}`, 'speed-preset=ultrafast', 'tune=zerolatency', '!',
    'video/x-h264,stream-format=byte-stream', '!',
    'filesink', `location=${location}`,
  ];
}

/** Counts the pictures (first slice of each, NAL type 1 or 5 with first_mb_in_slice = 0) and IDR pictures of an Annex B stream. */
export function countPictures(data: Buffer): { frames: number; keyFrames: number } {
  let frames = 0;
  let keyFrames = 0;
  let pos = data.indexOf(Buffer.from([0, 0, 1]));
  while (pos >= 0 && pos + 4 < data.length) {
    const type = data[pos + 3]! & 0x1f;
    // first_mb_in_slice is ue(v): value 0 is the single bit "1".
    if ((type === 1 || type === 5) && (data[pos + 4]! & 0x80) !== 0) {
      frames++;
      if (type === 5) keyFrames++;
    }
    pos = data.indexOf(Buffer.from([0, 0, 1]), pos + 3);
  }
  return { frames, keyFrames };
}

/** The cached clip for a spec, encoding it first if needed. */
export async function ensureH264Clip(spec: H264ClipSpec, log: (msg: string) => void): Promise<H264Clip> {
  const name = `sink-${spec.width}x${spec.height}-${spec.fps}fps-${spec.kbps}k-${spec.seconds}s-smpte.h264`;
  const file = await encodeOnce(name, (location) => encodeArgs(spec, location), log);
  const data = readFileSync(file);
  const { frames, keyFrames } = countPictures(data);
  if (frames === 0 || keyFrames === 0) throw new Error(`${file}: no H.264 pictures found; delete it to re-encode`);
  const seconds = frames / spec.fps;
  const bytes = statSync(file).size;
  return { file, spec, bytes, frames, keyFrames, seconds, mbps: (bytes * 8) / seconds / 1e6, encodeArgs: encodeArgs(spec, file) };
}
