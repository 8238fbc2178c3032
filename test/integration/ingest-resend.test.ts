/**
 * What a producer does across connections (producer-protocol.md §4.3, §5, §8, §13.2): re-sending
 * fragments after a reconnect, rotating to a new PutMedia while the old one drains, dropping a
 * connection mid-fragment; the per-fragment ACK sequence; and retention-0 streams, which are
 * acknowledged up to RECEIVED and still served by GetMedia.
 */
import type { Fragment } from '@aws-sdk/client-kinesis-video-archived-media';
import { DescribeStreamCommand } from '@aws-sdk/client-kinesis-video';
import { GetMediaCommand } from '@aws-sdk/client-kinesis-video-media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumedFragment, GetMediaParser } from '../../lib/consumer/get-media-parser.js';
import { ID, elementHeader, tagsElement, uintElement } from '../../lib/mkv/ebml.js';
import type { MkvFragments } from '../../lib/mkv/fragments.js';
import { type PutMediaSession, putMedia } from '../../lib/producer/put-media-client.js';
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { h264Fragments } from '../helpers/media.js';
import { acksOf, body, clusters, sendBody } from '../helpers/producer.js';
import { type TestServer, listAllFragments, readFragments as readStored, startTestServer } from '../helpers/server.js';

let ts: TestServer;
/** Eight 1/3-second fragments of 10 frames each. */
let frags: MkvFragments;
let streamCounter = 0;

async function newStream(retentionHours = 24): Promise<string> {
  const name = `resend-${++streamCounter}`;
  await ts.createStream(name, retentionHours);
  return name;
}

/** A PutMedia connection in ABSOLUTE mode whose acks can be awaited one by one. */
interface Connection {
  session: PutMediaSession;
  /** Resolves with the first ack (already received or still to come) matching `pred`. */
  until(pred: (ack: PutMediaAck) => boolean): Promise<PutMediaAck>;
}

function connect(streamName: string): Connection {
  const waiters = new Set<{ pred: (a: PutMediaAck) => boolean; resolve: (a: PutMediaAck) => void }>();
  const session = putMedia({
    endpoint: ts.url,
    streamName,
    timecodeType: 'ABSOLUTE',
    onAck: (ack) => {
      for (const w of [...waiters]) {
        if (w.pred(ack)) {
          waiters.delete(w);
          w.resolve(ack);
        }
      }
    },
  });
  return {
    session,
    until: (pred) => {
      const seen = session.acks.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve) => waiters.add({ pred, resolve }));
    },
  };
}

const ackFor = (type: PutMediaAck['EventType'], timecode: number) => (a: PutMediaAck) =>
  a.EventType === type && a.FragmentTimecode === timecode;

/** Event types per fragment number, in the order the fragments first appear. */
function ackSequences(acks: PutMediaAck[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const a of acks) {
    if (a.EventType === 'IDLE') continue;
    out.set(a.FragmentNumber!, [...(out.get(a.FragmentNumber!) ?? []), a.EventType]);
  }
  return out;
}

/** Cluster i's timecode in a body sent with `baseTimecode` (ABSOLUTE mode: epoch ms). */
const timecodeOf = (i: number, baseTimecode: number): number => baseTimecode + frags.clusters[i]!.timecode;

/** Unknown-size clusters, as kvssink writes them: each ends where the next level-1 element starts. */
const liveClusters = (from: number, to: number, baseTimecode: number): Buffer[] =>
  frags.clusters
    .slice(from, to)
    .map((c) => Buffer.concat([elementHeader(ID.Cluster, undefined), uintElement(ID.Timecode, baseTimecode + c.timecode, 8), c.body]));

const END_OF_FRAGMENT = tagsElement([['AWS_KINESISVIDEO_END_OF_FRAGMENT', '']]);

const storedFragments = (streamName: string) => listAllFragments(ts.archived, streamName);
const readFragments = (streamName: string, numbers: string[]) => readStored(ts.archived, streamName, numbers);

