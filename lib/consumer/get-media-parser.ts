/**
 * Parses a GetMedia / GetMediaForFragmentList payload (one MKV document per fragment, with the
 * AWS_KINESISVIDEO_* tags around each Cluster; service-api.md §4.3) at three levels: raw MKV
 * elements, frames as their blocks arrive, and fragments with their metadata once complete.
 */
import { ID, MkvError, readSimpleTags, readTimecodeScale, readTracks, type TrackInfo } from '../mkv/ebml.js';
import { MkvStreamParser } from '../mkv/stream-parser.js';

export interface ConsumedFrame {
  track: number;
  /** Cluster timecode + block timecode, in TimecodeScale units (ms for KVS producers). */
  timecode: number;
  /**
   * Producer timestamp of the frame, epoch ms: the fragment's producer timestamp plus the
   * block's offset in its cluster (so producers with relative cluster timecodes read the same).
   */
  timestampMs: number;
  keyframe: boolean;
  /** The frame as stored (AVCC / HVCC length-prefixed NAL units for H.264 / H.265). */
  data: Buffer;
  /** The fragment's number (the service's tags come before the cluster). */
  fragmentNumber: string | undefined;
}

export interface ConsumedFragment {
  /** AWS_KINESISVIDEO_* and producer tags seen in this document. */
  tags: Record<string, string>;
  fragmentNumber?: string;
  serverTimestampMs?: number;
  producerTimestampMs?: number;
  millisBehindNow?: number;
  continuationToken?: string;
  /** Error tags (AWS_KINESISVIDEO_ERROR_CODE / _ID) when the service stopped mid-stream. */
  errorCode?: string;
  errorId?: string;
  /** Tracks with codec IDs and codec private data (avcC / hvcC / AudioSpecificConfig). */
  tracks: TrackInfo[];
  /** Nanoseconds per timecode unit (1,000,000: ms). */
  timecodeScale: number;
  clusterTimecode?: number;
  frames: ConsumedFrame[];
}

/** One parsed MKV element: the lowest level of the consumer. `data` is the whole element where given. */
export type MkvElementEvent =
  | { kind: 'ebml-header'; data: Buffer }
  | { kind: 'segment-start' }
  | { kind: 'element'; id: number; data: Buffer }
  | { kind: 'cluster-start' }
  | { kind: 'cluster-timecode'; timecode: number }
  | { kind: 'block'; track: number; timecode: number; keyframe: boolean; data: Buffer }
  | { kind: 'cluster-end' };

export interface GetMediaParserEvents {
  onElement?(element: MkvElementEvent): void;
  /** A frame of the current fragment has arrived. */
  onFrame?(frame: ConsumedFrame, fragment: ConsumedFragment): void;
  /** A document is complete: its closing tags arrived, the next one began, or the input ended. */
  onFragment?(fragment: ConsumedFragment): void;
}

export interface GetMediaParserOptions {
  /** Keep each fragment's frames in `fragment.frames` (default true). */
  keepFrames?: boolean;
}

const seconds = (v: string | undefined): number | undefined => (v === undefined ? undefined : Math.round(Number(v) * 1000));

export class GetMediaParser {
  private readonly parser: MkvStreamParser;
  private current: ConsumedFragment | undefined;
  private readonly events: GetMediaParserEvents;
  private readonly keepFrames: boolean;

  constructor(events: GetMediaParserEvents = {}, options: GetMediaParserOptions = {}) {
    this.events = events;
    this.keepFrames = options.keepFrames ?? true;
    const element = events.onElement ?? (() => {});
    this.parser = new MkvStreamParser(
      {
        onEbmlHeader: (data) => {
          element({ kind: 'ebml-header', data });
          this.flush();
          this.current = { tags: {}, tracks: [], frames: [], timecodeScale: 1_000_000 };
        },
        onSegmentStart: () => element({ kind: 'segment-start' }),
        onClusterStart: () => element({ kind: 'cluster-start' }),
        onClusterEnd: () => element({ kind: 'cluster-end' }),
        onTopElement: (id, data) => {
          element({ kind: 'element', id, data });
          const f = this.current;
          if (!f) return;
          if (id === ID.Tracks) f.tracks = readTracks(data);
          if (id === ID.Info) f.timecodeScale = readTimecodeScale(data);
          if (id !== ID.Tags) return;
          for (const [name, value] of readSimpleTags(data)) f.tags[name] = value;
          f.fragmentNumber = f.tags.AWS_KINESISVIDEO_FRAGMENT_NUMBER;
          f.serverTimestampMs = seconds(f.tags.AWS_KINESISVIDEO_SERVER_TIMESTAMP ?? f.tags.AWS_KINESISVIDEO_SERVER_SIDE_TIMESTAMP);
          f.producerTimestampMs = seconds(f.tags.AWS_KINESISVIDEO_PRODUCER_TIMESTAMP ?? f.tags.AWS_KINESISVIDEO_PRODUCER_SIDE_TIMESTAMP);
          const behind = f.tags.AWS_KINESISVIDEO_MILLIS_BEHIND_NOW;
          f.millisBehindNow = behind === undefined ? undefined : Number(behind);
          f.continuationToken = f.tags.AWS_KINESISVIDEO_CONTINUATION_TOKEN;
          f.errorCode = f.tags.AWS_KINESISVIDEO_ERROR_CODE ?? f.tags.AWS_KINESISVIDEO_EXCEPTION_ERROR_CODE;
          f.errorId = f.tags.AWS_KINESISVIDEO_ERROR_ID;
          // The tags after the Cluster close the fragment's document.
          if (f.continuationToken !== undefined || f.errorCode !== undefined) this.flush();
        },
        onClusterTimecode: (tc) => {
          element({ kind: 'cluster-timecode', timecode: tc });
          if (this.current) this.current.clusterTimecode = tc;
        },
        onBlock: (b) => {
          element({ kind: 'block', track: b.track, timecode: b.timecode, keyframe: b.keyframe, data: b.data! });
          const f = this.current;
          if (!f) throw new MkvError('a block outside a fragment document (no EBML header before it)');
          const scaleMs = f.timecodeScale / 1e6;
          const base = f.producerTimestampMs ?? (f.clusterTimecode ?? 0) * scaleMs;
          const frame: ConsumedFrame = {
            track: b.track,
            timecode: (f.clusterTimecode ?? 0) + b.timecode,
            timestampMs: Math.round(base + b.timecode * scaleMs),
            keyframe: b.keyframe,
            data: b.data!,
            fragmentNumber: f.fragmentNumber,
          };
          if (this.keepFrames) f.frames.push(frame);
          this.events.onFrame?.(frame, f);
        },
      },
      { collectBlocks: true },
    );
  }

  /** Bytes parsed so far. */
  get position(): number {
    return this.parser.position;
  }

  push(chunk: Uint8Array): void {
    this.parser.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
  }

  /** End of input: completes the last fragment. */
  end(): void {
    this.parser.end();
    this.flush();
  }

  private flush(): void {
    if (this.current) this.events.onFragment?.(this.current);
    this.current = undefined;
  }
}
