/**
 * Where a stream's data goes: DeleteStream removes its folder and fragments (even while it is
 * being ingested and read), retention-0 streams keep only the live buffer, and
 * UpdateDataRetention through the SDK changes both what ingest acknowledges and what is kept.
 */
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  DeleteStreamCommand,
  DescribeStreamCommand,
  UpdateDataRetentionCommand,
  type StreamInfo,
} from '@aws-sdk/client-kinesis-video';
import { GetMediaCommand } from '@aws-sdk/client-kinesis-video-media';
import { afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type ConsumedFragment, GetMediaParser } from '../../lib/consumer/get-media-parser.js';
import type { MkvFragments } from '../../lib/mkv/fragments.js';
import { putMedia } from '../../lib/producer/put-media-client.js';
import { h264Fragments } from '../helpers/media.js';
import { acksOf, body, clusters, sendBody } from '../helpers/producer.js';
import { type TestServer, fragmentMedia, listAllFragments, startTestServer, tempDir } from '../helpers/server.js';

/** Three 1/3-second fragments. */
let frags: MkvFragments;
const servers: TestServer[] = [];

async function start(options: Parameters<typeof startTestServer>[0] = {}): Promise<TestServer> {
  const ts = await startTestServer(options);
  servers.push(ts);
  return ts;
}

async function describeStream(ts: TestServer, name: string): Promise<StreamInfo> {
  return (await ts.kv.send(new DescribeStreamCommand({ StreamName: name }))).StreamInfo!;
}

const storedFragments = (ts: TestServer, name: string) => listAllFragments(ts.archived, name);
const getMediaForFragmentList = (ts: TestServer, name: string, numbers: string[]) => fragmentMedia(ts.archived, name, numbers);

/** Data files (`*.frag`) under the stream folders, as `<folder>/<file>`. */
function dataFiles(dataDir: string): string[] {
  const streams = path.join(dataDir, 'streams');
  if (!existsSync(streams)) return [];
  return readdirSync(streams).flatMap((folder) =>
    readdirSync(path.join(streams, folder))
      .filter((f) => f.endsWith('.frag'))
      .map((f) => `${folder}/${f}`),
  );
}

/** The stream folders that appeared between two listings. */
const newFolders = (before: string[], after: string[]): string[] => after.filter((f) => !before.includes(f));
const streamFolders = (dataDir: string): string[] =>
  existsSync(path.join(dataDir, 'streams')) ? readdirSync(path.join(dataDir, 'streams')) : [];

beforeAll(async () => {
  frags = await h264Fragments({ frames: 30, gop: 10, width: 160, height: 120, bitrate: 200 });
  expect(frags.clusters).toHaveLength(3);
});

afterEach(async () => {
  for (const ts of servers.splice(0)) await ts.close();
});

