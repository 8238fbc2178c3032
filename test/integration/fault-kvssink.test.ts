/**
 * kvssink through a faulty network: a proxy between kvssink and the server cuts, resets, stalls
 * and delays PutMedia connections at chosen byte offsets. After every fault each frame the
 * camera made is stored exactly once: the stream read back has all of them, in order, with no
 * gap and no repeat.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { awsEnv, gstLaunch } from '../helpers/gst.js';
import { type Fault, type FaultProxy, onPutMedia, startFaultProxy } from '../helpers/fault-proxy.js';
import { freePort, startTestServer, steps, type TestServer, videoTimestamps } from '../helpers/server.js';

const FRAMES = 180; // 6 s at 30 fps; a key frame every 15: twelve 0.5 s fragments

let t: TestServer;
let proxy: FaultProxy;
beforeAll(async () => {
  // The server tells kvssink to send PutMedia to the proxy (GetDataEndpoint gives publicUrl).
  const port = await freePort();
  proxy = await startFaultProxy({ port });
  t = await startTestServer({ port, publicUrl: proxy.url });
});
afterAll(async () => {
  await proxy?.close();
  await t?.close();
});


/** Streams FRAMES live frames through the proxy with `faults` on successive PutMedia connections. */
async function upload(stream: string, faults: Fault[], sinkProperties = '') {
  await t.createStream(stream);
  proxy.setPlan(onPutMedia(...faults));
  const before = proxy.applied.length;
  const run = gstLaunch(
    `videotestsrc is-live=true num-buffers=${FRAMES} ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ` +
      'x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast bitrate=1000 ! h264parse ! ' +
      `kvssink stream-name=${stream} endpoint=${proxy.url} ${sinkProperties}`,
    awsEnv,
  );
  const timer = setTimeout(() => run.child.kill('SIGKILL'), 50_000);
  const code = await run.exited;
  clearTimeout(timer);
  expect(code, `${run.output().slice(-4000)}\nfaults applied: ${JSON.stringify(proxy.applied.slice(before))}`).toBe(0);
  return {
    messages: run.messages,
    applied: proxy.applied.slice(before).map((a) => a.fault),
    dropped: run.messages.filter((m) => m.name === 'kvssink-connection' && m.fields.state === 'dropped'),
  };
}

/** Every frame once: FRAMES timestamps, strictly increasing, none more than a frame apart. */
function expectEveryFrameOnce(stamps: number[]): void {
  expect(stamps.length).toBe(FRAMES);
  expect(Math.min(...steps(stamps))).toBeGreaterThan(0);
  expect(Math.max(...steps(stamps))).toBeLessThan(50);
}

describe('kvssink through a faulty network', () => {
  it.each<[string, Fault[]]>([
    ['cut in the middle of a fragment', [{ kind: 'cut', atByte: 60_000 }]],
    ['reset in the middle of a fragment', [{ kind: 'reset', atByte: 60_000 }]],
    ['cut inside the request headers', [{ kind: 'cut', atByte: 100 }]],
    ['cut while acknowledgements come back', [{ kind: 'cut', atByte: 300, direction: 'down' }]],
    [
      'a cut, a reset and a cut on three connections in a row',
      [
        { kind: 'cut', atByte: 30_000 },
        { kind: 'reset', atByte: 50_000 },
        { kind: 'cut', atByte: 20_000 },
      ],
    ],
  ])('%s: reconnects and stores every frame once', async (_what, faults) => {
    const stream = `fault-${faults.map((f) => f.kind).join('-')}-${Math.random().toString(36).slice(2, 8)}`;
    const r = await upload(stream, faults);
    expect(r.applied).toEqual(faults); // every fault happened
    expect(r.dropped.length).toBeGreaterThanOrEqual(faults.length);
    expect(r.messages.filter((m) => m.name === 'kvssink-dropped')).toEqual([]);
    expectEveryFrameOnce(await videoTimestamps(t.archived, stream));
  });

  it('a connection stalled for 3 s carries on and stores every frame once', async () => {
    const r = await upload('fault-stall', [{ kind: 'stall', atByte: 60_000, ms: 3000 }]);
    expect(r.applied.map((f) => f.kind)).toEqual(['stall']);
    expectEveryFrameOnce(await videoTimestamps(t.archived, 'fault-stall'));
  });

  it('a connection stalled for good is dropped as stale after connection-staleness; latency pressure is posted; every frame once', async () => {
    const r = await upload('fault-stale', [{ kind: 'stall', atByte: 60_000 }], 'connection-staleness=2 max-latency=1');
    expect(r.applied.map((f) => f.kind)).toEqual(['stall']);
    expect(r.dropped.map((m) => m.fields.reason), JSON.stringify(r.messages.filter((m) => m.name === 'kvssink-connection'))).toEqual(['stale: no acknowledgement for 2000 ms']);
    const pressure = r.messages.filter((m) => m.name === 'kvssink-latency-pressure');
    expect(pressure.length).toBeGreaterThanOrEqual(1);
    expect(Number(pressure[0]!.fields['buffered-duration-ms'])).toBeGreaterThan(1000);
    expect(Number(pressure[0]!.fields['max-latency-ms'])).toBe(1000);
    expectEveryFrameOnce(await videoTimestamps(t.archived, 'fault-stale'));
  });

  it('200 ms of latency each way stores every frame once', async () => {
    const r = await upload('fault-delay', [{ kind: 'delay', ms: 200 }, { kind: 'delay', ms: 200 }]);
    expect(r.applied.length).toBeGreaterThanOrEqual(1);
    expect(r.dropped).toEqual([]);
    expectEveryFrameOnce(await videoTimestamps(t.archived, 'fault-delay'));
  });
});
