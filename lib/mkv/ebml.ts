/**
 * EBML primitives used by every part of openkvs that reads or writes Matroska: element IDs,
 * variable-length integers, and element builders. Writers use fixed-width size fields where the
 * Kinesis Video Streams service does (4-byte sizes in service tags, 8-byte cluster sizes).
 */

export const ID = {
  EBML: 0x1a45dfa3,
  Segment: 0x18538067,
  SeekHead: 0x114d9b74,
  Info: 0x1549a966,
  TimecodeScale: 0x2ad7b1,
  Tracks: 0x1654ae6b,
  TrackEntry: 0xae,
  TrackNumber: 0xd7,
  TrackType: 0x83,
  CodecID: 0x86,
  CodecPrivate: 0x63a2,
  DefaultDuration: 0x23e383,
  Video: 0xe0,
  PixelWidth: 0xb0,
  PixelHeight: 0xba,
  Audio: 0xe1,
  Cues: 0x1c53bb6b,
  Chapters: 0x1043a770,
  Attachments: 0x1941a469,
  Tags: 0x1254c367,
  Tag: 0x7373,
  Targets: 0x63c0,
  SimpleTag: 0x67c8,
  TagName: 0x45a3,
  TagString: 0x4487,
  Cluster: 0x1f43b675,
  Timecode: 0xe7,
  Position: 0xa7,
  PrevSize: 0xab,
  SimpleBlock: 0xa3,
  BlockGroup: 0xa0,
  Block: 0xa1,
  BlockDuration: 0x9b,
  ReferenceBlock: 0xfb,
  Void: 0xec,
  CRC32: 0xbf,
} as const;

/** Level-1 elements (children of Segment). Seeing one inside an unknown-size Cluster ends it. */
export const TOP_LEVEL_IDS: ReadonlySet<number> = new Set([
  ID.SeekHead,
  ID.Info,
  ID.Tracks,
  ID.Cues,
  ID.Chapters,
  ID.Attachments,
  ID.Tags,
  ID.Cluster,
]);

export class MkvError extends Error {
  override name = 'MkvError';
}

/** Length in bytes of an element ID starting with `first`, or 0 when the byte cannot start an ID. */
export function idLength(first: number): number {
  if (first & 0x80) return 1;
  if (first & 0x40) return 2;
  if (first & 0x20) return 3;
  if (first & 0x10) return 4;
  return 0;
}

/** Length in bytes of a size vint starting with `first`, or 0 when invalid. */
export function vintLength(first: number): number {
  for (let i = 0; i < 8; i++) if (first & (0x80 >> i)) return i + 1;
  return 0;
}

/** Size field value; `undefined` for the all-ones "unknown size". */
export function readVintSize(buf: Buffer, offset: number, length: number): number | undefined {
  let value = buf[offset]! & (0xff >> length);
  let allOnes = value === 0xff >> length;
  for (let i = 1; i < length; i++) {
    const b = buf[offset + i]!;
    if (b !== 0xff) allOnes = false;
    value = value * 256 + b;
  }
  if (allOnes) return undefined;
  if (!Number.isSafeInteger(value)) throw new MkvError('element size is too large');
  return value;
}

export function readId(buf: Buffer, offset: number, length: number): number {
  let id = 0;
  for (let i = 0; i < length; i++) id = id * 256 + buf[offset + i]!;
  return id;
}

export function readUint(payload: Buffer): number {
  if (payload.length > 8) throw new MkvError('unsigned integer longer than 8 bytes');
  let v = 0;
  for (const b of payload) v = v * 256 + b;
  return v;
}

export function readFloat(payload: Buffer): number {
  if (payload.length === 4) return payload.readFloatBE(0);
  if (payload.length === 8) return payload.readDoubleBE(0);
  if (payload.length === 0) return 0;
  throw new MkvError('float of invalid length');
}

/** Signed 16-bit block timecode and flags at the start of a (Simple)Block payload. */
export function readBlockHeader(payload: Buffer): { track: number; timecode: number; flags: number; headerLength: number } {
  const tl = vintLength(payload[0] ?? 0);
  if (tl === 0 || payload.length < tl + 3) throw new MkvError('invalid block header');
  const track = readVintSize(payload, 0, tl);
  if (track === undefined) throw new MkvError('invalid block track number');
  return { track, timecode: payload.readInt16BE(tl), flags: payload[tl + 2]!, headerLength: tl + 3 };
}

