/**
 * A minimal ISO BMFF (ISO/IEC 14496-12) writer for fragmented MP4: an init segment (ftyp + moov
 * with empty sample tables and mvex/trex) and media segments (moof + mdat). Used to remux stored
 * Matroska fragments for HLS, DASH and GetClip without re-encoding.
 */

export type SampleEntryCodec = 'avc1' | 'hvc1' | 'mp4a';

export interface Fmp4Track {
  /** ISO track_ID (1-based). */
  id: number;
  kind: 'video' | 'audio';
  codec: SampleEntryCodec;
  /** Ticks per second of this track's media timeline. */
  timescale: number;
  /** avcC / hvcC record, or the AAC AudioSpecificConfig. */
  config: Buffer;
  width?: number;
  height?: number;
  channels?: number;
  sampleRate?: number;
}

export interface Fmp4Sample {
  data: Buffer;
  /** Duration in track ticks. */
  duration: number;
  /** Composition time offset (pts - dts) in track ticks; may be negative. */
  cto: number;
  keyframe: boolean;
}

export interface Fmp4TrackRun {
  track: Fmp4Track;
  /** Decode time of the first sample, in track ticks. */
  baseDecodeTime: number;
  samples: Fmp4Sample[];
}

const u8 = (v: number): Buffer => Buffer.from([v & 0xff]);
const u16 = (v: number): Buffer => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v & 0xffff);
  return b;
};
const u32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const i32 = (v: number): Buffer => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(v);
  return b;
};
const u64 = (v: number): Buffer => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(Math.max(0, Math.round(v))));
  return b;
};
const zeros = (n: number): Buffer => Buffer.alloc(n);

export function box(type: string, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(body.length + 8);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, body]);
}

function fullBox(type: string, version: number, flags: number, ...payload: Buffer[]): Buffer {
  return box(type, u32(((version & 0xff) << 24) | (flags & 0xffffff)), ...payload);
}

const MATRIX = Buffer.concat([0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000].map(u32));

function mvhd(nextTrackId: number, durationMs: number): Buffer {
  return fullBox(
    'mvhd', 0, 0,
    u32(0), u32(0), u32(1000), u32(Math.round(durationMs)), // creation, modification, timescale, duration
    u32(0x00010000), u16(0x0100), zeros(10), // rate, volume, reserved
    MATRIX, zeros(24), u32(nextTrackId),
  );
}

function tkhd(t: Fmp4Track): Buffer {
  return fullBox(
    'tkhd', 0, 0x3, // enabled, in movie
    u32(0), u32(0), u32(t.id), u32(0), u32(0), zeros(8),
    u16(0), u16(0), u16(t.kind === 'audio' ? 0x0100 : 0), u16(0),
    MATRIX, u32((t.width ?? 0) << 16), u32((t.height ?? 0) << 16),
  );
}

function mdhd(t: Fmp4Track): Buffer {
  // language 'und' packed as three 5-bit letters - 0x60
  return fullBox('mdhd', 0, 0, u32(0), u32(0), u32(t.timescale), u32(0), u16(0x55c4), u16(0));
}

function hdlr(t: Fmp4Track): Buffer {
  const name = t.kind === 'video' ? 'VideoHandler' : 'SoundHandler';
  return fullBox('hdlr', 0, 0, u32(0), Buffer.from(t.kind === 'video' ? 'vide' : 'soun', 'latin1'), zeros(12), Buffer.from(`${name}\0`, 'latin1'));
}

/** MPEG-4 descriptor: tag, 4-byte length form, payload. */
function descriptor(tag: number, ...payload: Buffer[]): Buffer {
  const body = Buffer.concat(payload);
  const n = body.length;
  return Buffer.concat([u8(tag), Buffer.from([0x80 | ((n >> 21) & 0x7f), 0x80 | ((n >> 14) & 0x7f), 0x80 | ((n >> 7) & 0x7f), n & 0x7f]), body]);
}

function esds(asc: Buffer): Buffer {
  const decoderConfig = descriptor(4, u8(0x40), u8(0x15), zeros(3), u32(0), u32(0), descriptor(5, asc));
  return fullBox('esds', 0, 0, descriptor(3, u16(0), u8(0), decoderConfig, descriptor(6, u8(0x02))));
}

