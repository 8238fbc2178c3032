/**
 * kvssink when things go wrong or take long: connection rotation, a server that goes away for
 * good (the buffer fills and drops the oldest fragments), and stopping without EOS.
 */
import type { ChildProcess } from 'node:child_process';
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video';
import { afterAll, expect, it } from 'vitest';
import { clientsFor, freePort, listAllFragments, spawnServer, startTestServer, tempDir } from '../helpers/server.js';
import { awsEnv, gstLaunch } from '../helpers/gst.js';

const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

const live = (frames: number, gop: number) =>
  `videotestsrc is-live=true num-buffers=${frames} ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ` +
  `x264enc key-int-max=${gop} tune=zerolatency speed-preset=ultrafast ! h264parse`;

it('rotates PutMedia connections without losing or repeating a fragment', async () => {
  const t = await startTestServer();
  try {
    const run = gstLaunch(`${live(210, 15)} ! kvssink stream-name=rotate endpoint=${t.url}`, {
      ...awsEnv,
      KVSSINK_CONNECTION_ROTATION_SECONDS: '2',
    });
    expect(await run.exited, run.output().slice(-3000)).toBe(0);
    const conn = run.messages.filter((m) => m.name === 'kvssink-connection');
    expect(conn.filter((m) => m.fields.state === 'rotating').length).toBeGreaterThanOrEqual(2);
    expect(conn.filter((m) => m.fields.state === 'dropped')).toEqual([]);
    const connecting = conn.filter((m) => m.fields.state === 'connecting').length;
    expect(connecting).toBeGreaterThanOrEqual(3);

    const frags = (await listAllFragments(t.archived, 'rotate')).sort((a, b) => a.ProducerTimestamp!.getTime() - b.ProducerTimestamp!.getTime());
    expect(frags.length).toBe(14); // 210 frames, a key frame every 15
    // Contiguous: each fragment starts where the previous one ended (0.5 s apart, none missing).
    for (let i = 1; i < frags.length; i++) {
      const gap = frags[i]!.ProducerTimestamp!.getTime() - frags[i - 1]!.ProducerTimestamp!.getTime();
      expect(gap).toBeGreaterThanOrEqual(490);
      expect(gap).toBeLessThanOrEqual(510);
    }
    const persisted = run.messages.filter((m) => m.name === 'kvssink-fragment-ack' && m.fields['event-type'] === 'PERSISTED');
    expect(new Set(persisted.map((m) => m.fields['fragment-number'])).size).toBe(14);
  } finally {
    await t.close();
  }
});

it('drops the oldest fragments with a bus message when the server is gone and the buffer is full, and still stops', async () => {
  const dataDir = tempDir();
  const port = await freePort();
  const server = await spawnServer(dataDir, port);
  children.push(server.child);
  await clientsFor(server.url).kv.send(new CreateStreamCommand({ StreamName: 'full', DataRetentionInHours: 1 }));
  const run = gstLaunch(
    'videotestsrc is-live=true pattern=snow ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! ' +
      'x264enc bitrate=4000 key-int-max=15 tune=zerolatency speed-preset=ultrafast ! h264parse ! ' +
      `kvssink stream-name=full endpoint=${server.url} storage-size=1 stop-stream-timeout=2`,
    awsEnv,
  );
  await run.waitFor((m) => m.name === 'kvssink-fragment-ack' && m.fields['event-type'] === 'PERSISTED');
  server.child.kill('SIGKILL');
  const dropped = await run.waitFor((m) => m.name === 'kvssink-dropped', 30_000);
  expect(Number(dropped.fields.frames)).toBeGreaterThan(0);
  const stats = await run.waitFor((m) => m.name === 'kvssink-stats' && Number(m.fields['fragments-dropped']) > 0);
  expect(Number(stats.fields['buffered-bytes'])).toBeLessThanOrEqual(1024 * 1024);
  run.child.kill('SIGINT'); // EOS: the last fragment cannot be persisted; stop-stream-timeout bounds the wait
  expect(await run.exited).toBe(0);
});

it('stops at once without EOS while the server is unreachable', async () => {
  const port = await freePort(); // nothing listens there
  const run = gstLaunch(`${live(100000, 30)} ! kvssink stream-name=x endpoint=http://127.0.0.1:${port}`, awsEnv, { eos: false });
  await run.waitFor((m) => m.name === 'kvssink-error');
  const stoppedAt = Date.now();
  run.child.kill('SIGINT');
  await run.exited;
  expect(Date.now() - stoppedAt).toBeLessThan(10_000);
});

it('offline mode holds the source back where realtime mode drops, when nothing can be uploaded', async () => {
  const port = await freePort(); // nothing listens: no fragment is ever persisted
  const source =
    'videotestsrc num-buffers=300 pattern=snow ! video/x-raw,format=I420,width=640,height=480,framerate=30/1 ! ' +
    'x264enc bitrate=4000 key-int-max=15 tune=zerolatency speed-preset=ultrafast ! h264parse';
  const launch = (mode: string) =>
    gstLaunch(`${source} ! kvssink stream-name=x streaming-type=${mode} storage-size=1 endpoint=http://127.0.0.1:${port}`, awsEnv, { eos: false });

  const realtime = launch('realtime');
  await realtime.waitFor((m) => m.name === 'kvssink-dropped', 20_000); // 10 MB of video into a 1 MiB buffer
  realtime.child.kill('SIGINT');
  await realtime.exited;

  const offline = launch('offline');
  await new Promise((r) => setTimeout(r, 5000)); // more than realtime needed to start dropping
  expect(offline.messages.filter((m) => m.name === 'kvssink-dropped')).toEqual([]);
  offline.child.kill('SIGINT'); // stops without EOS while the streaming thread is held back: no hang
  await offline.exited;
});
