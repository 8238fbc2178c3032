/**
 * Splits a complete MKV file (for example matroskamux output) into the pieces a producer sends:
 * the stream header and one Cluster per fragment, and rebuilds clusters with new timecodes.
 * Used by the demo, tests and benchmarks to replay real encoder output as PutMedia bodies.
 */
import { ID, SEGMENT_UNKNOWN_SIZE, element, uintElement } from './ebml.js';
import { type BlockInfo, MkvStreamParser } from './stream-parser.js';

export interface MkvCluster {
  /** Cluster Timecode in TimecodeScale units. */
  timecode: number;
  /** The cluster's children after its Timecode element (blocks etc.), as one buffer. */
  body: Buffer;
  blocks: BlockInfo[];
}

export interface MkvFragments {
  /** EBML header + unknown-size Segment + Info + Tracks: the start of a PutMedia body. */
  header: Buffer;
  ebml: Buffer;
  info: Buffer;
  tracks: Buffer;
  clusters: MkvCluster[];
}

export function splitFragments(file: Buffer): MkvFragments {
  let ebml: Buffer | undefined;
  let info: Buffer = Buffer.alloc(0);
  let tracks: Buffer | undefined;
  const clusters: MkvCluster[] = [];
  let cur: { timecode: number; parts: Buffer[]; blocks: BlockInfo[]; afterTimecode: boolean } | undefined;
  const parser = new MkvStreamParser(
    {
      onEbmlHeader: (el) => (ebml ??= el),
      onTopElement: (id, el) => {
        if (id === ID.Info) info = el;
        else if (id === ID.Tracks) tracks = el;
      },
      onClusterStart: () => (cur = { timecode: 0, parts: [], blocks: [], afterTimecode: false }),
      onClusterTimecode: (tc) => {
        cur!.timecode = tc;
        cur!.parts = [];
        cur!.afterTimecode = true;
      },
      onClusterData: (b) => cur!.parts.push(b),
      onBlock: (b) => cur!.blocks.push(b),
      onClusterEnd: () => {
        if (cur && cur.blocks.length > 0) {
          clusters.push({ timecode: cur.timecode, body: Buffer.concat(cur.parts), blocks: cur.blocks });
        }
        cur = undefined;
      },
    },
  );
  parser.push(file);
  parser.end();
  if (!ebml || !tracks) throw new Error('not a Matroska file with Tracks');
  return { header: Buffer.concat([ebml, SEGMENT_UNKNOWN_SIZE, info, tracks]), ebml, info, tracks, clusters };
}

/** A known-size Cluster element with the given timecode and the original blocks. */
export function clusterElement(cluster: MkvCluster, timecode = cluster.timecode): Buffer {
  return element(ID.Cluster, [uintElement(ID.Timecode, timecode, 8), cluster.body], 8);
}