/** The first `count` fragments GetMedia returns from EARLIEST (then the connection is dropped). */
async function getMediaFragments(streamName: string, count: number): Promise<ConsumedFragment[]> {
  const out = await ts.media.send(new GetMediaCommand({ StreamName: streamName, StartSelector: { StartSelectorType: 'EARLIEST' } }));
  const got: ConsumedFragment[] = [];
  const parser = new GetMediaParser({ onFragment: (f) => got.push(f) });
  for await (const chunk of out.Payload as AsyncIterable<Uint8Array>) {
    parser.push(chunk);
    if (got.length >= count) break;
  }
  return got;
}

const producerMs = (fragments: Fragment[]): number[] => fragments.map((f) => f.ProducerTimestamp!.getTime());
const frameBytes = (f: ConsumedFragment): number => f.frames.reduce((n, fr) => n + fr.data.length, 0);
const clusterFrameBytes = (i: number): number => frags.clusters[i]!.blocks.reduce((n, b) => n + b.size, 0);

beforeAll(async () => {
  frags = await h264Fragments({ frames: 80, gop: 10, width: 160, height: 120, bitrate: 200 });
  expect(frags.clusters).toHaveLength(8);
  ts = await startTestServer();
});

afterAll(async () => {
  await ts?.close();
});