function sampleEntry(t: Fmp4Track): Buffer {
  if (t.codec === 'mp4a') {
    return box(
      'mp4a',
      zeros(6), u16(1), zeros(8),
      u16(t.channels ?? 2), u16(16), u16(0), u16(0), u32(((t.sampleRate ?? t.timescale) & 0xffff) << 16),
      esds(t.config),
    );
  }
  return box(
    t.codec,
    zeros(6), u16(1), u16(0), u16(0), zeros(12),
    u16(t.width ?? 0), u16(t.height ?? 0), u32(0x00480000), u32(0x00480000), u32(0), u16(1),
    zeros(32), u16(0x0018), u16(0xffff),
    box(t.codec === 'avc1' ? 'avcC' : 'hvcC', t.config),
  );
}

function trak(t: Fmp4Track): Buffer {
  const mediaHeader = t.kind === 'video' ? fullBox('vmhd', 0, 1, zeros(8)) : fullBox('smhd', 0, 0, zeros(4));
  const dinf = box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1)));
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32(1), sampleEntry(t)),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)),
    fullBox('stco', 0, 0, u32(0)),
  );
  return box('trak', tkhd(t), box('mdia', mdhd(t), hdlr(t), box('minf', mediaHeader, dinf, stbl)));
}

/**
 * ftyp + moov for the tracks (codec private data only; no samples). With `durationMs` (a whole
 * file such as a clip), the movie duration is set in mvhd and mvex/mehd.
 */
export function initSegment(tracks: readonly Fmp4Track[], durationMs?: number): Buffer {
  const ftyp = box('ftyp', Buffer.from('iso6', 'latin1'), u32(0), ...['iso6', 'isom', 'mp41', 'avc1', 'dash'].map((b) => Buffer.from(b, 'latin1')));
  const trex = tracks.map((t) => fullBox('trex', 0, 0, u32(t.id), u32(1), u32(0), u32(0), u32(0)));
  const nextId = Math.max(0, ...tracks.map((t) => t.id)) + 1;
  const mehd = durationMs === undefined ? [] : [fullBox('mehd', 0, 0, u32(Math.round(durationMs)))];
  return Buffer.concat([ftyp, box('moov', mvhd(nextId, durationMs ?? 0), ...tracks.map(trak), box('mvex', ...mehd, ...trex))]);
}

const KEY_FLAGS = 0x02000000; // sample_depends_on = 2 (does not depend on others)
const NON_KEY_FLAGS = 0x01010000; // sample_depends_on = 1, sample_is_non_sync_sample

/** moof + mdat holding the runs (one traf per track), numbered `sequence` (1-based). */
export function mediaSegment(sequence: number, runs: readonly Fmp4TrackRun[]): Buffer {
  const TRUN_FLAGS = 0x000001 | 0x000100 | 0x000200 | 0x000400 | 0x000800;
  const build = (offsets: number[]): Buffer =>
    box(
      'moof',
      fullBox('mfhd', 0, 0, u32(sequence)),
      ...runs.map((r, i) =>
        box(
          'traf',
          fullBox('tfhd', 0, 0x020000, u32(r.track.id)), // default-base-is-moof
          fullBox('tfdt', 1, 0, u64(r.baseDecodeTime)),
          fullBox(
            'trun', 1, TRUN_FLAGS,
            u32(r.samples.length), i32(offsets[i] ?? 0),
            ...r.samples.flatMap((s) => [u32(s.duration), u32(s.data.length), u32(s.keyframe ? KEY_FLAGS : NON_KEY_FLAGS), i32(s.cto)]),
          ),
        ),
      ),
    );
  const moofSize = build([]).length;
  const offsets: number[] = [];
  let at = moofSize + 8;
  for (const r of runs) {
    offsets.push(at);
    for (const s of r.samples) at += s.data.length;
  }
  const moof = build(offsets);
  const mdat = box('mdat', ...runs.flatMap((r) => r.samples.map((s) => s.data)));
  return Buffer.concat([moof, mdat]);
}

export interface ParsedBox {
  type: string;
  /** Payload (after the 8-byte header). */
  data: Buffer;
}

/** The boxes in a buffer (32-bit sizes only), for tests and inspection. */
export function parseBoxes(buf: Buffer): ParsedBox[] {
  const out: ParsedBox[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length) {
    const size = buf.readUInt32BE(pos);
    if (size < 8 || pos + size > buf.length) throw new Error(`invalid box size ${size} at ${pos}`);
    out.push({ type: buf.toString('latin1', pos + 4, pos + 8), data: buf.subarray(pos + 8, pos + size) });
    pos += size;
  }
  return out;
}
