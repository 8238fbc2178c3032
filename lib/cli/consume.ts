/**
 * `openkvs consume`: reads a stream live (or from a time) frame by frame and prints what it reads
 * — a progress line on stderr, with `--frames` one JSON line per frame on stdout — or exports a
 * time range to one MKV/MP4 file with `--output`. `--checkpoint FILE` resumes where the last
 * run stopped; `--images DIR --every 1s` decodes and writes one PNG per interval, named by the
 * frame's producer timestamp. Ctrl-C stops cleanly (the checkpoint is saved).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodePng } from '../consumer/png.js';
import { exportRange } from '../consumer/range-reader.js';
import { VideoDecoder } from '../consumer/video-decoder.js';
import { StreamReader, type StartPosition, type StreamFrame } from '../consumer/stream-reader.js';
import type { ConsumedFragment } from '../consumer/get-media-parser.js';

export interface ConsumeCommandOptions {
  streamName: string;
  endpoint?: string;
  region?: string;
  caCert?: string;
  start: string;
  end?: string;
  frames: boolean;
  output?: string;
  checkpoint?: string;
  count?: number;
  /** Write a PNG of a decoded frame every `everyMs` into this folder. */
  images?: string;
  everyMs: number;
  quiet: boolean;
}

/** 1s, 500ms, 2m or plain milliseconds. */
export function parseDuration(value: string, flag = '--every'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(value);
  if (!m) throw new Error(`${flag}: expected a duration such as 1s, 500ms, 2m or 1h, got "${value}"`);
  const n = Number(m[1]) * (m[2] === 's' ? 1000 : m[2] === 'm' ? 60_000 : m[2] === 'h' ? 3_600_000 : 1);
  if (n < 1) throw new Error(`${flag}: expected at least 1 ms, got "${value}"`);
  return Math.round(n);
}

/** now | earliest | an ISO 8601 time | epoch seconds. */
export function parseStart(value: string): StartPosition {
  if (value === 'now' || value === 'earliest') return value;
  return parseTime(value, '--start');
}

export function parseTime(value: string, flag: string): Date {
  const d = /^\d+(\.\d+)?$/.test(value) ? new Date(Number(value) * 1000) : new Date(value);
  if (Number.isNaN(d.getTime())) throw new Error(`${flag}: expected now, earliest, an ISO 8601 time or epoch seconds, got "${value}"`);
  return d;
}

export function consumeProgressLine(s: { frames: number; fragments: number; bytes: number; connections: number }, last: ConsumedFragment | undefined, elapsedMs: number): string {
  return [
    `frames ${s.frames}`,
    `fragments ${s.fragments}`,
    `${((s.bytes * 8) / Math.max(1, elapsedMs)).toFixed(0)} kbit/s`,
    `behind ${last?.millisBehindNow ?? '-'} ms`,
    `last ${last?.producerTimestampMs === undefined ? '-' : new Date(last.producerTimestampMs).toISOString()}`,
    ...(s.connections > 1 ? [`reconnects ${s.connections - 1}`] : []),
  ].join(' | ');
}

const source = (o: ConsumeCommandOptions) => ({
  streamName: o.streamName,
  ...(o.endpoint ? { endpoint: o.endpoint } : {}),
  ...(o.region ? { region: o.region } : {}),
  ...(o.caCert ? { caCert: o.caCert } : {}),
});

export async function runConsume(o: ConsumeCommandOptions): Promise<number> {
  if (o.output) {
    const format = o.output.endsWith('.mp4') ? 'mp4' : o.output.endsWith('.mkv') || o.output.endsWith('.webm') ? 'mkv' : undefined;
    if (!format) throw new Error(`--output: expected a .mkv or .mp4 file, got "${o.output}"`);
    if (!o.end) throw new Error('--output needs --end (the end of the range to export)');
    const start = o.start === 'now' || o.start === 'earliest' ? new Date(o.start === 'now' ? Date.now() : 0) : parseTime(o.start, '--start');
    const r = await exportRange({ ...source(o), start, end: parseTime(o.end, '--end'), format, output: o.output });
    process.stderr.write(`openkvs consume: wrote ${o.output}: ${r.fragments} fragments, ${r.frames} frames, ${(r.durationMs / 1000).toFixed(1)} s, ${r.bytes} bytes\n`);
    return 0;
  }

  const reader = new StreamReader({ ...source(o), start: parseStart(o.start), ...(o.checkpoint ? { checkpoints: o.checkpoint } : {}) });
  const started = Date.now();
  let last: ConsumedFragment | undefined;
  reader.on('fragment', (f) => (last = f));
  reader.on('reconnect', (r) => process.stderr.write(`\nopenkvs consume: reconnecting in ${r.delayMs} ms${r.error ? ` (${r.error.message})` : ''}\n`));
  const progress = setInterval(() => {
    if (!o.quiet) process.stderr.write(`\r${consumeProgressLine(reader.stats, last, Date.now() - started)}\x1b[K`);
  }, 1000);
  const stop = () => reader.close();
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  let seen = 0;
  let decoder: VideoDecoder | undefined;
  let images = 0;
  if (o.images) mkdirSync(o.images, { recursive: true });
  try {
    for await (const f of reader.frames()) {
      if (o.frames) process.stdout.write(`${frameLine(f)}\n`);
      const track = f.fragment.tracks.find((t) => t.number === f.track);
      if (o.images && track?.codecId.startsWith('V_') && (decoder || f.keyframe)) {
        if (!decoder) {
          decoder = new VideoDecoder({ codecId: track.codecId as 'V_MPEG4/ISO/AVC', codecPrivate: track.codecPrivate!, format: 'RGB', everyMs: o.everyMs, dropToLive: true });
          const dir = o.images;
          decoder.on('frame', (img) => {
            writeFileSync(path.join(dir, `${new Date(img.timestampMs).toISOString().replace(/:/g, '-')}.png`), encodePng(img));
            images++;
          });
        }
        decoder.push(f);
      }
      if (o.count !== undefined && ++seen >= o.count) break;
    }
    await decoder?.end();
  } finally {
    await decoder?.close();
    if (o.images) process.stderr.write(`\nopenkvs consume: wrote ${images} images to ${o.images}`);
    clearInterval(progress);
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    if (!o.quiet) process.stderr.write(`\r${consumeProgressLine(reader.stats, last, Date.now() - started)}\x1b[K\n`);
  }
  return 0;
}

export function frameLine(f: StreamFrame): string {
  return JSON.stringify({
    track: f.track,
    timestamp: new Date(f.timestampMs).toISOString(),
    timestampMs: f.timestampMs,
    keyframe: f.keyframe,
    size: f.data.length,
    fragmentNumber: f.fragmentNumber,
  });
}
