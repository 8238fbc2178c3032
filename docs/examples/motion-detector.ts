/**
 * A motion detector on a live stream: reads frames with StreamReader, decodes five per second to
 * small grey images with VideoDecoder, and prints the producer timestamp of every image that
 * differs enough from the one before it.
 *
 *   node dist/docs/examples/motion-detector.js --stream front-door --endpoint http://127.0.0.1:4567
 *
 * (In your own project, import from 'openkvs' instead of '../../lib/index.js'.)
 */
import { parseArgs } from 'node:util';
import { type DecodedFrame, StreamReader, VideoDecoder } from '../../lib/index.js';

const { values: o } = parseArgs({
  options: {
    stream: { type: 'string' },
    endpoint: { type: 'string' },
    region: { type: 'string', default: 'us-east-1' },
    start: { type: 'string', default: 'now' },
    threshold: { type: 'string', default: '4' }, // mean absolute difference of grey levels, 0-255
    seconds: { type: 'string' }, // stop after this much stream time
  },
});
if (!o.stream) throw new Error('--stream is required');

const reader = new StreamReader({
  streamName: o.stream,
  region: o.region,
  ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  start: o.start === 'earliest' ? 'earliest' : 'now',
});

let decoder: VideoDecoder | undefined;
let previous: DecodedFrame | undefined;
let firstMs: number | undefined;

function compare(frame: DecodedFrame): void {
  if (previous) {
    let sum = 0;
    for (let i = 0; i < frame.data.length; i++) sum += Math.abs(frame.data[i]! - previous.data[i]!);
    const score = sum / frame.data.length;
    if (score >= Number(o.threshold)) console.log(`motion ${new Date(frame.timestampMs).toISOString()} score ${score.toFixed(1)}`);
  }
  previous = frame;
}

for await (const frame of reader.frames()) {
  const track = frame.fragment.tracks.find((t) => t.number === frame.track);
  if (!track || !track.codecId.startsWith('V_')) continue; // video only
  if (!decoder) {
    if (!frame.keyframe) continue; // start decoding at a key frame
    decoder = new VideoDecoder({ codecId: track.codecId as 'V_MPEG4/ISO/AVC', codecPrivate: track.codecPrivate!, format: 'GRAY8', width: 160, height: 120, everyMs: 200 });
    decoder.on('frame', compare);
  }
  decoder.push(frame);
  firstMs ??= frame.timestampMs;
  if (o.seconds && frame.timestampMs - firstMs >= Number(o.seconds) * 1000) break;
}
await decoder?.end();
decoder?.close();