export function encodeId(id: number): Buffer {
  const bytes: number[] = [];
  for (let v = id; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from(bytes);
}

/** A size vint of `width` bytes (minimal width when omitted). */
export function encodeSize(size: number, width?: number): Buffer {
  let w = width ?? 1;
  if (width === undefined) while (size >= 2 ** (7 * w) - 1) w++;
  if (w > 8 || size >= 2 ** (7 * w) - 1) throw new MkvError(`size ${size} does not fit in ${w} bytes`);
  const out = Buffer.alloc(w);
  let v = size;
  for (let i = w - 1; i >= 0; i--) {
    out[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  out[0]! |= 0x80 >> (w - 1);
  return out;
}

/** Unknown-size field of 8 bytes (as written for Segments and live Clusters). */
export const UNKNOWN_SIZE = Buffer.from([0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function elementHeader(id: number, size: number | undefined, sizeWidth?: number): Buffer {
  return Buffer.concat([encodeId(id), size === undefined ? UNKNOWN_SIZE : encodeSize(size, sizeWidth)]);
}

export function element(id: number, payload: Buffer | readonly Buffer[], sizeWidth?: number): Buffer {
  const parts = Buffer.isBuffer(payload) ? [payload] : payload;
  const size = parts.reduce((n, p) => n + p.length, 0);
  return Buffer.concat([elementHeader(id, size, sizeWidth), ...parts]);
}

export function uintElement(id: number, value: number | bigint, width?: number): Buffer {
  let v = BigInt(value);
  const bytes: number[] = [];
  do {
    bytes.unshift(Number(v & 0xffn));
    v >>= 8n;
  } while (v > 0n);
  while (width !== undefined && bytes.length < width) bytes.unshift(0);
  return element(id, Buffer.from(bytes));
}

export function stringElement(id: number, value: string, sizeWidth?: number): Buffer {
  return element(id, Buffer.from(value, 'utf8'), sizeWidth);
}

/**
 * One Tags element holding one Tag of SimpleTags, laid out as the service writes its GetMedia
 * metadata (service-api.md §4.3): no Targets, every size a 4-byte vint.
 */
export function tagsElement(tags: ReadonlyArray<readonly [string, string]>): Buffer {
  const simpleTags = tags.map(([name, value]) =>
    element(ID.SimpleTag, [stringElement(ID.TagName, name, 4), stringElement(ID.TagString, value, 4)], 4),
  );
  return element(ID.Tags, element(ID.Tag, simpleTags, 4), 4);
}

/** The Segment header with unknown size that starts every fragment document. */
export const SEGMENT_UNKNOWN_SIZE = elementHeader(ID.Segment, undefined);

export interface ChildElement {
  id: number;
  /** Payload of the element (a view into the parent buffer). */
  data: Buffer;
}

/** The child elements of a complete element's payload (known sizes only). */
export function* readChildren(payload: Buffer): Generator<ChildElement> {
  let pos = 0;
  while (pos < payload.length) {
    const il = idLength(payload[pos]!);
    if (il === 0 || pos + il >= payload.length) throw new MkvError('invalid child element header');
    const sl = vintLength(payload[pos + il]!);
    if (sl === 0 || pos + il + sl > payload.length) throw new MkvError('invalid child element size');
    const id = readId(payload, pos, il);
    const size = readVintSize(payload, pos + il, sl);
    const start = pos + il + sl;
    if (size === undefined || start + size > payload.length) throw new MkvError(`child element 0x${id.toString(16)} overruns its parent`);
    yield { id, data: payload.subarray(start, start + size) };
    pos = start + size;
  }
}

/** The payload of a complete element (skips its header). */
export function elementPayload(whole: Buffer): Buffer {
  const il = idLength(whole[0] ?? 0);
  const sl = vintLength(whole[il] ?? 0);
  if (il === 0 || sl === 0 || whole.length < il + sl) throw new MkvError('invalid element header');
  return whole.subarray(il + sl);
}

/** Name/value pairs of every SimpleTag in a Tags element (given whole, header included). */
export function readSimpleTags(tagsElement: Buffer): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const tag of readChildren(elementPayload(tagsElement))) {
    if (tag.id !== ID.Tag) continue;
    for (const st of readChildren(tag.data)) {
      if (st.id !== ID.SimpleTag) continue;
      let name = '';
      let value = '';
      for (const f of readChildren(st.data)) {
        if (f.id === ID.TagName) name = f.data.toString('utf8');
        else if (f.id === ID.TagString) value = f.data.toString('utf8');
      }
      out.push([name, value]);
    }
  }
  return out;
}

export interface TrackInfo {
  number: number;
  type: number;
  codecId: string;
  codecPrivate?: Buffer;
  width?: number;
  height?: number;
}

/** Track entries of a Tracks element (given whole, header included). */
export function readTracks(tracksElement: Buffer): TrackInfo[] {
  const tracks: TrackInfo[] = [];
  for (const entry of readChildren(elementPayload(tracksElement))) {
    if (entry.id !== ID.TrackEntry) continue;
    const t: TrackInfo = { number: 0, type: 0, codecId: '' };
    for (const f of readChildren(entry.data)) {
      if (f.id === ID.TrackNumber) t.number = readUint(f.data);
      else if (f.id === ID.TrackType) t.type = readUint(f.data);
      else if (f.id === ID.CodecID) t.codecId = f.data.toString('latin1').replace(/\0+$/, '');
      else if (f.id === ID.CodecPrivate) t.codecPrivate = f.data;
      else if (f.id === ID.Video) {
        for (const v of readChildren(f.data)) {
          if (v.id === ID.PixelWidth) t.width = readUint(v.data);
          else if (v.id === ID.PixelHeight) t.height = readUint(v.data);
        }
      }
    }
    tracks.push(t);
  }
  return tracks;
}

/** TimecodeScale (ns per timecode unit) of an Info element; 1,000,000 when absent. */
export function readTimecodeScale(infoElement: Buffer): number {
  for (const f of readChildren(elementPayload(infoElement))) if (f.id === ID.TimecodeScale) return readUint(f.data);
  return 1_000_000;
}
