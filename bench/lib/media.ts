/**
 * The benchmark's input media: a real H.264 clip encoded once by GStreamer and cached under
 * `.bench-cache/`, split into one known-size Cluster (fragment) per GOP. Each fragment is kept
 * as its body (blocks) plus the byte ranges of its frames, so a sender can rebuild a Cluster with
 * a new timecode by writing a 22-byte head in front of the unchanged body.
 */
import { readFileSync } from 'node:fs';
import {
  ID,
  elementHeader,
  idLength,
  readBlockHeader,
  readId,
  readTimecodeScale,
  readVintSize,
  uintElement,
  vintLength,
} from '../../lib/mkv/ebml.js';
import { clusterElement, splitFragments } from '../../lib/mkv/fragments.js';
import { encodeOnce } from './encode-once.js';

export interface ClipSpec {
  width: number;
  height: number;
  fps: number;
  /** x264enc bitrate, kbit/s. */
  kbps: number;
  seconds: number;
}

export const CLIP_4MBPS: ClipSpec = { width: 1280, height: 720, fps: 30, kbps: 4000, seconds: 10 };
export const CLIP_2MBPS: ClipSpec = { width: 1280, height: 720, fps: 30, kbps: 2000, seconds: 10 };

/** A moving SMPTE pattern: x264 actually spends the requested bitrate on it (static patterns compress to almost nothing). */
const PATTERN = ['pattern=smpte', 'horizontal-speed=4'];

export const clipDescription = (s: ClipSpec): string =>
  `${s.width}x${s.height} ${s.fps}fps H.264 ${s.kbps} kbit/s, ${s.seconds} s looped`;

/** The cached clip file for a spec, encoding it first if needed. */
export function ensureClip(spec: ClipSpec): Promise<string> {
  const name = `clip-${spec.width}x${spec.height}-${spec.fps}fps-${spec.kbps}k-${spec.seconds}s-smpte-i420.mkv`;
  return encodeOnce(name, (location) => [
    '-q', '-e',
    'videotestsrc', `num-buffers=${spec.fps * spec.seconds}`, ...PATTERN, '!',
    `video/x-raw,format=I420,width=${spec.width},height=${spec.height},framerate=${spec.fps}/1`, '!',
    'x264enc', 'tune=zerolatency', `bitrate=${spec.kbps}`, `key-int-max=${spec.fps}`, 'speed-preset=ultrafast', '!',
    'h264parse', '!',
    'matroskamux', 'streamable=true', 'min-cluster-duration=0', '!',
    'filesink', `location=${location}`,
  ]);
}

export interface FramePiece {
  /** Block timecode relative to its cluster, ms. */
  offsetMs: number;
  /** The bytes that carry this frame inside the cluster body (a slice of `body`). */
  bytes: Buffer;
}

export interface ClipFragment {
  /** Cluster timecode relative to the first cluster of the clip, ms. */
  startMs: number;
  /** Until the next fragment starts (the last one: its frame count times the frame interval). */
  durationMs: number;
  /** The cluster's children after its Timecode element. */
  body: Buffer;
  frames: FramePiece[];
}

export interface Clip {
  file: string;
  spec: ClipSpec;
  /** EBML header + unknown-size Segment + Info + Tracks: the start of every PutMedia body. */
  header: Buffer;
  fragments: ClipFragment[];
  durationMs: number;
  bodyBytes: number;
  /** Average media bitrate of the clip (cluster bytes), Mbit/s. */
  mbps: number;
}

/** Size of the Cluster head written in front of a body: ID (4) + 8-byte size + Timecode element (2 + 8). */
export const CLUSTER_HEAD_BYTES = 22;
const TIMECODE_OFFSET = 14;

/** A Cluster head for a body of this length; the timecode is written with setHeadTimecode. */
export function clusterHead(bodyLength: number, timecodeMs = 0): Buffer {
  const head = Buffer.concat([elementHeader(ID.Cluster, 10 + bodyLength, 8), uintElement(ID.Timecode, 0, 8)]);
  if (head.length !== CLUSTER_HEAD_BYTES || head[12] !== 0xe7 || head[13] !== 0x88) throw new Error('unexpected cluster head layout');
  setHeadTimecode(head, timecodeMs);
  return head;
}