describe('DeleteStream', () => {
  it("removes the stream's folder and fragments; a new stream of the same name starts empty", async () => {
    const ts = await start();
    await ts.createStream('bystander');
    await sendBody(ts.url, 'bystander', body(frags));
    const beforeDoomed = streamFolders(ts.dataDir);

    await ts.createStream('doomed');
    const acks = await sendBody(ts.url, 'doomed', body(frags));
    const oldNumbers = acksOf(acks, 'PERSISTED').map((a) => a.FragmentNumber!);
    expect(oldNumbers).toHaveLength(3);
    const [folder] = newFolders(beforeDoomed, streamFolders(ts.dataDir));
    expect(folder).toBeDefined();
    const folderPath = path.join(ts.dataDir, 'streams', folder!);
    expect(dataFiles(ts.dataDir).some((f) => f.startsWith(`${folder}/`))).toBe(true);

    // A live reader of the stream, caught up with everything stored.
    const reader = await ts.media.send(new GetMediaCommand({ StreamName: 'doomed', StartSelector: { StartSelectorType: 'EARLIEST' } }));
    const read: ConsumedFragment[] = [];
    const parser = new GetMediaParser({ onFragment: (f) => read.push(f) });
    const payload = (reader.Payload as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
    while (read.length < 3) parser.push((await payload.next()).value as Uint8Array);

    const arn = (await describeStream(ts, 'doomed')).StreamARN!;
    await ts.kv.send(new DeleteStreamCommand({ StreamARN: arn }));

    expect(existsSync(folderPath)).toBe(false);
    expect(streamFolders(ts.dataDir)).toEqual(beforeDoomed);
    // The reader's response ends.
    let ended = false;
    while (!ended) ended = (await payload.next()).done === true;
    await expect(storedFragments(ts, 'doomed')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });

    await ts.createStream('doomed');
    expect(await storedFragments(ts, 'doomed')).toEqual([]);
    await expect(getMediaForFragmentList(ts, 'doomed', oldNumbers)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
    const fresh = await sendBody(ts.url, 'doomed', body(frags, { to: 1 }));
    expect((await storedFragments(ts, 'doomed')).map((f) => f.FragmentNumber)).toEqual(acksOf(fresh, 'PERSISTED').map((a) => a.FragmentNumber));

    // The other stream is untouched.
    expect(await storedFragments(ts, 'bystander')).toHaveLength(3);
  });

  it('ends an ingest in progress with 4008 STREAM_NOT_ACTIVE and leaves nothing behind', async () => {
    const ts = await start();
    const before = streamFolders(ts.dataDir);
    await ts.createStream('pulled');
    const [c0, c1, c2] = clusters(frags);
    let persistedFirst!: () => void;
    const firstPersisted = new Promise<void>((r) => (persistedFirst = r));
    const session = putMedia({
      endpoint: ts.url,
      streamName: 'pulled',
      timecodeType: 'RELATIVE',
      onAck: (ack) => {
        if (ack.EventType === 'PERSISTED') persistedFirst();
      },
    });
    await session.write(Buffer.concat([frags.header, c0!]));
    await session.write(c1!.subarray(0, 50)); // fragment 1 has started arriving
    await firstPersisted;

    await ts.kv.send(new DeleteStreamCommand({ StreamARN: (await describeStream(ts, 'pulled')).StreamARN! }));
    await session.write(Buffer.concat([c1!.subarray(50), c2!]));
    const all = await session.end();

    // The fragment that was arriving is refused, and nothing after it is taken.
    expect(acksOf(all, 'ERROR')).toEqual([
      expect.objectContaining({ ErrorId: 4008, ErrorCode: 'STREAM_NOT_ACTIVE', FragmentTimecode: frags.clusters[1]!.timecode }),
    ]);
    expect(all.at(-1)?.EventType).toBe('ERROR');
    expect(acksOf(all, 'RECEIVED').map((a) => a.FragmentTimecode)).toEqual([frags.clusters[0]!.timecode]);
    expect(streamFolders(ts.dataDir)).toEqual(before);
    expect(dataFiles(ts.dataDir)).toEqual([]);
    await ts.createStream('pulled');
    expect(await storedFragments(ts, 'pulled')).toEqual([]);
  });
});

describe('retention 0', () => {
  it('keeps fragments for the live buffer only, then the sweep removes them', async () => {
    const dataDir = tempDir();
    // Default limits: a 5-minute live buffer and a sweep every minute, so nothing goes yet.
    const first = await start({ dataDir });
    await first.createStream('live-only', 0);
    await first.createStream('archived', 24);
    const liveAcks = await sendBody(first.url, 'live-only', body(frags));
    await sendBody(first.url, 'archived', body(frags));
    expect(acksOf(liveAcks, 'PERSISTED')).toEqual([]);
    const liveNumbers = (await storedFragments(first, 'live-only')).map((f) => f.FragmentNumber!);
    expect(liveNumbers).toEqual(acksOf(liveAcks, 'RECEIVED').map((a) => a.FragmentNumber));
    const filesBefore = dataFiles(dataDir);
    expect(filesBefore).toHaveLength(2);
    await first.close();

    // Restarted with a 100 ms live buffer and a fast sweeper.
    const second = await start({ dataDir, limits: { liveBufferMs: 100 }, sweepIntervalMs: 20 });
    await vi.waitFor(async () => expect(await storedFragments(second, 'live-only')).toEqual([]), { timeout: 10_000, interval: 50 });
    await expect(getMediaForFragmentList(second, 'live-only', liveNumbers)).rejects.toMatchObject({ name: 'ResourceNotFoundException' });

    const archived = await storedFragments(second, 'archived');
    expect(archived).toHaveLength(3);
    const readBack = await getMediaForFragmentList(second, 'archived', archived.map((f) => f.FragmentNumber!));
    expect(readBack.length).toBeGreaterThan(0);
    // Only the archived stream's data file is left.
    const filesAfter = dataFiles(dataDir);
    expect(filesAfter).toHaveLength(1);
    expect(filesBefore).toContain(filesAfter[0]);
  });
});

describe('UpdateDataRetention', () => {
  it('changes what ingest acknowledges and what is kept', async () => {
    const ts = await start({ limits: { liveBufferMs: 50 } });
    await ts.createStream('elastic', 0);
    await ts.createStream('steady', 24);
    await sendBody(ts.url, 'steady', body(frags));
    const v0 = (await describeStream(ts, 'elastic')).Version!;

    const whileZero = await sendBody(ts.url, 'elastic', body(frags));
    expect(acksOf(whileZero, 'PERSISTED')).toEqual([]);

    await ts.kv.send(
      new UpdateDataRetentionCommand({ StreamName: 'elastic', CurrentVersion: v0, Operation: 'INCREASE_DATA_RETENTION', DataRetentionChangeInHours: 2 }),
    );
    const raised = await describeStream(ts, 'elastic');
    expect(raised.DataRetentionInHours).toBe(2);
    expect(raised.Version).not.toBe(v0);

    const whileTwo = await sendBody(ts.url, 'elastic', body(frags));
    expect(acksOf(whileTwo, 'PERSISTED').map((a) => a.FragmentNumber)).toEqual(acksOf(whileTwo, 'RECEIVED').map((a) => a.FragmentNumber));
    expect(await storedFragments(ts, 'elastic')).toHaveLength(6);

    // A stale version is refused and changes nothing.
    await expect(
      ts.kv.send(new UpdateDataRetentionCommand({ StreamName: 'elastic', CurrentVersion: v0, Operation: 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: 2 })),
    ).rejects.toMatchObject({ name: 'VersionMismatchException' });
    // Below zero is refused.
    await expect(
      ts.kv.send(
        new UpdateDataRetentionCommand({ StreamName: 'elastic', CurrentVersion: raised.Version!, Operation: 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: 3 }),
      ),
    ).rejects.toMatchObject({ name: 'InvalidArgumentException', message: expect.stringContaining('DataRetentionChangeInHours') });
    expect((await describeStream(ts, 'elastic')).DataRetentionInHours).toBe(2);

    // Back to 0 once everything is older than the 50 ms live buffer: the decrease sweeps at once.
    const newest = Math.max(...(await storedFragments(ts, 'elastic')).map((f) => f.ServerTimestamp!.getTime()));
    await sleep(Math.max(0, newest + 60 - Date.now()));
    await ts.kv.send(
      new UpdateDataRetentionCommand({ StreamName: 'elastic', CurrentVersion: raised.Version!, Operation: 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: 2 }),
    );
    expect((await describeStream(ts, 'elastic')).DataRetentionInHours).toBe(0);
    expect(await storedFragments(ts, 'elastic')).toEqual([]);
    expect(await storedFragments(ts, 'steady')).toHaveLength(3);

    const afterwards = await sendBody(ts.url, 'elastic', body(frags));
    expect(acksOf(afterwards, 'RECEIVED')).toHaveLength(3);
    expect(acksOf(afterwards, 'PERSISTED')).toEqual([]);
  });
});
