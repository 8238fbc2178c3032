/**
 * EBML primitives: element IDs and size vints (every width, the unknown size, the limits),
 * the element builders, and the readers for child elements, SimpleTags, Tracks and blocks —
 * on hand-built elements and on what matroskamux really writes.
 */
import { describe, expect, it } from 'vitest';
import {
  ID,
  MkvError,
  SEGMENT_UNKNOWN_SIZE,
  UNKNOWN_SIZE,
  element,
  elementHeader,
  elementPayload,
  encodeId,
  encodeSize,
  idLength,
  readBlockHeader,
  readChildren,
  readFloat,
  readId,
  readSimpleTags,
  readTimecodeScale,
  readTracks,
  readUint,
  readVintSize,
  stringElement,
  tagsElement,
  uintElement,
  vintLength,
} from '../../../lib/mkv/ebml.js';
import { h264Fragments } from '../../helpers/media.js';

const hex = (b: Buffer): string => b.toString('hex');

/** Largest value a size vint of `width` bytes can hold (all ones is reserved for "unknown"). */
const maxSize = (width: number): number => Math.min(2 ** (7 * width) - 2, Number.MAX_SAFE_INTEGER);

describe('size vints', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('round-trips values through a %i-byte size', (width) => {
    for (const value of [0, 1, 100, Math.min(2 ** (7 * width - 1), Number.MAX_SAFE_INTEGER), maxSize(width)]) {
      const encoded = encodeSize(value, width);
      expect(encoded.length).toBe(width);
      expect(vintLength(encoded[0]!)).toBe(width);
      expect(readVintSize(encoded, 0, width)).toBe(value);
    }
  });

  it('picks the smallest width when none is given', () => {
    const widths = [0, 126, 127, 16_382, 16_383, 2 ** 21 - 2, 2 ** 21 - 1, 2 ** 49 - 2, 2 ** 49 - 1].map(
      (v) => encodeSize(v).length,
    );
    // 127 is 0xff in one byte, the reserved unknown size: it needs two bytes.
    expect(widths).toEqual([1, 1, 2, 2, 3, 3, 4, 7, 8]);
    expect(hex(encodeSize(0))).toBe('80');
    expect(hex(encodeSize(126))).toBe('fe');
    expect(hex(encodeSize(127))).toBe('407f');
    expect(hex(encodeSize(1000, 4))).toBe('100003e8');
  });

  it('reads the all-ones value of every width as the unknown size', () => {
    for (let width = 1; width <= 8; width++) {
      const allOnes = Buffer.alloc(width, 0xff);
      allOnes[0] = 0xff >> (width - 1);
      expect(vintLength(allOnes[0]!)).toBe(width);
      expect(readVintSize(allOnes, 0, width)).toBeUndefined();
    }
    expect(readVintSize(UNKNOWN_SIZE, 0, 8)).toBeUndefined();
    // One bit short of all ones is a real size.
    expect(readVintSize(Buffer.from([0x7f, 0xfe]), 0, 2)).toBe(0x3ffe);
  });

  it('reads a size at an offset inside a larger buffer', () => {
    const buf = Buffer.concat([Buffer.from([0xaa, 0xbb]), encodeSize(300, 3), Buffer.from([0xcc])]);
    expect(readVintSize(buf, 2, 3)).toBe(300);
  });

  it('refuses sizes that do not fit', () => {
    expect(() => encodeSize(127, 1)).toThrow(MkvError);
    expect(() => encodeSize(2 ** 14 - 1, 2)).toThrow(MkvError);
    expect(() => encodeSize(2 ** 56)).toThrow(MkvError);
    // An 8-byte size beyond 2^53 cannot be represented exactly.
    const huge = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
    expect(() => readVintSize(huge, 0, 8)).toThrow(MkvError);
  });

  it('reports no length for a first byte without a marker bit', () => {
    expect(vintLength(0x00)).toBe(0);
    expect(vintLength(0x01)).toBe(8);
    expect(vintLength(0x80)).toBe(1);
  });
});

describe('element IDs', () => {
  it('round-trips every known ID and its class length', () => {
    for (const [name, id] of Object.entries(ID)) {
      const encoded = encodeId(id);
      expect(idLength(encoded[0]!), name).toBe(encoded.length);
      expect(readId(encoded, 0, encoded.length), name).toBe(id);
    }
  });

  it('uses 1 to 4 bytes', () => {
    expect(hex(encodeId(ID.SimpleBlock))).toBe('a3');
    expect(hex(encodeId(ID.SimpleTag))).toBe('67c8');
    expect(hex(encodeId(ID.TimecodeScale))).toBe('2ad7b1');
    expect(hex(encodeId(ID.Cluster))).toBe('1f43b675');
  });

  it('rejects first bytes that cannot start an ID', () => {
    for (const first of [0x00, 0x01, 0x08, 0x0f]) expect(idLength(first)).toBe(0);
  });
});