describe('re-sent fragments', () => {
  it('are stored once and acknowledged with the fragment numbers they already have', async () => {
    const stream = await newStream();
    const tc = Date.now() - 60_000;

    const first = await sendBody(ts.url, stream, body(frags, { from: 0, to: 5, baseTimecode: tc }), { timecodeType: 'ABSOLUTE' });
    // The reconnect rolls back to fragment 2 and goes on to 7.
    const second = await sendBody(ts.url, stream, body(frags, { from: 2, to: 8, baseTimecode: tc }), { timecodeType: 'ABSOLUTE' });

    expect(acksOf(first, 'ERROR')).toEqual([]);
    expect(acksOf(second, 'ERROR')).toEqual([]);
    const numberIn = (acks: PutMediaAck[], type: PutMediaAck['EventType'], i: number) =>
      acks.find(ackFor(type, timecodeOf(i, tc)))?.FragmentNumber;
    for (const i of [2, 3, 4]) {
      const original = numberIn(first, 'PERSISTED', i);
      expect(original).toBeDefined();
      for (const type of ['BUFFERING', 'RECEIVED', 'PERSISTED'] as const) expect(numberIn(second, type, i), `${type} ${i}`).toBe(original);
    }
    expect(acksOf(second, 'PERSISTED').map((a) => a.FragmentTimecode)).toEqual([2, 3, 4, 5, 6, 7].map((i) => timecodeOf(i, tc)));

    const stored = await storedFragments(stream);
    expect(stored).toHaveLength(8);
    expect(producerMs(stored)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => timecodeOf(i, tc)));
    expect(new Set(producerMs(stored)).size).toBe(8);
    expect(stored.map((f) => f.FragmentNumber)).toEqual([
      ...[0, 1, 2, 3, 4].map((i) => numberIn(first, 'PERSISTED', i)),
      ...[5, 6, 7].map((i) => numberIn(second, 'PERSISTED', i)),
    ]);

    const read = await readFragments(stream, stored.map((f) => f.FragmentNumber!));
    expect(read.map((f) => f.frames.length)).toEqual(frags.clusters.map((c) => c.blocks.length));
    expect(read.map(frameBytes)).toEqual(frags.clusters.map((_, i) => clusterFrameBytes(i)));
  });

  it('are stored once when two connections overlap during a rotation', async () => {
    const stream = await newStream();
    const tc = Date.now() - 60_000;
    const old = connect(stream);
    const [c0, c1, c2, c3] = liveClusters(0, 4, tc);
    await old.session.write(Buffer.concat([frags.header, c0!, c1!, c2!]));
    await old.session.write(c3!.subarray(0, Math.floor(c3!.length / 2)));
    await old.until(ackFor('BUFFERING', timecodeOf(3, tc)));

    // The new connection starts while the old one is still sending fragment 3.
    const next = connect(stream);
    expect(await next.session.status).toBe(200);
    await next.session.write(Buffer.concat([frags.header, ...liveClusters(4, 5, tc)]));
    await next.until(ackFor('BUFFERING', timecodeOf(4, tc)));

    // The old connection finishes fragment 3, closes it with an end-of-fragment Tags element,
    // and (like kvssink) keeps its body open until that fragment is PERSISTED.
    await old.session.write(c3!.subarray(Math.floor(c3!.length / 2)));
    await old.session.write(END_OF_FRAGMENT);
    await old.until(ackFor('PERSISTED', timecodeOf(3, tc)));
    const oldAcks = await old.session.end();

    await next.session.write(Buffer.concat(liveClusters(5, 8, tc)));
    const nextAcks = await next.session.end();

    expect(acksOf(oldAcks, 'ERROR')).toEqual([]);
    expect(acksOf(nextAcks, 'ERROR')).toEqual([]);
    expect(acksOf(oldAcks, 'PERSISTED').map((a) => a.FragmentTimecode)).toEqual([0, 1, 2, 3].map((i) => timecodeOf(i, tc)));
    expect(acksOf(nextAcks, 'PERSISTED').map((a) => a.FragmentTimecode)).toEqual([4, 5, 6, 7].map((i) => timecodeOf(i, tc)));

    const stored = await storedFragments(stream);
    expect(stored.map((f) => f.FragmentNumber)).toEqual([...acksOf(oldAcks, 'PERSISTED'), ...acksOf(nextAcks, 'PERSISTED')].map((a) => a.FragmentNumber));
    expect(producerMs(stored)).toEqual([0, 1, 2, 3, 4, 5, 6, 7].map((i) => timecodeOf(i, tc)));

    const viaGetMedia = await getMediaFragments(stream, 8);
    expect(viaGetMedia.map((f) => f.fragmentNumber)).toEqual(stored.map((f) => f.FragmentNumber));
    expect(viaGetMedia.map((f) => f.frames.length)).toEqual(frags.clusters.map((c) => c.blocks.length));
  });

  it('lose only the fragment cut by a dropped connection, which a re-send stores whole', async () => {
    const stream = await newStream();
    const tc = Date.now() - 60_000;
    const [c0, c1, c2, c3] = clusters(frags, { to: 4, baseTimecode: tc });
    const dropped = connect(stream);
    await dropped.session.write(Buffer.concat([frags.header, c0!, c1!, c2!]));
    await dropped.session.write(c3!.subarray(0, Math.floor(c3!.length / 2)));
    await dropped.until(ackFor('BUFFERING', timecodeOf(3, tc)));
    await dropped.until(ackFor('PERSISTED', timecodeOf(2, tc)));
    dropped.session.destroy();
    const droppedAcks = await dropped.session.done;
    expect(acksOf(droppedAcks, 'PERSISTED')).toHaveLength(3);
    expect(droppedAcks.filter((a) => a.FragmentTimecode === timecodeOf(3, tc)).map((a) => a.EventType)).toEqual(['BUFFERING']);

    const resent = await sendBody(ts.url, stream, body(frags, { from: 3, to: 5, baseTimecode: tc }), { timecodeType: 'ABSOLUTE' });
    expect(acksOf(resent, 'ERROR')).toEqual([]);
    const persisted3 = resent.find(ackFor('PERSISTED', timecodeOf(3, tc)))!;
    expect(persisted3).toBeDefined();

    const stored = await storedFragments(stream);
    expect(producerMs(stored)).toEqual([0, 1, 2, 3, 4].map((i) => timecodeOf(i, tc)));
    expect(stored[3]!.FragmentNumber).toBe(persisted3.FragmentNumber);
    const [fragment3] = await readFragments(stream, [persisted3.FragmentNumber!]);
    expect(fragment3!.frames).toHaveLength(frags.clusters[3]!.blocks.length);
    expect(frameBytes(fragment3!)).toBe(clusterFrameBytes(3));
  });

  it('are stored when the re-send starts before the dropped original is given up', async () => {
    // A half-open connection: the producer has reconnected and re-sends fragment 3 while the
    // server still holds the first half of it from the old connection, which then drops.
    const stream = await newStream();
    const tc = Date.now() - 60_000;
    const [c0, c1, c2, c3, c4] = clusters(frags, { to: 5, baseTimecode: tc });
    const half = Math.floor(c3!.length / 2);
    const dropped = connect(stream);
    await dropped.session.write(Buffer.concat([frags.header, c0!, c1!, c2!, c3!.subarray(0, half)]));
    const original = await dropped.until(ackFor('BUFFERING', timecodeOf(3, tc)));

    const resend = connect(stream);
    await resend.session.write(Buffer.concat([frags.header, c3!.subarray(0, half)]));
    const copy = await resend.until(ackFor('BUFFERING', timecodeOf(3, tc)));
    expect(copy.FragmentNumber).toBe(original.FragmentNumber); // taken for a re-send of the arriving fragment

    dropped.session.destroy();
    await dropped.session.done;
    // A round trip, so that the server has most likely seen the drop before the copy completes;
    // the outcome must be the same either way.
    await ts.kv.send(new DescribeStreamCommand({ StreamName: stream }));
    await resend.session.write(Buffer.concat([c3!.subarray(half), c4!]));
    const acks = await resend.session.end();

    expect(acksOf(acks, 'ERROR')).toEqual([]);
    expect([...ackSequences(acks).values()]).toEqual([
      ['BUFFERING', 'RECEIVED', 'PERSISTED'],
      ['BUFFERING', 'RECEIVED', 'PERSISTED'],
    ]);
    const stored = await storedFragments(stream);
    expect(producerMs(stored)).toEqual([0, 1, 2, 3, 4].map((i) => timecodeOf(i, tc)));
    // The copy of fragment 3 takes the place (and number) of the dropped original.
    expect(stored[3]!.FragmentNumber).toBe(original.FragmentNumber);
    for (const i of [3, 4]) expect(acks.find(ackFor('PERSISTED', timecodeOf(i, tc)))?.FragmentNumber).toBe(stored[i]!.FragmentNumber);
    const read = await readFragments(stream, stored.map((f) => f.FragmentNumber!));
    expect(read.map(frameBytes)).toEqual([0, 1, 2, 3, 4].map(clusterFrameBytes));
  });

  it('take over from a connection that stays open (half-open): acked at once, stored once', async () => {
    // The producer gave the old connection up but the server does not know (no FIN, no RST):
    // the re-send must not wait for the old connection's idle timeout.
    const stream = await newStream();
    const tc = Date.now() - 60_000;
    const [c0, c1, c2, c3, c4] = clusters(frags, { to: 5, baseTimecode: tc });
    const half = Math.floor(c3!.length / 2);
    const stale = connect(stream);
    await stale.session.write(Buffer.concat([frags.header, c0!, c1!, c2!, c3!.subarray(0, half)]));
    await stale.until(ackFor('PERSISTED', timecodeOf(2, tc)));

    const acks = await sendBody(ts.url, stream, Buffer.concat([frags.header, c3!, c4!]), { timecodeType: 'ABSOLUTE' });
    expect(acksOf(acks, 'ERROR')).toEqual([]);
    expect([...ackSequences(acks).values()]).toEqual([
      ['BUFFERING', 'RECEIVED', 'PERSISTED'],
      ['BUFFERING', 'RECEIVED', 'PERSISTED'],
    ]);
    // The old connection comes back to life and finishes fragment 3: not stored a second time.
    await stale.session.write(c3!.subarray(half));
    const staleAcks = await stale.session.end();
    expect(staleAcks.filter((a) => a.FragmentTimecode === timecodeOf(3, tc)).map((a) => a.EventType)).toEqual(['BUFFERING']);
    const stored = await storedFragments(stream);
    expect(producerMs(stored)).toEqual([0, 1, 2, 3, 4].map((i) => timecodeOf(i, tc)));
    const read = await readFragments(stream, stored.map((f) => f.FragmentNumber!));
    expect(read.map(frameBytes)).toEqual([0, 1, 2, 3, 4].map(clusterFrameBytes));
  });
});

