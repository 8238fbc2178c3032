/**
 * Producer side of the tests: replays real encoder output as PutMedia bodies laid out like
 * kvssink's (EBML header, unknown-size Segment, Info, Tracks, one Cluster per fragment).
 */
import { clusterElement, type MkvFragments } from '../../lib/mkv/fragments.js';
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { putMedia, type PutMediaOptions } from '../../lib/producer/put-media-client.js';

export interface BodyOptions {
  from?: number;
  to?: number;
  /** Added to every cluster timecode (ABSOLUTE mode: the epoch ms of the first frame). */
  baseTimecode?: number;
}

/** The clusters [from, to) as known-size Cluster elements. */
export function clusters(frags: MkvFragments, o: BodyOptions = {}): Buffer[] {
  const base = o.baseTimecode ?? 0;
  return frags.clusters.slice(o.from ?? 0, o.to ?? frags.clusters.length).map((c) => clusterElement(c, base + c.timecode));
}

export function body(frags: MkvFragments, o: BodyOptions = {}): Buffer {
  return Buffer.concat([frags.header, ...clusters(frags, o)]);
}

/** Sends a whole body in one request and returns every ack once the server ends the response. */
export async function sendBody(
  url: string,
  streamName: string,
  data: Buffer | Buffer[],
  opts: Partial<PutMediaOptions> = {},
): Promise<PutMediaAck[]> {
  const session = putMedia({ endpoint: url, streamName, timecodeType: 'RELATIVE', ...opts });
  for (const chunk of Array.isArray(data) ? data : [data]) await session.write(chunk);
  return session.end();
}

export const acksOf = (acks: PutMediaAck[], type: PutMediaAck['EventType']): PutMediaAck[] =>
  acks.filter((a) => a.EventType === type);
