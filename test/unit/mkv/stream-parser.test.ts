/**
 * The incremental Matroska parser: a real matroskamux file fed in chunks of every size gives the
 * same events and the same cluster bytes as the whole file; hand-built documents cover known- and
 * unknown-size clusters, the elements that end an unknown-size cluster, BlockGroups, skipped
 * elements, and every kind of malformed input.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import {
  ID,
  MkvError,
  SEGMENT_UNKNOWN_SIZE,
  element,
  elementHeader,
  encodeSize,
  stringElement,
  tagsElement,
  uintElement,
} from '../../../lib/mkv/ebml.js';
import { MkvStreamParser, type MkvParserOptions } from '../../../lib/mkv/stream-parser.js';
import { h264Mkv } from '../../helpers/media.js';

interface Parsed {
  events: string[];
  /** The onClusterData bytes of each cluster, concatenated. */
  clusters: Buffer[];
  /** Frame data of each block (with collectBlocks). */
  frames: Buffer[];
  /** Parser position at each onClusterStart (just after the Cluster header). */
  clusterStarts: number[];
}

/** Parses `chunks` one push each and records what the parser reports. */
function parse(chunks: Buffer[], options: MkvParserOptions = {}, end = true): Parsed {
  const out: Parsed = { events: [], clusters: [], frames: [], clusterStarts: [] };
  let cluster: Buffer[] | undefined;
  const parser: MkvStreamParser = new MkvStreamParser(
    {
      onEbmlHeader: (el) => out.events.push(`ebml ${el.toString('hex')}`),
      onSegmentStart: () => out.events.push('segment'),
      onTopElement: (id, el) => out.events.push(`top ${id.toString(16)} ${el.toString('hex')}`),
      onClusterStart: () => {
        out.events.push('cluster');
        out.clusterStarts.push(parser.position);
        expect(parser.inCluster).toBe(true);
        cluster = [];
      },
      onClusterTimecode: (tc) => out.events.push(`timecode ${tc}`),
      onBlock: (b) => {
        out.events.push(`block track=${b.track} tc=${b.timecode} key=${b.keyframe} flags=${b.flags} size=${b.size}`);
        if (b.data) out.frames.push(Buffer.from(b.data));
      },
      onClusterData: (bytes) => cluster!.push(Buffer.from(bytes)),
      onClusterEnd: () => {
        out.events.push('cluster end');
        out.clusters.push(Buffer.concat(cluster!));
        cluster = undefined;
      },
    },
    options,
  );
  for (const chunk of chunks) parser.push(chunk);
  if (end) parser.end();
  expect(parser.position).toBe(chunks.reduce((n, c) => n + c.length, 0));
  return out;
}

function chunked(data: Buffer, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) out.push(data.subarray(i, i + size));
  return out;
}

/** Parses one buffer, returning the MkvError message (or undefined when it parses). */
function errorOf(data: Buffer | Buffer[], options: MkvParserOptions = {}): string | undefined {
  try {
    parse(Array.isArray(data) ? data : [data], options);
    return undefined;
  } catch (err) {
    expect(err).toBeInstanceOf(MkvError);
    return (err as Error).message;
  }
}

// ---- hand-built documents -----------------------------------------------------------------

const EBML = element(ID.EBML, [stringElement(0x4282, 'matroska'), uintElement(0x4287, 2)]);
const INFO = element(ID.Info, uintElement(ID.TimecodeScale, 1_000_000));
const TRACKS = element(
  ID.Tracks,
  element(ID.TrackEntry, [uintElement(ID.TrackNumber, 1), uintElement(ID.TrackType, 1), stringElement(ID.CodecID, 'V_TEST')]),
);
const HEAD = Buffer.concat([EBML, SEGMENT_UNKNOWN_SIZE, INFO, TRACKS]);

function blockPayload(track: number, timecode: number, flags: number, data: Buffer): Buffer {
  const tc = Buffer.alloc(2);
  tc.writeInt16BE(timecode);
  return Buffer.concat([encodeSize(track), tc, Buffer.from([flags]), data]);
}
const simpleBlock = (track: number, timecode: number, key: boolean, data: Buffer) =>
  element(ID.SimpleBlock, blockPayload(track, timecode, key ? 0x80 : 0, data));
const frame = (n: number, fill: number) => Buffer.alloc(n, fill);

