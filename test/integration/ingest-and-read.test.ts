/**
 * Real H.264 from GStreamer uploaded with PutMedia, read back with the AWS SDK v3 media and
 * archived-media clients, checked by parsing and with ffprobe.
 */
import { GetMediaCommand } from '@aws-sdk/client-kinesis-video-media';
import {
  GetMediaForFragmentListCommand,
  ListFragmentsCommand,
  paginateListFragments,
  type Fragment,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ConsumedFragment, GetMediaParser } from '../../lib/consumer/get-media-parser.js';
import type { MkvFragments } from '../../lib/mkv/fragments.js';
import { putMedia } from '../../lib/producer/put-media-client.js';
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { ffprobePackets, h264Fragments, h264Mkv } from '../helpers/media.js';
import { acksOf, body, clusters, sendBody } from '../helpers/producer.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

let t: TestServer;
let frags: MkvFragments;

beforeAll(async () => {
  t = await startTestServer();
  frags = await h264Fragments({ frames: 150, gop: 30 }); // 5 fragments of 1 s
});
afterAll(() => t?.close());

/** Reads `count` fragment documents from a streaming payload, then stops reading. */
async function readFragments(payload: AsyncIterable<Uint8Array>, count: number): Promise<{ fragments: ConsumedFragment[]; raw: Buffer }> {
  const fragments: ConsumedFragment[] = [];
  const raw: Buffer[] = [];
  const parser = new GetMediaParser({ onFragment: (f) => fragments.push(f) });
  for await (const chunk of payload) {
    raw.push(Buffer.from(chunk));
    parser.push(chunk);
    if (fragments.length >= count) break;
  }
  return { fragments, raw: Buffer.concat(raw) };
}

async function listAll(streamName: string, pageSize = 2): Promise<Fragment[]> {
  const out: Fragment[] = [];
  const pages = paginateListFragments(
    { client: t.archived, pageSize },
    {
      StreamName: streamName,
      FragmentSelector: {
        FragmentSelectorType: 'SERVER_TIMESTAMP',
        TimestampRange: { StartTimestamp: new Date(0), EndTimestamp: new Date(Date.now() + 60_000) },
      },
    },
  );
  for await (const page of pages) out.push(...(page.Fragments ?? []));
  return out.sort((a, b) => a.FragmentNumber!.localeCompare(b.FragmentNumber!));
}

