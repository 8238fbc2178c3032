/**
 * `npm run bench:playback` — playback benchmark of openkvs.
 *
 *   1. Live HLS latency: a 720p 30 fps H.264 stream (1 s fragments) written frame by frame at the
 *      frames' real time (ABSOLUTE timecodes = wall clock when written), watched in Debian's
 *      headless Chromium through the web console (hls.js on a LIVE session). For each displayed
 *      frame, `requestVideoFrameCallback` gives its media time and expected display time; the
 *      frame's producer timestamp is read off the hls.js fragment holding it
 *      (EXT-X-PROGRAM-DATE-TIME = the fragment's producer timestamp, + offset into the fragment).
 *      Latency = display time − producer timestamp (same machine, same clock).
 *   2. GetClip of a 1-minute 1080p range: 60 s of pre-encoded 1080p 4 Mbit/s H.264 ingested first,
 *      then POST /getClip over that minute, timed to the last byte.
 *   3. GetImages: JPEG at 1 s sampling over the same minute (full size and 320x180), time per image.
 *
 * Flags: --live-seconds N (default 20), --skip-live.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { startServer } from '../lib/service/server.js';
import { ingestClip as ingest } from './lib/ingest.js';
import { type ClipSpec, ensureClip, loadClip } from './lib/media.js';
import { fmtMs, formatTable, sleep, summarize } from './lib/util.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
];
const LIVE_SPEC: ClipSpec = { width: 1280, height: 720, fps: 30, kbps: 2000, seconds: 10 };
const HD_SPEC: ClipSpec = { width: 1920, height: 1080, fps: 30, kbps: 4000, seconds: 10 };

const { values: flags } = parseArgs({ options: { 'live-seconds': { type: 'string' }, 'skip-live': { type: 'boolean' } } });
const tempDir = (): string => mkdtempSync(path.join(os.tmpdir(), 'openkvs-bench-playback-'));
const liveSeconds = Number(flags['live-seconds'] ?? 20);

async function call(url: string, op: string, body: unknown): Promise<Response> {
  const res = await fetch(`${url}/${op}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${op}: ${res.status} ${await res.text()}`);
  return res;
}

async function main(): Promise<void> {
  const server = await startServer({ port: 0, dataDir: tempDir(), logLevel: 'warn' });
  const rows: string[][] = [];
  try {
    for (const [name, type] of [['live', 'video/h264'], ['hd', 'video/h264']]) {
      await call(server.url, 'createStream', { StreamName: name, DataRetentionInHours: 24, MediaType: type });
    }

    // 2 + 3 first (quick): a minute of 1080p in the past.
    const hd = loadClip(await ensureClip(HD_SPEC), HD_SPEC);
    const t0 = Date.now() - 120_000;
    await ingest(server.url, 'hd', hd, t0, 6, false);
    const range = { StartTimestamp: t0 / 1000, EndTimestamp: (t0 + 60_000) / 1000 };
    const clipTimes: number[] = [];
    let clipBytes = 0;
    for (let i = 0; i < 3; i++) {
      const s = performance.now();
      const res = await call(server.url, 'getClip', { StreamName: 'hd', ClipFragmentSelector: { FragmentSelectorType: 'PRODUCER_TIMESTAMP', TimestampRange: range } });
      clipBytes = (await res.arrayBuffer()).byteLength;
      clipTimes.push(performance.now() - s);
    }
    const c = summarize(clipTimes);
    rows.push(['GetClip 1 min 1080p 4 Mbit/s', `${fmtMs(c.p50)} ms median of 3 (${(clipBytes / 1e6).toFixed(1)} MB)`, '']);

    for (const size of [undefined, { WidthPixels: 320, HeightPixels: 180 }]) {
      let images = 0;
      let token: string | undefined;
      const s = performance.now();
      do {
        const req = token
          ? { StreamName: 'hd', NextToken: token, ImageSelectorType: 'PRODUCER_TIMESTAMP', ...range, SamplingInterval: 1000, Format: 'JPEG', ...size }
          : { StreamName: 'hd', ImageSelectorType: 'PRODUCER_TIMESTAMP', ...range, SamplingInterval: 1000, Format: 'JPEG', ...size };
        const out = (await (await call(server.url, 'getImages', req)).json()) as { Images: Array<{ ImageContent?: string }>; NextToken?: string };
        images += out.Images.filter((im) => im.ImageContent).length;
        token = out.NextToken;
      } while (token);
      const ms = performance.now() - s;
      rows.push([`GetImages JPEG ${size ? '320x180' : '1920x1080'}, 1 s sampling over 1 min`, `${fmtMs(ms / Math.max(1, images))} ms per image (${images} images)`, '']);
    }

    // 1: live latency in the browser.
    if (flags['skip-live']) rows.push(['Live HLS latency', 'skipped (--skip-live)', '']);
    else if (!existsSync(CHROMIUM)) rows.push(['Live HLS latency', `skipped: ${CHROMIUM} missing (bash scripts/bootstrap.sh)`, '']);
    else {
      const live = loadClip(await ensureClip(LIVE_SPEC), LIVE_SPEC);
      let stop = false;
      const loops = Math.ceil((liveSeconds + 15) / (live.durationMs / 1000));
      const producer = ingest(server.url, 'live', live, Date.now(), loops, true, () => stop);
      await sleep(2500); // the LIVE session needs a fragment
      const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
      try {
        const page = await browser.newPage();
        await page.goto(`${server.url}/#/stream/live`);
        await page.evaluate(`(() => {
          window.latencies = [];
          const v = document.getElementById('video');
          const cb = (now, meta) => {
            const hls = window.openkvsConsole.hls;
            const frags = hls && hls.levels[0] && hls.levels[0].details ? hls.levels[0].details.fragments : [];
            const f = frags.find((x) => x.programDateTime && meta.mediaTime >= x.start && meta.mediaTime < x.start + x.duration);
            if (f) window.latencies.push(performance.timeOrigin + meta.expectedDisplayTime - (f.programDateTime + (meta.mediaTime - f.start) * 1000));
            v.requestVideoFrameCallback(cb);
          };
          v.requestVideoFrameCallback(cb);
        })()`);
        await sleep(5000); // warm-up: hls.js settles on its live sync point
        await page.evaluate('window.latencies = []');
        await sleep(liveSeconds * 1000);
        const lat = await page.evaluate<number[]>('window.latencies');
        const s = summarize(lat);
        rows.push([
          'Live HLS latency (producer ts -> display), 1 s fragments',
          `p50 ${fmtMs(s.p50)} / p99 ${fmtMs(s.p99)} / max ${fmtMs(s.max)} ms (${lat.length} frames)`,
          s.p50 < 2000 ? 'goal < 2000 ms: met' : 'goal < 2000 ms: NOT met',
        ]);
      } finally {
        await browser.close();
        stop = true;
        await producer;
      }
    }
  } finally {
    await server.close();
  }
  console.log(formatTable(['measure', 'result', 'note'], rows));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