const clusterChildren = (timecode: number, blocks: Buffer[]): Buffer[] => [uintElement(ID.Timecode, timecode), ...blocks];
const knownCluster = (timecode: number, blocks: Buffer[], sizeWidth?: number) =>
  element(ID.Cluster, clusterChildren(timecode, blocks), sizeWidth);
const unknownCluster = (timecode: number, blocks: Buffer[]) =>
  Buffer.concat([elementHeader(ID.Cluster, undefined), ...clusterChildren(timecode, blocks)]);

const HEAD_EVENTS = [`ebml ${EBML.toString('hex')}`, 'segment', `top 1549a966 ${INFO.toString('hex')}`, `top 1654ae6b ${TRACKS.toString('hex')}`];

// ---- a real file ----------------------------------------------------------------------------

describe('a real matroskamux file', () => {
  let file: Buffer;
  let whole: Parsed;

  beforeAll(async () => {
    // Small enough to parse it once per chunk size; three 4-frame GOPs, unknown-size clusters.
    file = await h264Mkv({ frames: 12, gop: 4, width: 64, height: 48, bitrate: 50 });
    whole = parse([file]);
  });

  it('is parsed into header elements, clusters and blocks', () => {
    const kinds = whole.events.map((e) => e.split(' ')[0]);
    expect(kinds.slice(0, 2)).toEqual(['ebml', 'segment']);
    const tops = whole.events.filter((e) => e.startsWith('top ')).map((e) => e.split(' ')[1]);
    expect(tops).toEqual(expect.arrayContaining(['1549a966', '1654ae6b']));
    expect(whole.events.filter((e) => e === 'cluster')).toHaveLength(3);
    expect(whole.events.filter((e) => e === 'cluster end')).toHaveLength(3);
    expect(whole.events.filter((e) => e.startsWith('timecode '))).toEqual(['timecode 0', 'timecode 133', 'timecode 266']);
    const blocks = whole.events.filter((e) => e.startsWith('block '));
    expect(blocks).toHaveLength(12);
    expect(blocks.filter((b) => b.includes('key=true'))).toHaveLength(3);
    expect(blocks.every((b) => b.includes('track=1'))).toBe(true);
    expect(whole.events.at(-1)).toBe('cluster end');
  });

  it('hands on every byte of each cluster after its header', () => {
    // Unknown-size clusters: each runs from its header to the next Cluster header (12 bytes).
    const { clusterStarts, clusters } = whole;
    for (let i = 0; i < clusters.length; i++) {
      const end = i + 1 < clusterStarts.length ? clusterStarts[i + 1]! - 12 : file.length;
      expect(clusters[i]!.equals(file.subarray(clusterStarts[i], end)), `cluster ${i}`).toBe(true);
    }
  });

  it('gives the same events and cluster bytes for chunks of every size', () => {
    const differing: number[] = [];
    for (let size = 1; size <= file.length; size++) {
      const got = parse(chunked(file, size));
      const same =
        got.events.length === whole.events.length &&
        got.events.every((e, i) => e === whole.events[i]) &&
        got.clusters.every((c, i) => c.equals(whole.clusters[i]!));
      if (!same) differing.push(size);
    }
    expect(differing).toEqual([]);
  });

  it('delivers the same frame data with collectBlocks for chunks of every size', () => {
    const reference = parse([file], { collectBlocks: true });
    expect(reference.events).toEqual(whole.events);
    expect(reference.clusters).toEqual(whole.clusters);
    expect(reference.frames).toHaveLength(12);
    // Each frame is the tail of its SimpleBlock in the file.
    for (const f of reference.frames) expect(file.includes(f)).toBe(true);

    const differing: number[] = [];
    for (let size = 1; size <= file.length; size++) {
      const got = parse(chunked(file, size), { collectBlocks: true });
      const same =
        got.events.join('\n') === reference.events.join('\n') &&
        got.frames.length === reference.frames.length &&
        got.frames.every((f, i) => f.equals(reference.frames[i]!)) &&
        got.clusters.every((c, i) => c.equals(reference.clusters[i]!));
      if (!same) differing.push(size);
    }
    expect(differing).toEqual([]);
  });

  it('refuses the file cut anywhere inside an element', () => {
    // Cut inside the last block, inside the first cluster's Timecode, inside the EBML header.
    const timecodeAt = whole.clusterStarts[0]! + 2;
    for (const cut of [file.length - 10, timecodeAt, 10]) {
      expect(errorOf(file.subarray(0, cut)), `cut at ${cut}`).toMatch(/ends inside/);
    }
  });
});