describe('PutMedia → storage → GetMedia / archive', () => {
  const stream = 'cam-basic';
  let acks: PutMediaAck[];
  const start = Date.now() - 10_000;

  beforeAll(async () => {
    await t.createStream(stream);
    acks = await sendBody(t.url, stream, body(frags), { producerStartMs: start });
  });

  it('acknowledges every fragment BUFFERING, RECEIVED, PERSISTED in order', () => {
    const n = frags.clusters.length;
    expect(n).toBe(5);
    const media = acks.filter((a) => a.EventType !== 'IDLE');
    expect(media.map((a) => a.EventType).filter((e) => e === 'ERROR')).toEqual([]);
    for (const type of ['BUFFERING', 'RECEIVED', 'PERSISTED'] as const) {
      expect(acksOf(media, type).map((a) => a.FragmentTimecode)).toEqual(frags.clusters.map((c) => c.timecode));
    }
    for (const c of frags.clusters) {
      const mine = media.filter((a) => a.FragmentTimecode === c.timecode);
      expect(mine.map((a) => a.EventType)).toEqual(['BUFFERING', 'RECEIVED', 'PERSISTED']);
      expect(new Set(mine.map((a) => a.FragmentNumber)).size).toBe(1);
      expect(mine[0]!.FragmentNumber).toMatch(/^\d{47}$/);
    }
  });

  it('ListFragments (SDK paginator) returns the acknowledged fragments with producer timestamps', async () => {
    const listed = await listAll(stream);
    expect(listed.map((f) => f.FragmentNumber)).toEqual(acksOf(acks, 'PERSISTED').map((a) => a.FragmentNumber));
    listed.forEach((f, i) => {
      expect(f.ProducerTimestamp!.getTime()).toBe(start + frags.clusters[i]!.timecode);
      expect(f.ServerTimestamp).toBeInstanceOf(Date);
      expect(f.FragmentLengthInMilliseconds).toBeGreaterThanOrEqual(900);
      expect(f.FragmentLengthInMilliseconds).toBeLessThanOrEqual(1100);
      expect(f.FragmentSizeInBytes).toBeGreaterThan(0);
    });
    // A producer-timestamp range selects by fragment start, both ends inclusive.
    const ranged = await t.archived.send(
      new ListFragmentsCommand({
        StreamName: stream,
        FragmentSelector: {
          FragmentSelectorType: 'PRODUCER_TIMESTAMP',
          TimestampRange: { StartTimestamp: listed[1]!.ProducerTimestamp, EndTimestamp: listed[3]!.ProducerTimestamp },
        },
      }),
    );
    expect(ranged.Fragments!.map((f) => f.FragmentNumber).sort()).toEqual(listed.slice(1, 4).map((f) => f.FragmentNumber));
    expect(ranged.NextToken).toBeUndefined();
  });

  it('GetMedia EARLIEST returns each fragment as its own MKV with the service tags, and every frame', async () => {
    const res = await t.media.send(new GetMediaCommand({ StreamName: stream, StartSelector: { StartSelectorType: 'EARLIEST' } }));
    expect(res.ContentType).toBe('video/webm');
    const { fragments } = await readFragments(res.Payload as AsyncIterable<Uint8Array>, frags.clusters.length);
    const persisted = acksOf(acks, 'PERSISTED');
    expect(fragments.map((f) => f.fragmentNumber)).toEqual(persisted.map((a) => a.FragmentNumber));
    fragments.forEach((f, i) => {
      expect(f.continuationToken).toBe(f.fragmentNumber);
      expect(f.producerTimestampMs).toBe(start + frags.clusters[i]!.timecode);
      expect(f.millisBehindNow).toBeGreaterThanOrEqual(0);
      expect(f.tracks[0]?.codecId).toBe('V_MPEG4/ISO/AVC');
      expect(f.frames.length).toBe(frags.clusters[i]!.blocks.length);
      expect(f.frames[0]!.keyframe).toBe(true);
      expect(f.frames.map((fr) => fr.timecode)).toEqual(frags.clusters[i]!.blocks.map((b) => frags.clusters[i]!.timecode + b.timecode));
    });
    expect(fragments.reduce((n, f) => n + f.frames.length, 0)).toBe(150);
  });

  it('GetMediaForFragmentList output plays in ffprobe with the frames and timestamps that were sent', async () => {
    const numbers = acksOf(acks, 'PERSISTED').map((a) => a.FragmentNumber!);
    const res = await t.archived.send(new GetMediaForFragmentListCommand({ StreamName: stream, Fragments: numbers }));
    const bytes = Buffer.from(await res.Payload!.transformToByteArray());
    // Each document is a standalone MKV: probe them one by one.
    const docs: Buffer[] = [];
    let at = 0;
    const EBML = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
    while (at < bytes.length) {
      const next = bytes.indexOf(EBML, at + 4);
      docs.push(bytes.subarray(at, next < 0 ? bytes.length : next));
      at = next < 0 ? bytes.length : next;
    }
    expect(docs.length).toBe(numbers.length);
    const sent = await ffprobePackets(await h264Mkv({ frames: 150, gop: 30 }));
    const got = [];
    for (const d of docs) got.push(...(await ffprobePackets(d)));
    expect(got.length).toBe(150);
    expect(got.map((p) => p.keyframe)).toEqual(sent.map((p) => p.keyframe));
    // Clusters are served as ingested (RELATIVE timecodes are not rewritten): the same timestamps.
    got.forEach((p, i) => expect(p.ptsTime).toBeCloseTo(sent[i]!.ptsTime, 3));
  });

  it('GetMedia by FRAGMENT_NUMBER, CONTINUATION_TOKEN, PRODUCER_TIMESTAMP and SERVER_TIMESTAMP start where asked', async () => {
    const numbers = acksOf(acks, 'PERSISTED').map((a) => a.FragmentNumber!);
    const listed = await listAll(stream);
    const first = async (selector: object) => {
      const res = await t.media.send(new GetMediaCommand({ StreamName: stream, StartSelector: selector as never }));
      const { fragments } = await readFragments(res.Payload as AsyncIterable<Uint8Array>, 1);
      return fragments[0]!.fragmentNumber;
    };
    expect(await first({ StartSelectorType: 'FRAGMENT_NUMBER', AfterFragmentNumber: numbers[1] })).toBe(numbers[2]);
    expect(await first({ StartSelectorType: 'CONTINUATION_TOKEN', ContinuationToken: numbers[3] })).toBe(numbers[4]);
    expect(
      await first({ StartSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: new Date(start + frags.clusters[2]!.timecode + 500) }),
    ).toBe(numbers[2]);
    // Fragments sent in one burst can share a server timestamp: the earliest of them is where it starts.
    const at = listed[3]!.ServerTimestamp!;
    const firstWithIt = listed.find((f) => f.ServerTimestamp!.getTime() === at.getTime())!.FragmentNumber;
    expect(await first({ StartSelectorType: 'SERVER_TIMESTAMP', StartTimestamp: at })).toBe(firstWithIt);
  });
});