describe('ACK sequence', () => {
  it.each([
    ['known-size clusters', (tc: number) => body(frags, { to: 4, baseTimecode: tc })],
    ['unknown-size clusters closed by end-of-fragment Tags', (tc: number) => Buffer.concat([frags.header, ...liveClusters(0, 4, tc), END_OF_FRAGMENT])],
    ['unknown-size clusters closed by the end of the body', (tc: number) => Buffer.concat([frags.header, ...liveClusters(0, 4, tc)])],
  ])('is BUFFERING, RECEIVED, PERSISTED for every fragment (%s)', async (_layout, makeBody) => {
    const stream = await newStream();
    const tc = Date.now() - 60_000;
    const acks = await sendBody(ts.url, stream, makeBody(tc), { timecodeType: 'ABSOLUTE' });
    const sequences = ackSequences(acks);
    expect([...sequences.values()]).toEqual(Array.from({ length: 4 }, () => ['BUFFERING', 'RECEIVED', 'PERSISTED']));
    const numbers = [...sequences.keys()];
    expect([...numbers].sort()).toEqual(numbers);
    expect(numbers.every((n) => /^\d{40,}$/.test(n))).toBe(true);
    expect(acksOf(acks, 'BUFFERING').map((a) => a.FragmentTimecode)).toEqual([0, 1, 2, 3].map((i) => timecodeOf(i, tc)));
    expect((await storedFragments(stream)).map((f) => f.FragmentNumber)).toEqual(numbers);
  });
});