// ---- clusters -----------------------------------------------------------------------------

describe('clusters', () => {
  const b1 = simpleBlock(1, 0, true, frame(20, 1));
  const b2 = simpleBlock(1, 40, false, frame(5, 2));

  it('ends a known-size cluster at its size, before what follows', () => {
    const tags = tagsElement([['A', '1']]);
    const got = parse([HEAD, knownCluster(1000, [b1, b2]), tags]);
    expect(got.events).toEqual([
      ...HEAD_EVENTS,
      'cluster',
      'timecode 1000',
      'block track=1 tc=0 key=true flags=128 size=20',
      'block track=1 tc=40 key=false flags=0 size=5',
      'cluster end',
      `top 1254c367 ${tags.toString('hex')}`,
    ]);
    expect(got.clusters).toEqual([Buffer.concat(clusterChildren(1000, [b1, b2]))]);
  });

  it('accepts 8-byte fixed-width sizes everywhere, as kvssink writes them', () => {
    const wide = (id: number, children: Buffer[]) => element(id, children, 8);
    const doc = Buffer.concat([
      wide(ID.EBML, [element(0x4282, Buffer.from('matroska'), 8)]),
      SEGMENT_UNKNOWN_SIZE,
      wide(ID.Info, [element(ID.TimecodeScale, Buffer.from([0x0f, 0x42, 0x40]), 8)]),
      wide(ID.Tracks, [wide(ID.TrackEntry, [element(ID.TrackNumber, Buffer.from([1]), 8)])]),
      wide(ID.Cluster, [element(ID.Timecode, Buffer.from([0, 0, 0, 0, 0, 0, 0x03, 0xe8]), 8), element(ID.SimpleBlock, blockPayload(1, 0, 0x80, frame(3, 7)), 8)]),
    ]);
    const got = parse(chunked(doc, 5));
    expect(got.events.filter((e) => !e.startsWith('ebml') && !e.startsWith('top'))).toEqual([
      'segment',
      'cluster',
      'timecode 1000',
      'block track=1 tc=0 key=true flags=128 size=3',
      'cluster end',
    ]);
  });

  it('ends an unknown-size cluster at the next Cluster', () => {
    const got = parse([HEAD, unknownCluster(0, [b1]), unknownCluster(1000, [b2])]);
    expect(got.events.slice(4)).toEqual([
      'cluster',
      'timecode 0',
      'block track=1 tc=0 key=true flags=128 size=20',
      'cluster end',
      'cluster',
      'timecode 1000',
      'block track=1 tc=40 key=false flags=0 size=5',
      'cluster end',
    ]);
    expect(got.clusters).toEqual([Buffer.concat(clusterChildren(0, [b1])), Buffer.concat(clusterChildren(1000, [b2]))]);
  });

  it('ends an unknown-size cluster at a Tags element, before reporting the Tags', () => {
    const eofr = tagsElement([['AWS_KINESISVIDEO_END_OF_FRAGMENT', '']]);
    const got = parse([HEAD, unknownCluster(0, [b1]), eofr, unknownCluster(1000, [b2])]);
    expect(got.events.slice(4)).toEqual([
      'cluster',
      'timecode 0',
      'block track=1 tc=0 key=true flags=128 size=20',
      'cluster end',
      `top 1254c367 ${eofr.toString('hex')}`,
      'cluster',
      'timecode 1000',
      'block track=1 tc=40 key=false flags=0 size=5',
      'cluster end',
    ]);
    // The Tags bytes are not part of the first cluster.
    expect(got.clusters[0]).toEqual(Buffer.concat(clusterChildren(0, [b1])));
  });

  it('ends an unknown-size cluster at another level-1 element or a new EBML document', () => {
    const got = parse([HEAD, unknownCluster(0, [b1]), TRACKS, unknownCluster(1, [b1]), HEAD, unknownCluster(2, [b2])]);
    const marks = got.events.map((e) => (e.startsWith('block') ? 'block' : e.split(' ').slice(0, 2).join(' ')));
    expect(marks).toEqual([
      'ebml ' + EBML.toString('hex'), 'segment', 'top 1549a966', 'top 1654ae6b',
      'cluster', 'timecode 0', 'block', 'cluster end',
      'top 1654ae6b',
      'cluster', 'timecode 1', 'block', 'cluster end',
      'ebml ' + EBML.toString('hex'), 'segment', 'top 1549a966', 'top 1654ae6b',
      'cluster', 'timecode 2', 'block', 'cluster end',
    ]);
  });

  it('ends an unknown-size cluster at the end of input only on end()', () => {
    const events: string[] = [];
    const parser = new MkvStreamParser({ onClusterEnd: () => events.push('cluster end') });
    parser.push(Buffer.concat([HEAD, unknownCluster(0, [b1])]));
    expect(parser.inCluster).toBe(true);
    expect(events).toEqual([]);
    parser.end();
    expect(parser.inCluster).toBe(false);
    expect(events).toEqual(['cluster end']);
  });

  it('reports blocks inside BlockGroups and passes the whole group as cluster data', () => {
    const group = element(ID.BlockGroup, [
      element(ID.Block, blockPayload(1, 33, 0, frame(9, 3))),
      uintElement(ID.BlockDuration, 33),
      uintElement(ID.ReferenceBlock, 0),
    ]);
    const children = [b1, group, b2];
    for (const cluster of [knownCluster(0, children), unknownCluster(0, children)]) {
      const got = parse(chunked(Buffer.concat([HEAD, cluster, tagsElement([['x', 'y']])]), 3), { collectBlocks: true });
      expect(got.events.filter((e) => e.startsWith('block') || e.startsWith('cluster'))).toEqual([
        'cluster',
        'block track=1 tc=0 key=true flags=128 size=20',
        'block track=1 tc=33 key=false flags=0 size=9',
        'block track=1 tc=40 key=false flags=0 size=5',
        'cluster end',
      ]);
      expect(got.frames).toEqual([frame(20, 1), frame(9, 3), frame(5, 2)]);
      expect(got.clusters).toEqual([Buffer.concat(clusterChildren(0, children))]);
    }
  });

  it('passes other cluster children (Position, Void, CRC-32) through as cluster data', () => {
    const extras = [uintElement(ID.Position, 0), element(ID.Void, frame(4, 0)), element(ID.CRC32, frame(4, 9))];
    const got = parse([HEAD, knownCluster(5, [...extras, b1])]);
    expect(got.events.filter((e) => e.startsWith('block'))).toHaveLength(1);
    expect(got.clusters).toEqual([Buffer.concat(clusterChildren(5, [...extras, b1]))]);
  });

  it('skips Void, Cues and CRC-32 at the top level and collects unknown level-1 elements', () => {
    const cues = element(ID.Cues, frame(10, 0));
    const seekHead = element(ID.SeekHead, frame(3, 1));
    const got = parse([EBML, element(ID.Void, frame(2, 0)), SEGMENT_UNKNOWN_SIZE, element(ID.Void, frame(6, 0)), INFO, cues, seekHead]);
    expect(got.events).toEqual([`ebml ${EBML.toString('hex')}`, 'segment', `top 1549a966 ${INFO.toString('hex')}`, `top 114d9b74 ${seekHead.toString('hex')}`]);
  });

  it('ends a known-size Segment at its size', () => {
    const segmentBody = Buffer.concat([INFO, knownCluster(0, [b1])]);
    const doc = Buffer.concat([EBML, element(ID.Segment, segmentBody), EBML, SEGMENT_UNKNOWN_SIZE, unknownCluster(7, [b2])]);
    const got = parse(chunked(doc, 7));
    expect(got.events.filter((e) => e === 'segment' || e.startsWith('timecode') || e === 'cluster end')).toEqual([
      'segment',
      'timecode 0',
      'cluster end',
      'segment',
      'timecode 7',
      'cluster end',
    ]);
  });
});

