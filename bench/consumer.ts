/**
 * `npm run bench:consumer` — the consumer library, all in one process with the server.
 *
 *   1. Archived parsing: 60 s of 1080p30 H.264 (pre-encoded, ~8 Mbit/s) ingested, read once with
 *      GetMediaForFragmentList into memory, then parsed by GetMediaParser (frames out) several
 *      times on one core: Mbit/s and frames/s of parsing alone. Then StreamReader from EARLIEST
 *      end to end over HTTP (server, SDK and parser in this process).
 *   2. Live frame latency: a 720p30 producer writing each frame at its own time (ABSOLUTE
 *      timecodes = the wall clock when due), read by 1 and by 20 StreamReaders (start NOW);
 *      latency = frame event time − the frame's producer timestamp.
 *   3. Decoding: the stored 1080p frames through VideoDecoder to RGB, full size and 640x360 (frames/s,
 *      CPU ms per frame; avdec uses its own threads, so CPU may exceed one core).
 *   4. Peak RSS of the process.
 *
 * Flags: --live-seconds N (default 10).
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GetMediaForFragmentListCommand, KinesisVideoArchivedMediaClient, ListFragmentsCommand } from '@aws-sdk/client-kinesis-video-archived-media';
import { type ConsumedFrame, GetMediaParser } from '../lib/consumer/get-media-parser.js';
import { VideoDecoder } from '../lib/consumer/video-decoder.js';
import type { TrackInfo } from '../lib/mkv/ebml.js';
import { StreamReader } from '../lib/consumer/stream-reader.js';
import { startServer } from '../lib/service/server.js';
import { ingestClip } from './lib/ingest.js';
import { createStream } from './lib/kvs.js';
import { type ClipSpec, ensureClip, loadClip } from './lib/media.js';
import { RssSampler } from './lib/proc.js';
import { fmtMs, formatTable, nowMs, sleep, summarize } from './lib/util.js';

const HD_SPEC: ClipSpec = { width: 1920, height: 1080, fps: 30, kbps: 8000, seconds: 10 };
const LIVE_SPEC: ClipSpec = { width: 1280, height: 720, fps: 30, kbps: 2000, seconds: 10 };
const credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const { values: flags } = parseArgs({ options: { 'live-seconds': { type: 'string' } } });
const liveSeconds = Number(flags['live-seconds'] ?? 10);

async function main(): Promise<void> {
  const rss = new RssSampler(process.pid);
  rss.start(200);
  const server = await startServer({ port: 0, dataDir: mkdtempSync(path.join(os.tmpdir(), 'openkvs-bench-consumer-')), logLevel: 'warn' });
  const rows: string[][] = [];
  const src = { endpoint: server.url, region: 'us-east-1', credentials };
  try {
    // 1. Archived.
    await createStream(server.url, 'hd');
    const hd = loadClip(await ensureClip(HD_SPEC), HD_SPEC);
    const t0 = Date.now() - 120_000;
    await ingestClip(server.url, 'hd', hd, t0, 6, false);
    const archived = new KinesisVideoArchivedMediaClient({ ...src, maxAttempts: 1 });
    const listed = await archived.send(
      new ListFragmentsCommand({ StreamName: 'hd', FragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(0), EndTimestamp: new Date() } } }),
    );
    const numbers = (listed.Fragments ?? []).map((f) => f.FragmentNumber!).sort();
    const res = await archived.send(new GetMediaForFragmentListCommand({ StreamName: 'hd', Fragments: numbers }));
    const payload = Buffer.from(await res.Payload!.transformToByteArray());
    archived.destroy();
    const CHUNK = 64 * 1024; // as a socket delivers it
    const passes = 5;
    let frames = 0;
    const cpu0 = process.cpuUsage();
    const s = performance.now();
    for (let p = 0; p < passes; p++) {
      const parser = new GetMediaParser({ onFrame: () => frames++ }, { keepFrames: false });
      for (let at = 0; at < payload.length; at += CHUNK) parser.push(payload.subarray(at, at + CHUNK));
      parser.end();
    }
    const sec = (performance.now() - s) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const gbps = (payload.length * passes * 8) / sec / 1e9;
    rows.push([
      `GetMediaParser over stored 1080p (${(payload.length / 1e6).toFixed(1)} MB, ${numbers.length} fragments, ${passes} passes)`,
      `${gbps.toFixed(2)} Gbit/s, ${Math.round(frames / sec)} frames/s, CPU ${((cpu.user + cpu.system) / 1e6 / sec * 100).toFixed(0)} %`,
      gbps >= 1 ? 'goal >= 1 Gbit/s per core: met' : 'goal >= 1 Gbit/s per core: NOT met',
    ]);

    const total = frames / passes;
    const reader = new StreamReader({ ...src, streamName: 'hd', start: 'earliest', checkpoints: false });
    let got = 0;
    const s2 = performance.now();
    for await (const _ of reader.frames()) if (++got >= total) break;
    const sec2 = (performance.now() - s2) / 1000;
    rows.push([
      'StreamReader EARLIEST over HTTP (server in-process)',
      `${Math.round(got / sec2)} frames/s, ${((reader.stats.bytes * 8) / sec2 / 1e6).toFixed(0)} Mbit/s`,
      '',
    ]);

    // 2. Live latency.
    const live = loadClip(await ensureClip(LIVE_SPEC), LIVE_SPEC);
    for (const readers of [1, 20]) {
      const stream = `live-${readers}`;
      await createStream(server.url, stream);
      const latencies: number[] = [];
      let measuring = false;
      const rs = Array.from({ length: readers }, () => new StreamReader({ ...src, streamName: stream, start: 'now', checkpoints: false }));
      const runs = rs.map((r) => {
        r.on('frame', (f) => {
          if (measuring) latencies.push(nowMs() - f.timestampMs);
        });
        return r.run();
      });
      await sleep(500);
      let stop = false;
      const loops = Math.ceil((liveSeconds + 3) / (live.durationMs / 1000));
      const producer = ingestClip(server.url, stream, live, Date.now(), loops, true, () => stop);
      await sleep(2000); // warm-up
      measuring = true;
      await sleep(liveSeconds * 1000);
      measuring = false;
      stop = true;
      await producer;
      rs.forEach((r) => r.close());
      await Promise.all(runs);
      const l = summarize(latencies);
      rows.push([
        `Live frame latency, ${readers} reader${readers > 1 ? 's' : ''} (producer write -> frame event), 720p30`,
        `p50 ${fmtMs(l.p50, 2)} / p99 ${fmtMs(l.p99, 2)} / max ${fmtMs(l.max, 2)} ms (${l.n} frames)`,
        l.p99 < 10 ? 'goal p99 < 10 ms: met' : 'goal p99 < 10 ms: NOT met',
      ]);
    }
    // 3. Decoding the stored 1080p frames (one pass of the 10 s clip, 300 frames).
    const parsed: ConsumedFrame[] = [];
    let track: TrackInfo | undefined;
    const p = new GetMediaParser({ onFrame: (f, frag) => { if (parsed.length < 300) parsed.push(f); track ??= frag.tracks[0]; } });
    p.push(payload);
    p.end();
    for (const size of [{}, { width: 640, height: 360 }]) {
      const d = new VideoDecoder({ codecId: track!.codecId as 'V_MPEG4/ISO/AVC', codecPrivate: track!.codecPrivate!, format: 'RGB', ...size });
      let decoded = 0;
      d.on('frame', () => decoded++);
      const c0 = process.cpuUsage();
      const t1 = performance.now();
      for (const f of parsed) d.push(f);
      await d.end();
      const secs = (performance.now() - t1) / 1000;
      const c = process.cpuUsage(c0);
      await d.close();
      const fps = decoded / secs;
      rows.push([
        `Decode 1080p30 H.264 -> RGB ${'width' in size ? '640x360' : '1920x1080'} (${decoded} frames)`,
        `${fps.toFixed(0)} frames/s (${(fps / 30).toFixed(1)}x real time), CPU ${(((c.user + c.system) / 1000) / decoded).toFixed(1)} ms per frame`,
        fps >= 60 ? 'goal >= 2x real time: met' : 'goal >= 2x real time: NOT met',
      ]);
    }
  } finally {
    await server.close();
    rss.stop();
  }
  rows.push(['Peak RSS (server + readers + producer, one process)', `${(rss.peak / 1024 / 1024).toFixed(0)} MiB`, '']);
  console.log(formatTable(['measure', 'result', 'note'], rows));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