describe('element builders', () => {
  it('builds an element with a minimal or fixed-width size', () => {
    expect(hex(element(ID.Void, Buffer.alloc(3)))).toBe('ec83000000');
    expect(hex(element(ID.Void, Buffer.alloc(3), 4))).toBe('ec10000003000000');
    expect(hex(element(ID.Tag, [Buffer.from('ab'), Buffer.from('c')]))).toBe('737383616263');
  });

  it('builds headers with the 8-byte unknown size', () => {
    expect(hex(elementHeader(ID.Cluster, undefined))).toBe('1f43b67501ffffffffffffff');
    expect(hex(SEGMENT_UNKNOWN_SIZE)).toBe('1853806701ffffffffffffff');
    expect(hex(elementHeader(ID.Cluster, 10, 8))).toBe('1f43b675010000000000000a');
  });

  it('writes unsigned integers big-endian, minimal or zero-padded', () => {
    expect(hex(uintElement(ID.Timecode, 0))).toBe('e78100');
    expect(hex(uintElement(ID.TimecodeScale, 1_000_000))).toBe('2ad7b1830f4240');
    expect(hex(uintElement(ID.Timecode, 1000, 8))).toBe('e78800000000000003e8');
    expect(hex(uintElement(ID.Timecode, 2n ** 63n))).toBe('e7888000000000000000');
    const epochMs = 1_700_000_000_123;
    expect(readUint(elementPayload(uintElement(ID.Timecode, epochMs)))).toBe(epochMs);
  });

  it('writes strings as UTF-8', () => {
    const el = stringElement(ID.TagName, 'café', 4);
    expect(hex(el.subarray(0, 6))).toBe('45a310000005');
    expect(elementPayload(el).toString('utf8')).toBe('café');
  });

  it('builds Tags that readSimpleTags reads back, every size 4 bytes wide', () => {
    const pairs: Array<[string, string]> = [
      ['AWS_KINESISVIDEO_FRAGMENT_NUMBER', '91343852333181447247962534042408424052728840414'],
      ['name', ''],
      ['ünïcode', 'välue'],
    ];
    const tags = tagsElement(pairs);
    expect(hex(tags.subarray(0, 8))).toMatch(/^1254c36710[0-9a-f]{6}$/);
    expect(readSimpleTags(tags)).toEqual(pairs);
    const [tag] = [...readChildren(elementPayload(tags))];
    expect(tag!.id).toBe(ID.Tag);
    expect([...readChildren(tag!.data)].map((c) => c.id)).toEqual([ID.SimpleTag, ID.SimpleTag, ID.SimpleTag]);
  });
});