// ---- malformed input ---------------------------------------------------------------------------

describe('malformed input', () => {
  const b1 = simpleBlock(1, 0, true, frame(20, 1));

  it('refuses garbage', () => {
    expect(errorOf(Buffer.from([0x00, 0x01, 0x02, 0x03]))).toMatch(/invalid element ID byte 0x0 at offset 0/);
    expect(errorOf(Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'))).toMatch(/expected an EBML header or a Segment/);
    expect(errorOf(Buffer.concat([HEAD, Buffer.alloc(8)]))).toMatch(new RegExp(`invalid element ID byte 0x0 at offset ${HEAD.length}`));
    expect(errorOf(Buffer.from([0x1a, 0x45, 0xdf, 0xa3, 0x00]))).toMatch(/invalid element size/);
    expect(errorOf(Buffer.concat([elementHeader(ID.EBML, undefined), frame(4, 0)]))).toMatch(/unknown size/);
  });

  it('refuses input that ends inside an element', () => {
    const doc = Buffer.concat([HEAD, knownCluster(0, [b1])]);
    const cases: Record<string, Buffer> = {
      'inside an ID': doc.subarray(0, HEAD.length + 2),
      'inside the EBML header': doc.subarray(0, 5),
      'inside Tracks': doc.subarray(0, HEAD.length - 3),
      'inside a block': doc.subarray(0, doc.length - 4),
      'between children of a known-size cluster': doc.subarray(0, doc.length - b1.length),
      'inside a known-size Segment': Buffer.concat([EBML, elementHeader(ID.Segment, 100), INFO]),
    };
    for (const [what, input] of Object.entries(cases)) {
      expect(errorOf(input), what).toMatch(/ends inside/);
    }
  });

  it('refuses input that ends inside a BlockGroup of an unknown-size cluster', () => {
    const block = element(ID.Block, blockPayload(1, 0, 0x80, frame(5, 1)));
    // The group announces a BlockDuration after its Block, but the input ends after the Block.
    const groupHeader = elementHeader(ID.BlockGroup, block.length + 3);
    const input = Buffer.concat([HEAD, unknownCluster(0, []), groupHeader, block]);
    expect(errorOf(input)).toMatch(/ends inside/);
  });

  it('refuses elements that overrun their parent', () => {
    const cluster = knownCluster(0, [b1]);
    // Grow the block's size by one byte: it now runs past the end of the cluster.
    const overrunCluster = Buffer.from(cluster);
    const blockAt = overrunCluster.indexOf(b1);
    overrunCluster[blockAt + 1]! += 1;
    expect(errorOf([HEAD, overrunCluster, tagsElement([['a', 'b']])])).toMatch(/overruns its Cluster/);

    const segment = Buffer.concat([elementHeader(ID.Segment, INFO.length - 1), INFO]);
    expect(errorOf([EBML, segment])).toMatch(/overruns its Segment/);

    const group = element(ID.BlockGroup, element(ID.Block, blockPayload(1, 0, 0, frame(4, 0))));
    const badGroup = Buffer.from(group);
    badGroup[1]! -= 1; // the group is one byte shorter than its Block
    expect(errorOf([HEAD, unknownCluster(0, [badGroup])])).toMatch(/BlockGroup/);
  });

  it('refuses unknown sizes where only known sizes are allowed', () => {
    expect(errorOf([HEAD, elementHeader(ID.Tags, undefined)])).toMatch(/unknown size/);
    expect(errorOf([HEAD, unknownCluster(0, []), elementHeader(ID.SimpleBlock, undefined)])).toMatch(/unknown size/);
  });

  it('refuses blocks too short for a block header', () => {
    expect(errorOf([HEAD, knownCluster(0, [element(ID.SimpleBlock, Buffer.from([0x81, 0x00]))])])).toMatch(/block header/);
    expect(errorOf([HEAD, knownCluster(0, [element(ID.SimpleBlock, Buffer.alloc(0))])])).toMatch(/block header/);
  });

  it('refuses a collected element larger than maxElementBytes, before buffering it', () => {
    const tags = tagsElement([['name', 'x'.repeat(100)]]);
    const payloadSize = tags.length - 8; // 4-byte ID, 4-byte size
    expect(errorOf([HEAD, tags], { maxElementBytes: payloadSize })).toBeUndefined();
    // Only the header is pushed: the refusal does not wait for the payload.
    const headerOnly = tags.subarray(0, 8);
    const parser = new MkvStreamParser({}, { maxElementBytes: payloadSize - 1 });
    parser.push(HEAD);
    expect(() => parser.push(headerOnly)).toThrow(/larger than/);
  });

  it('does not limit media that is passed through', () => {
    const big = simpleBlock(1, 0, true, frame(5000, 1));
    const got = parse([HEAD, knownCluster(0, [big])], { maxElementBytes: 1000 });
    expect(got.events).toContain('block track=1 tc=0 key=true flags=128 size=5000');
  });
});
