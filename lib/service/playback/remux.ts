/**
 * Stored Matroska fragments → fragmented MP4, without re-encoding. The stream header's Tracks
 * give the init segment; each stored fragment (producer Tags + a known-size Cluster) gives one
 * moof/mdat. Sample times are the fragment's producer timestamp plus the block timecodes
 * (× TimecodeScale), relative to a caller-chosen origin.
 */
import { KvsApiError } from '../../errors.js';
import { ID, elementPayload, readBlockHeader, readChildren, readTracks, readUint, type TrackInfo } from '../../mkv/ebml.js';
import { clusterOffset } from '../media/fragment-document.js';
import type { FragmentHeader, StoredFragment } from '../storage/fragment-store.js';
import type { Fmp4Sample, Fmp4Track, Fmp4TrackRun } from './fmp4.js';

export const VIDEO_TIMESCALE = 90_000;
const AAC_RATES = [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

export interface PlaybackTrack extends Fmp4Track {
  /** Matroska track number the samples come from. */
  mkvTrack: number;
  /** RFC 6381 codec string for playlists/manifests. */
  codecString: string;
}

export interface StreamLayout {
  tracks: PlaybackTrack[];
  /** Nanoseconds per Matroska timecode unit. */
  timecodeScale: number;
}

const hex2 = (n: number): string => n.toString(16).padStart(2, '0');

function hevcCodecString(hvcC: Buffer): string {
  if (hvcC.length < 13) return 'hvc1';
  const b1 = hvcC[1]!;
  const space = ['', 'A', 'B', 'C'][b1 >> 6]!;
  const tier = b1 & 0x20 ? 'H' : 'L';
  const profile = b1 & 0x1f;
  let compat = hvcC.readUInt32BE(2);
  let rev = 0; // bit-reverse the compatibility flags
  for (let i = 0; i < 32; i++) {
    rev = (rev << 1) | (compat & 1);
    compat >>>= 1;
  }
  const level = hvcC[12]!;
  return `hvc1.${space}${profile}.${(rev >>> 0).toString(16)}.${tier}${level}.B0`;
}

function toPlaybackTrack(t: TrackInfo, id: number): PlaybackTrack {
  const cp = t.codecPrivate;
  if (t.codecId === 'V_MPEG4/ISO/AVC' || t.codecId === 'V_MPEG/ISO/AVC') {
    if (!cp || cp.length < 7 || cp[0] !== 1) {
      throw new KvsApiError('InvalidArgumentException', 'MissingCodecPrivateData: the H.264 track has no valid AVCDecoderConfigurationRecord.');
    }
    return {
      id, mkvTrack: t.number, kind: 'video', codec: 'avc1', timescale: VIDEO_TIMESCALE, config: cp,
      width: t.width ?? 0, height: t.height ?? 0, codecString: `avc1.${hex2(cp[1]!)}${hex2(cp[2]!)}${hex2(cp[3]!)}`,
    };
  }
  if (t.codecId === 'V_MPEGH/ISO/HEVC' || t.codecId === 'V_MPEG/ISO/HEVC') {
    if (!cp || cp.length < 23) {
      throw new KvsApiError('InvalidArgumentException', 'MissingCodecPrivateData: the H.265 track has no valid HEVCDecoderConfigurationRecord.');
    }
    return {
      id, mkvTrack: t.number, kind: 'video', codec: 'hvc1', timescale: VIDEO_TIMESCALE, config: cp,
      width: t.width ?? 0, height: t.height ?? 0, codecString: hevcCodecString(cp),
    };
  }
  if (t.codecId === 'A_AAC' || t.codecId.startsWith('A_AAC/')) {
    if (!cp || cp.length < 2) throw new KvsApiError('InvalidArgumentException', 'MissingCodecPrivateData: the AAC track has no AudioSpecificConfig.');
    const objectType = cp[0]! >> 3;
    const rateIndex = ((cp[0]! & 0x07) << 1) | (cp[1]! >> 7);
    const channels = (cp[1]! >> 3) & 0x0f;
    const sampleRate = AAC_RATES[rateIndex] ?? 44100;
    return {
      id, mkvTrack: t.number, kind: 'audio', codec: 'mp4a', timescale: sampleRate, config: cp,
      sampleRate, channels: channels || 2, codecString: `mp4a.40.${objectType || 2}`,
    };
  }
  throw new KvsApiError('InvalidArgumentException', `UnsupportedStreamMediaType: codec ${t.codecId || '(none)'} cannot be played back (H.264, H.265 and AAC only).`);
}

/** The playable tracks of a stream header (Info + Tracks): track 1 video (or audio-only), optional AAC. */
export function streamLayout(header: FragmentHeader): StreamLayout {
  let timecodeScale = 1_000_000;
  for (const el of readChildren(header.tracks)) {
    if (el.id === ID.Info) {
      for (const f of readChildren(el.data)) if (f.id === ID.TimecodeScale) timecodeScale = readUint(f.data);
    }
  }
  const tracks = readTracksFrom(header.tracks);
  if (tracks.length === 0) throw new KvsApiError('InvalidArgumentException', 'UnsupportedStreamMediaType: the stream has no tracks.');
  const out: PlaybackTrack[] = [];
  for (const t of tracks.slice(0, 2)) out.push(toPlaybackTrack(t, out.length + 1));
  return { tracks: out, timecodeScale };
}

/** readTracks wants the whole Tracks element; find it among Info + Tracks. */
function readTracksFrom(bytes: Buffer): TrackInfo[] {
  let pos = 0;
  for (const el of readChildren(bytes)) {
    const end = el.data.byteOffset - bytes.byteOffset + el.data.length;
    if (el.id === ID.Tracks) return readTracks(bytes.subarray(pos, end));
    pos = end;
  }
  return [];
}

interface RawFrame {
  track: number;
  /** Presentation time, ms relative to the fragment start. */
  ptsMs: number;
  keyframe: boolean;
  data: Buffer;
}

/** Frames of a stored fragment (producer Tags + Cluster), in stored (decode) order. */
export function fragmentFrames(stored: Buffer, timecodeScale: number): RawFrame[] {
  const cluster = elementPayload(stored.subarray(clusterOffset(stored)));
  const unit = timecodeScale / 1e6;
  const frames: RawFrame[] = [];
  const add = (payload: Buffer, keyFromFlags: boolean | undefined): void => {
    const h = readBlockHeader(payload);
    if ((h.flags & 0x06) !== 0) throw new KvsApiError('InvalidArgumentException', 'InvalidMediaFrame: laced blocks are not supported.');
    frames.push({
      track: h.track,
      ptsMs: h.timecode * unit,
      keyframe: keyFromFlags ?? (h.flags & 0x80) !== 0,
      data: payload.subarray(h.headerLength),
    });
  };
  for (const el of readChildren(cluster)) {
    if (el.id === ID.SimpleBlock) add(el.data, undefined);
    else if (el.id === ID.BlockGroup) {
      let block: Buffer | undefined;
      let referenced = false;
      for (const g of readChildren(el.data)) {
        if (g.id === ID.Block) block = g.data;
        else if (g.id === ID.ReferenceBlock) referenced = true;
      }
      if (block) add(block, !referenced);
    }
  }
  return frames;
}

/**
 * The moof runs of one fragment. `originMs` is the media time zero (epoch ms); the fragment
 * starts at its producer timestamp. The last sample of each track lasts as long as the previous
 * one (or up to the fragment's end when it is alone).
 */
export function fragmentRuns(layout: StreamLayout, stored: Buffer, fragment: StoredFragment, originMs: number): Fmp4TrackRun[] {
  const frames = fragmentFrames(stored, layout.timecodeScale);
  const startMs = fragment.producerTimestampMs - originMs;
  const runs: Fmp4TrackRun[] = [];
  for (const track of layout.tracks) {
    const mine = frames.filter((f) => f.track === track.mkvTrack);
    if (mine.length === 0) continue;
    const ticks = (ms: number): number => Math.round(((startMs + ms) * track.timescale) / 1000);
    const pts = mine.map((f) => ticks(f.ptsMs));
    const dts = [...pts].sort((a, b) => a - b); // decode times: presentation times in decode order
    const endTicks = ticks(fragment.durationMs);
    const samples: Fmp4Sample[] = mine.map((f, i) => {
      let duration: number;
      if (i + 1 < mine.length) duration = dts[i + 1]! - dts[i]!;
      else if (i > 0) duration = dts[i]! - dts[i - 1]!;
      else duration = Math.max(1, endTicks - dts[i]!);
      return { data: f.data, duration: Math.max(0, duration), cto: pts[i]! - dts[i]!, keyframe: track.kind === 'audio' || f.keyframe };
    });
    runs.push({ track, baseDecodeTime: dts[0]!, samples });
  }
  return runs;
}