describe('readers', () => {
  it('lists children in order, as views into the payload', () => {
    const payload = Buffer.concat([
      uintElement(ID.TrackNumber, 1),
      stringElement(ID.CodecID, 'V_MPEG4/ISO/AVC'),
      element(ID.Void, Buffer.alloc(0)),
      element(ID.CodecPrivate, Buffer.from([1, 2, 3]), 8),
    ]);
    const children = [...readChildren(payload)];
    expect(children.map((c) => c.id)).toEqual([ID.TrackNumber, ID.CodecID, ID.Void, ID.CodecPrivate]);
    expect(children.map((c) => hex(c.data))).toEqual(['01', Buffer.from('V_MPEG4/ISO/AVC').toString('hex'), '', '010203']);
    expect(children[3]!.data.buffer).toBe(payload.buffer);
    expect([...readChildren(Buffer.alloc(0))]).toEqual([]);
  });

  it('rejects children that are broken or overrun their parent', () => {
    const good = uintElement(ID.TrackNumber, 1);
    const cases = {
      'invalid ID byte': Buffer.concat([good, Buffer.from([0x00, 0x81, 0x00])]),
      'ID without size': Buffer.concat([good, Buffer.from([0xd7])]),
      'invalid size byte': Buffer.from([0xd7, 0x00, 0x01]),
      'size cut short': Buffer.from([0xd7, 0x40]),
      overrun: Buffer.from([0xd7, 0x84, 0x01, 0x02]),
      'unknown size': Buffer.from([0xd7, 0xff, 0x01]),
    };
    for (const [what, payload] of Object.entries(cases)) {
      expect(() => [...readChildren(payload)], what).toThrow(MkvError);
    }
  });

  it('reads Tags with Targets and several Tag elements', () => {
    const simpleTag = (name: string, value: string) =>
      element(ID.SimpleTag, [stringElement(ID.TagName, name), stringElement(ID.TagString, value)]);
    const tags = element(ID.Tags, [
      element(ID.Tag, [element(ID.Targets, uintElement(0x68ca, 50)), simpleTag('TITLE', 'a')]),
      element(ID.Void, Buffer.alloc(2)),
      element(ID.Tag, [simpleTag('ENCODER', 'b'), simpleTag('AWS_KINESISVIDEO_END_OF_FRAGMENT', '')]),
    ]);
    expect(readSimpleTags(tags)).toEqual([
      ['TITLE', 'a'],
      ['ENCODER', 'b'],
      ['AWS_KINESISVIDEO_END_OF_FRAGMENT', ''],
    ]);
  });

  it('reads hand-built Tracks', () => {
    const tracks = element(ID.Tracks, [
      element(ID.TrackEntry, [
        uintElement(ID.TrackNumber, 1),
        uintElement(ID.TrackType, 1),
        stringElement(ID.CodecID, 'V_MPEG4/ISO/AVC\0'),
        element(ID.CodecPrivate, Buffer.from([1, 0x64, 0, 0x1f])),
        element(ID.Video, [uintElement(ID.PixelWidth, 1280), uintElement(ID.PixelHeight, 720)]),
      ]),
      element(ID.TrackEntry, [uintElement(ID.TrackNumber, 2), uintElement(ID.TrackType, 2), stringElement(ID.CodecID, 'A_AAC')]),
    ]);
    const read = readTracks(tracks);
    expect(read).toEqual([
      { number: 1, type: 1, codecId: 'V_MPEG4/ISO/AVC', codecPrivate: Buffer.from([1, 0x64, 0, 0x1f]), width: 1280, height: 720 },
      { number: 2, type: 2, codecId: 'A_AAC' },
    ]);
  });

  it('reads the Info and Tracks matroskamux writes', async () => {
    const video = await h264Fragments({ frames: 4, width: 64, height: 48 });
    expect(readTimecodeScale(video.info)).toBe(1_000_000);
    const [track, ...others] = readTracks(video.tracks);
    expect(others).toEqual([]);
    expect(track).toMatchObject({ number: 1, type: 1, codecId: 'V_MPEG4/ISO/AVC', width: 64, height: 48 });
    expect(track!.codecPrivate![0]).toBe(1); // avcC configurationVersion

    const av = await h264Fragments({ frames: 4, width: 64, height: 48, audio: true });
    expect(readTracks(av.tracks).map((t) => [t.number, t.type, t.codecId])).toEqual([
      [1, 1, 'V_MPEG4/ISO/AVC'],
      [2, 2, 'A_AAC'],
    ]);
  });

  it('reads the TimecodeScale of Info, 1 ms when absent', () => {
    expect(readTimecodeScale(element(ID.Info, uintElement(ID.TimecodeScale, 100_000)))).toBe(100_000);
    expect(readTimecodeScale(element(ID.Info, stringElement(0x4d80, 'muxer')))).toBe(1_000_000);
  });

  it('reads unsigned integers and floats', () => {
    expect(readUint(Buffer.alloc(0))).toBe(0);
    expect(readUint(Buffer.from([1, 0]))).toBe(256);
    expect(readUint(Buffer.from([0, 0, 0, 0, 0, 0, 0, 7]))).toBe(7);
    expect(() => readUint(Buffer.alloc(9))).toThrow(MkvError);

    const f4 = Buffer.alloc(4);
    f4.writeFloatBE(0.5);
    const f8 = Buffer.alloc(8);
    f8.writeDoubleBE(29.97);
    expect(readFloat(f4)).toBe(0.5);
    expect(readFloat(f8)).toBe(29.97);
    expect(readFloat(Buffer.alloc(0))).toBe(0);
    expect(() => readFloat(Buffer.alloc(3))).toThrow(MkvError);
  });

  it('reads block headers: track vint, signed timecode, flags', () => {
    const tc = Buffer.alloc(2);
    tc.writeInt16BE(-5);
    expect(readBlockHeader(Buffer.concat([encodeSize(1), tc, Buffer.from([0x80, 0xaa])]))).toEqual({
      track: 1,
      timecode: -5,
      flags: 0x80,
      headerLength: 4,
    });
    tc.writeInt16BE(32767);
    expect(readBlockHeader(Buffer.concat([encodeSize(200), tc, Buffer.from([0x00])]))).toEqual({
      track: 200,
      timecode: 32767,
      flags: 0,
      headerLength: 5,
    });
    expect(() => readBlockHeader(Buffer.from([0x81, 0x00]))).toThrow(MkvError);
    expect(() => readBlockHeader(Buffer.from([0x00, 0x00, 0x00, 0x00]))).toThrow(MkvError);
    expect(() => readBlockHeader(Buffer.from([0xff, 0x00, 0x00, 0x00]))).toThrow(MkvError);
  });

  it('skips the header of a complete element', () => {
    expect(hex(elementPayload(element(ID.Cluster, Buffer.from([9, 8]), 8)))).toBe('0908');
    expect(() => elementPayload(Buffer.from([0x00]))).toThrow(MkvError);
    expect(() => elementPayload(Buffer.from([0x1f, 0x43]))).toThrow(MkvError);
  });
});
