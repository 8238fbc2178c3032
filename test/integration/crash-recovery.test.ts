/**
 * The server killed with SIGKILL in the middle of an upload, then restarted on the same data
 * directory: every fragment acknowledged PERSISTED is still listed and reads back byte for byte.
 */
import type { ChildProcess } from 'node:child_process';
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video';
import { afterAll, expect, it } from 'vitest';
import { putMedia } from '../../lib/producer/put-media-client.js';
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { h264Fragments } from '../helpers/media.js';
import { clusters } from '../helpers/producer.js';
import { clientsFor, fragmentMedia, freePort, listAllFragments, spawnServer, tempDir } from '../helpers/server.js';

const children: ChildProcess[] = [];
afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

it('keeps every PERSISTED fragment across a SIGKILL mid-ingest', async () => {
  const frags = await h264Fragments({ frames: 300, gop: 10 }); // 30 fragments of 1/3 s
  const dataDir = tempDir();
  const port = await freePort();
  const first = await spawnServer(dataDir, port);
  children.push(first.child);
  const c = clientsFor(first.url);
  await c.kv.send(new CreateStreamCommand({ StreamName: 'crash', DataRetentionInHours: 1 }));

  const base = Date.now() - 60_000;
  const sent = clusters(frags, { baseTimecode: base });
  const persisted: PutMediaAck[] = [];
  const upload = putMedia({
    endpoint: first.url,
    streamName: 'crash',
    timecodeType: 'ABSOLUTE',
    onAck: (a) => {
      if (a.EventType === 'PERSISTED') persisted.push(a);
    },
  });
  await upload.write(frags.header);
  let killed = false;
  for (const [i, cluster] of sent.entries()) {
    // Send each cluster in two halves so the kill often lands inside a fragment.
    const half = Math.floor(cluster.length / 2);
    await upload.write(cluster.subarray(0, half));
    if (persisted.length >= 12) {
      first.child.kill('SIGKILL');
      killed = true;
      break;
    }
    await upload.write(cluster.subarray(half));
    await new Promise((r) => setTimeout(r, i < 2 ? 100 : 40));
  }
  expect(killed).toBe(true);
  await new Promise((r) => first.child.once('exit', r));
  upload.destroy();
  const acked = [...persisted];
  expect(acked.length).toBeGreaterThanOrEqual(12);

  const second = await spawnServer(dataDir, port);
  children.push(second.child);
  const listedNumbers = new Set((await listAllFragments(c.archived, 'crash')).map((f) => f.FragmentNumber));
  for (const a of acked) expect(listedNumbers.has(a.FragmentNumber)).toBe(true);

  const bytes = await fragmentMedia(c.archived, 'crash', acked.map((a) => a.FragmentNumber!));
  for (const a of acked) {
    const index = frags.clusters.findIndex((cl) => base + cl.timecode === a.FragmentTimecode);
    expect(index).toBeGreaterThanOrEqual(0);
    // The Cluster element as sent (known size) appears unchanged in the output.
    expect(bytes.includes(sent[index]!)).toBe(true);
  }

  // The restarted server takes new fragments on the same stream.
  const resumed = putMedia({ endpoint: second.url, streamName: 'crash', timecodeType: 'ABSOLUTE' });
  await resumed.write(frags.header);
  const later = clusters(frags, { baseTimecode: base + 120_000, from: 0, to: 2 });
  for (const cl of later) await resumed.write(cl);
  const acks = await resumed.end();
  expect(acks.filter((x) => x.EventType === 'PERSISTED').length).toBe(2);
  second.child.kill('SIGTERM');
  await new Promise((r) => second.child.once('exit', r));
});
