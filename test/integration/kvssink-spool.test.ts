/**
 * kvssink's on-disk spool (storage-path): fragments stay on disk until acknowledged for good.
 * What a run could not send (the service unreachable for the whole run) is sent by the next run
 * at its original timestamps; a full spool deletes its oldest fragments with a message; during
 * an outage longer than the memory buffer, fragments the buffer lets go of are sent from the
 * spool once the service is back. Every frame is stored once.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsEnv, gstLaunch } from '../helpers/gst.js';
import { type FaultPlan, type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { freePort, startTestServer, steps, type TestServer, videoTimestamps } from '../helpers/server.js';

let t: TestServer;
let proxy: FaultProxy;
let dir: string;
beforeAll(async () => {
  const port = await freePort();
  proxy = await startFaultProxy({ port });
  t = await startTestServer({ port, publicUrl: proxy.url });
  dir = mkdtempSync(path.join(tmpdir(), 'kvssink-spool-'));
});
afterAll(async () => {
  await proxy?.close();
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const isPutMedia = (head: string) => /^POST \S*\/putMedia /i.test(head);
/** Every PutMedia connection fails at once (the connection is reset). */
const unreachable: FaultPlan = ({ head }) => (isPutMedia(head) ? { kind: 'reset', atByte: 1 } : undefined);

/**
 * Live video at 30 fps with a key frame every 15 (0.5 s fragments) into kvssink with a spool;
 * with `bitrate`, of snow (which does not compress) at that many kbit/s.
 */
async function run(stream: string, frames: number, sinkProperties: string, bitrate?: number) {
  const pattern = bitrate ? 'pattern=snow' : '';
  const r = gstLaunch(
    `videotestsrc is-live=true ${pattern} num-buffers=${frames} ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ` +
      `x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast bitrate=${bitrate ?? 1000} ! h264parse ! ` +
      `kvssink stream-name=${stream} endpoint=${proxy.url} storage-path=${dir} ${sinkProperties}`,
    awsEnv,
  );
  const timer = setTimeout(() => r.child.kill('SIGKILL'), 60_000);
  const code = await r.exited;
  clearTimeout(timer);
  expect(code, r.output().slice(-3000)).toBe(0);
  return r;
}


/** Video frame timestamps in time order (re-sent fragments get later fragment numbers than newer ones). */
const inProducerTimeOrder = async (stream: string) => (await videoTimestamps(t.archived, stream)).sort((a, b) => a - b);

/** Bytes of the fragment files spooled for a stream. */
function spooled(stream: string): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const root = path.join(dir, stream);
  for (const session of readdirSync(root, { withFileTypes: true })) {
    if (!session.isDirectory()) continue;
    for (const f of readdirSync(path.join(root, session.name))) {
      if (!f.endsWith('.frag')) continue;
      files++;
      bytes += statSync(path.join(root, session.name, f)).size;
    }
  }
  return { files, bytes };
}


describe('a run the service never saw', () => {
  let firstRunStart = 0;
  let secondRunStart = 0;
  let dropped: number[] = [];
  let spooledAfterFirst = { files: 0, bytes: 0 };
  beforeAll(async () => {
    await t.createStream('spool-restart');
    proxy.setPlan(unreachable);
    firstRunStart = Date.now();
    // 4 Mbit/s for 3 s (~1.5 MB) into a 1 MiB spool: the oldest fragments go.
    const first = await run('spool-restart', 90, 'stop-stream-timeout=1 storage-path-size=1', 4000);
    dropped = first.messages.filter((m) => m.name === 'kvssink-spool-dropped').map((m) => Number(m.fields['fragment-timecode']));
    spooledAfterFirst = spooled('spool-restart');
    proxy.setPlan(() => undefined);
    secondRunStart = Date.now();
    await run('spool-restart', 60, '');
  }, 120_000);

  it('left its fragments in the spool, within storage-path-size, the oldest deleted with kvssink-spool-dropped', () => {
    expect(dropped.length).toBeGreaterThan(0);
    expect(spooledAfterFirst.files).toBeGreaterThan(0);
    expect(spooledAfterFirst.bytes).toBeLessThanOrEqual(1 << 20);
    expect(Math.min(...dropped)).toBeGreaterThanOrEqual(firstRunStart - 1000);
  });

  it('has them sent by the next run at their original timestamps, every frame once, and the spool emptied', async () => {
    const stamps = await inProducerTimeOrder('spool-restart');
    const fromFirst = stamps.filter((s) => s < secondRunStart);
    const fromSecond = stamps.filter((s) => s >= secondRunStart);
    expect(fromSecond).toHaveLength(60);
    // The first run's newest fragments survived: a whole number of 15-frame fragments, the
    // last of them ending with the run's last frame, frame after frame.
    expect(fromFirst.length % 15).toBe(0);
    expect(fromFirst.length).toBe(spooledAfterFirst.files * 15);
    expect(Math.min(...steps(fromFirst))).toBeGreaterThan(0);
    expect(Math.max(...steps(fromFirst))).toBeLessThan(50);
    expect(fromFirst[0]!).toBeGreaterThanOrEqual(firstRunStart - 1000);
    expect(fromFirst.at(-1)!).toBeLessThan(secondRunStart - 1000);
    expect(spooled('spool-restart').files).toBe(0);
  });
});

it('an outage longer than the memory buffer: what the buffer let go of is sent from the spool, every frame once', async () => {
  await t.createStream('spool-outage');
  // The first two PutMedia connections fail (about 3 s with the backoff), then the service is back.
  let n = 0;
  proxy.setPlan(({ head }) => (isPutMedia(head) && n++ < 2 ? { kind: 'reset', atByte: 1 } : undefined));
  // 4 Mbit/s into a 1 MiB memory buffer holds about 2 s.
  const r = await run('spool-outage', 150, 'storage-size=1', 4000);
  expect(r.messages.filter((m) => m.name === 'kvssink-dropped').length).toBeGreaterThan(0); // memory let go
  expect(r.messages.filter((m) => m.name === 'kvssink-spool-dropped')).toEqual([]);
  const stamps = await inProducerTimeOrder('spool-outage');
  expect(stamps).toHaveLength(150);
  expect(Math.min(...steps(stamps))).toBeGreaterThan(0);
  expect(Math.max(...steps(stamps))).toBeLessThan(50);
  expect(spooled('spool-outage').files).toBe(0);
});