describe('live GetMedia', () => {
  it('delivers the frames of the fragment being ingested before the fragment is complete, to many readers', async () => {
    const stream = 'cam-live';
    await t.createStream(stream);
    const readers = 10;
    const seen: Array<{ frames: number; firstFrameAt: number }> = [];
    const responses = await Promise.all(
      Array.from({ length: readers }, () =>
        t.media.send(new GetMediaCommand({ StreamName: stream, StartSelector: { StartSelectorType: 'NOW' } })),
      ),
    );
    const readersDone = responses.map(async (res, i) => {
      seen[i] = { frames: 0, firstFrameAt: 0 };
      const parser = new GetMediaParser({
        onFrame: () => {
          if (seen[i]!.frames++ === 0) seen[i]!.firstFrameAt = Date.now();
        },
      });
      for await (const chunk of res.Payload as AsyncIterable<Uint8Array>) {
        parser.push(chunk);
        if (seen[i]!.frames >= frags.clusters[0]!.blocks.length) break;
      }
    });

    // Send the header and the first cluster frame by frame, slowly; the cluster is not complete
    // until the second one starts.
    let receivedAt = 0;
    const session = putMedia({
      endpoint: t.url,
      streamName: stream,
      timecodeType: 'RELATIVE',
      onAck: (a, at) => {
        if (a.EventType === 'RECEIVED' && receivedAt === 0) receivedAt = at;
      },
    });
    await session.write(frags.header);
    const [first, second] = clusters(frags, { from: 0, to: 2 });
    // Split the first cluster in ~10 pieces sent 50 ms apart.
    const piece = Math.ceil(first!.length / 10);
    for (let off = 0; off < first!.length; off += piece) {
      await session.write(first!.subarray(off, off + piece));
      await new Promise((r) => setTimeout(r, 50));
    }
    await new Promise((r) => setTimeout(r, 300));
    await session.write(second!);
    await session.end();
    await Promise.all(readersDone);

    expect(receivedAt).toBeGreaterThan(0);
    for (const s of seen) {
      expect(s.frames).toBe(frags.clusters[0]!.blocks.length);
      // The first frame reached every reader before the server had the whole fragment.
      expect(s.firstFrameAt).toBeLessThan(receivedAt);
    }
  });
});