/** Rewrites the (ABSOLUTE, epoch ms) timecode of a head made by clusterHead, in place. */
export function setHeadTimecode(head: Buffer, timecodeMs: number): void {
  head.writeUInt16BE(0, TIMECODE_OFFSET);
  head.writeUIntBE(timecodeMs, TIMECODE_OFFSET + 2, 6);
}

/** Splits a cluster body into one piece per block (anything between blocks rides with the next block). */
function framePieces(body: Buffer): FramePiece[] {
  const pieces: FramePiece[] = [];
  let pos = 0;
  let pieceStart = 0;
  while (pos < body.length) {
    const il = idLength(body[pos]!);
    const sl = vintLength(body[pos + il] ?? 0);
    if (il === 0 || sl === 0) throw new Error('invalid element in cluster body');
    const id = readId(body, pos, il);
    const size = readVintSize(body, pos + il, sl);
    if (size === undefined) throw new Error('unknown-size element in cluster body');
    const start = pos + il + sl;
    const end = start + size;
    let blockPayload: Buffer | undefined;
    if (id === ID.SimpleBlock) blockPayload = body.subarray(start, end);
    else if (id === ID.BlockGroup) {
      // Find the Block child.
      let p = start;
      while (p < end) {
        const cil = idLength(body[p]!);
        const csl = vintLength(body[p + cil]!);
        const cid = readId(body, p, cil);
        const csize = readVintSize(body, p + cil, csl)!;
        if (cid === ID.Block) blockPayload = body.subarray(p + cil + csl, p + cil + csl + csize);
        p += cil + csl + csize;
      }
    }
    if (blockPayload) {
      pieces.push({ offsetMs: readBlockHeader(blockPayload).timecode, bytes: body.subarray(pieceStart, end) });
      pieceStart = end;
    }
    pos = end;
  }
  if (pieceStart < body.length && pieces.length > 0) {
    const last = pieces[pieces.length - 1]!;
    const from = last.bytes.byteOffset - body.byteOffset;
    last.bytes = body.subarray(from);
  }
  return pieces;
}

/** Reads and splits a cached clip. Checks that rebuilt clusters match the library's clusterElement. */
export function loadClip(file: string, spec: ClipSpec): Clip {
  const mkv = splitFragments(readFileSync(file));
  if (readTimecodeScale(mkv.info) !== 1_000_000) throw new Error('bench clip must use TimecodeScale 1 ms');
  if (mkv.clusters.length < 2) throw new Error('bench clip has fewer than 2 clusters');
  const first = mkv.clusters[0]!.timecode;
  const fragments: ClipFragment[] = mkv.clusters.map((c, i) => {
    const next = mkv.clusters[i + 1];
    const frames = framePieces(c.body);
    if (frames.length !== c.blocks.length) throw new Error('frame split does not match the parsed blocks');
    return {
      startMs: c.timecode - first,
      durationMs: next ? next.timecode - c.timecode : Math.round((frames.length * 1000) / spec.fps),
      body: c.body,
      frames,
    };
  });
  // Self-check: head + body is byte-identical to the library's cluster builder.
  const probe = mkv.clusters[0]!;
  if (!Buffer.concat([clusterHead(probe.body.length, 1_700_000_000_123), probe.body]).equals(clusterElement(probe, 1_700_000_000_123))) {
    throw new Error('clusterHead does not match clusterElement');
  }
  const durationMs = fragments.reduce((n, f) => n + f.durationMs, 0);
  const bodyBytes = fragments.reduce((n, f) => n + f.body.length + CLUSTER_HEAD_BYTES, 0);
  return { file, spec, header: mkv.header, fragments, durationMs, bodyBytes, mbps: (bodyBytes * 8) / (durationMs * 1000) };
}
