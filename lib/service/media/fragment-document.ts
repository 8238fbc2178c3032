/**
 * How a fragment is written to readers (service-api.md §4.3): each fragment is a complete MKV
 * document — EBML header, unknown-size Segment, the producer's Info and Tracks, the producer's
 * fragment metadata Tags, service Tags (fragment number, server and producer timestamps), the
 * Cluster, then service Tags (millis behind now, continuation token).
 */
import { ID, SEGMENT_UNKNOWN_SIZE, elementHeader, idLength, readId, readVintSize, tagsElement, vintLength } from '../../mkv/ebml.js';
import type { FragmentHeader } from '../storage/fragment-store.js';

export interface FragmentMeta {
  fragmentNumber: string;
  serverTimestampMs: number;
  producerTimestampMs: number;
}

const seconds = (ms: number): string => (ms / 1000).toFixed(3);

/** Everything before the producer tags: EBML header, Segment start, Info and Tracks. */
export function documentHead(header: FragmentHeader): Buffer[] {
  return [header.ebml, SEGMENT_UNKNOWN_SIZE, header.tracks];
}

export function startTags(meta: FragmentMeta): Buffer {
  return tagsElement([
    ['AWS_KINESISVIDEO_FRAGMENT_NUMBER', meta.fragmentNumber],
    ['AWS_KINESISVIDEO_SERVER_TIMESTAMP', seconds(meta.serverTimestampMs)],
    ['AWS_KINESISVIDEO_PRODUCER_TIMESTAMP', seconds(meta.producerTimestampMs)],
  ]);
}

export function endTags(millisBehindNow: number, continuationToken: string): Buffer {
  return tagsElement([
    ['AWS_KINESISVIDEO_MILLIS_BEHIND_NOW', String(Math.max(0, Math.round(millisBehindNow)))],
    ['AWS_KINESISVIDEO_CONTINUATION_TOKEN', continuationToken],
  ]);
}

/**
 * A document that stops the stream with an error (service-api.md §4.4): fragment number, error
 * description and id, no server timestamp. 5000 is the service's internal error.
 */
export function errorDocument(header: FragmentHeader, fragmentNumber: string, description: string, errorId = 5000): Buffer[] {
  return [
    ...documentHead(header),
    tagsElement([
      ['AWS_KINESISVIDEO_FRAGMENT_NUMBER', fragmentNumber],
      ['AWS_KINESISVIDEO_ERROR_CODE', description],
      ['AWS_KINESISVIDEO_ERROR_ID', String(errorId)],
    ]),
  ];
}

/** Header of a Cluster still arriving (its size is not known yet). */
export const LIVE_CLUSTER_HEADER = elementHeader(ID.Cluster, undefined);

/**
 * A stored fragment is its producer Tags followed by a known-size Cluster; the service tags go
 * between the two. Returns the offset of the Cluster.
 */
export function clusterOffset(stored: Buffer): number {
  let pos = 0;
  while (pos < stored.length) {
    const il = idLength(stored[pos]!);
    const sl = vintLength(stored[pos + il] ?? 0);
    if (il === 0 || sl === 0) break;
    if (readId(stored, pos, il) === ID.Cluster) return pos;
    const size = readVintSize(stored, pos + il, sl);
    if (size === undefined) break;
    pos += il + sl + size;
  }
  throw new Error('stored fragment has no Cluster');
}

/** The whole document of a stored fragment, as buffers to write in order. */
export function storedDocument(header: FragmentHeader, stored: Buffer, meta: FragmentMeta, millisBehindNow: number): Buffer[] {
  const at = clusterOffset(stored);
  return [
    ...documentHead(header),
    stored.subarray(0, at),
    startTags(meta),
    stored.subarray(at),
    endTags(millisBehindNow, meta.fragmentNumber),
  ];
}
