/**
 * The pre-encoded input of the bridge benchmark's file variant: a raw H.264 byte-stream (Annex B)
 * encoded once by GStreamer with the same encoder settings as the live variant, cached under
 * `.bench-cache/`.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { encodeOnce } from '../lib/encode-once.js';
import { repoRoot } from '../lib/util.js';

/** The test picture: a moving SMPTE pattern, so that x264 really spends its bitrate. */
export const PATTERN = 'pattern=smpte horizontal-speed=4';
export const CAPS_640x480 = 'video/x-raw,format=I420,width=640,height=480,framerate=30/1';
/** The encoder of the paced pipelines (live and pre-encoded). */
export const X264_PACED = 'x264enc bitrate=1000 tune=zerolatency speed-preset=ultrafast key-int-max=30';

export interface BridgeClip {
  file: string;
  seconds: number;
  bytes: number;
  /** The gst-launch-1.0 command line that made it. */
  command: string;
}

export async function ensureBridgeClip(seconds: number, log: (msg: string) => void): Promise<BridgeClip> {
  const describe = (location: string) =>
    `-q -e videotestsrc num-buffers=${seconds * 30} ${PATTERN} ! ${CAPS_640x480} ! ${X264_PACED} ! video/x-h264,stream-format=byte-stream ! filesink location=${location}`;
  const file = await encodeOnce(`bridge-640x480-30fps-1000k-${seconds}s.h264`, (location) => describe(location).split(' '), log);
  return { file, seconds, bytes: statSync(file).size, command: `gst-launch-1.0 ${describe(path.relative(repoRoot(), file))}` };
}