describe('a retention-0 stream', () => {
  it('gets BUFFERING and RECEIVED but no PERSISTED acks, and GetMedia still serves its fragments', async () => {
    const stream = await newStream(0);
    const acks = await sendBody(ts.url, stream, body(frags, { to: 4 }));
    const sequences = ackSequences(acks);
    expect([...sequences.values()]).toEqual(Array.from({ length: 4 }, () => ['BUFFERING', 'RECEIVED']));

    const fragments = await getMediaFragments(stream, 4);
    expect(fragments.map((f) => f.fragmentNumber)).toEqual([...sequences.keys()]);
    expect(fragments.map((f) => f.clusterTimecode)).toEqual(frags.clusters.slice(0, 4).map((c) => c.timecode));
    expect(fragments.map((f) => f.frames.length)).toEqual(frags.clusters.slice(0, 4).map((c) => c.blocks.length));
    expect(fragments.map(frameBytes)).toEqual([0, 1, 2, 3].map(clusterFrameBytes));
  });

  it('gets no PERSISTED acks for re-sent fragments either', async () => {
    const stream = await newStream(0);
    const tc = Date.now() - 60_000;
    const first = await sendBody(ts.url, stream, body(frags, { to: 3, baseTimecode: tc }), { timecodeType: 'ABSOLUTE' });
    const again = await sendBody(ts.url, stream, body(frags, { from: 1, to: 4, baseTimecode: tc }), { timecodeType: 'ABSOLUTE' });
    expect(acksOf(first, 'PERSISTED')).toEqual([]);
    expect(acksOf(again, 'PERSISTED')).toEqual([]);
    expect(acksOf(again, 'ERROR')).toEqual([]);
    // Fragments 1 and 2 are recognised as re-sends: same numbers as the first time.
    const numbers = (acks: PutMediaAck[]) => acksOf(acks, 'RECEIVED').map((a) => a.FragmentNumber);
    expect(numbers(again).slice(0, 2)).toEqual(numbers(first).slice(1));
    const fragments = await getMediaFragments(stream, 4);
    expect(fragments.map((f) => f.fragmentNumber)).toEqual([...numbers(first), numbers(again)[2]]);
  });
});
