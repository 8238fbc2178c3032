/**
 * The pipeline descriptions of the bridge benchmark. The same text runs in the Node bridge
 * (`new Pipeline(description, { endpoint })`) and under gst-launch-1.0 (with `endpoint=URL` on
 * each kvssink and the credentials in the environment).
 */
import { CAPS_640x480, PATTERN, X264_PACED } from './clip.js';

/** kvssink with a stream name; `endpoint` only for gst-launch (the bridge sets it through options). */
export function kvssink(stream: string, endpoint?: string, name?: string): string {
  return `kvssink${name ? ` name=${name}` : ''} stream-name=${stream}${endpoint ? ` endpoint=${endpoint}` : ''}`;
}

/**
 * Many tiny fragments, as fast as the encoder goes: every frame is a key frame and so a fragment
 * (3 acks each: BUFFERING, RECEIVED, PERSISTED). 30 fps media time: N frames are N/30 s of media,
 * which must stay under the server's 10-minute future-timestamp limit (N <= 18000). The encoder
 * outruns the upload, so the buffer holds up to 600 s of media (the default 120 s made kvssink
 * drop the oldest fragments: fewer acks, for reasons that have nothing to do with the bridge).
 */
export function ackPipeline(frames: number, stream: string, endpoint?: string): string {
  return (
    `videotestsrc num-buffers=${frames} ! video/x-raw,format=I420,width=64,height=48,framerate=30/1 ! ` +
    `x264enc key-int-max=1 speed-preset=ultrafast tune=zerolatency ! h264parse ! ${kvssink(stream, endpoint)} buffer-duration=600`
  );
}

export const FLOOD_RATE = 48_000;
export const FLOOD_SAMPLES_PER_BUFFER = 4800;

/**
 * Bus messages without the network: `level` posts one element message ("level") every
 * `intervalNs` of audio. Unpaced, audiotestsrc makes audio far faster than real time; live, it
 * offers a steady rate of 1e9 / intervalNs messages per second.
 */
export function floodPipeline(opts: { buffers: number; intervalNs: number; live: boolean; samplesPerBuffer?: number }): string {
  const spb = opts.samplesPerBuffer ?? FLOOD_SAMPLES_PER_BUFFER;
  return (
    `audiotestsrc${opts.live ? ' is-live=true' : ''} num-buffers=${opts.buffers} samplesperbuffer=${spb} ! ` +
    `audio/x-raw,rate=${FLOOD_RATE},channels=1 ! level interval=${opts.intervalNs} post-messages=true ! fakesink sync=${opts.live}`
  );
}

/** level messages a flood pipeline posts: one per interval of audio (plus, at most, one at EOS). */
export function floodExpected(opts: { buffers: number; intervalNs: number; samplesPerBuffer?: number }): number {
  const spb = opts.samplesPerBuffer ?? FLOOD_SAMPLES_PER_BUFFER;
  const intervalFrames = Math.max(1, Math.round((FLOOD_RATE * opts.intervalNs) / 1e9));
  return Math.floor((opts.buffers * spb) / intervalFrames);
}

export type PacedSource = 'x264' | 'file';

/** One real-time paced branch: live test source + x264, or the pre-encoded clip paced by identity sync=true. */
export function pacedBranch(source: PacedSource, stream: string, clipFile: string, endpoint?: string): string {
  const head =
    source === 'x264'
      ? `videotestsrc is-live=true ${PATTERN} ! ${CAPS_640x480} ! ${X264_PACED} ! h264parse`
      : `filesrc location=${clipFile} ! h264parse ! identity sync=true`;
  return `${head} ! ${kvssink(stream, endpoint)}`;
}
