/**
 * Parses a GetMedia / GetMediaForFragmentList payload (one MKV document per fragment, with the
 * AWS_KINESISVIDEO_* tags around each Cluster) into fragments with their frames and metadata.
 */
import { ID, readSimpleTags, readTracks, type TrackInfo } from '../mkv/ebml.js';
import { MkvStreamParser } from '../mkv/stream-parser.js';

export interface ConsumedFrame {
  track: number;
  /** Cluster timecode + block timecode, in TimecodeScale units (ms for KVS producers). */
  timecode: number;
  keyframe: boolean;
  data: Buffer;
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
  tracks: TrackInfo[];
  clusterTimecode?: number;
  frames: ConsumedFrame[];
}

export interface GetMediaParserEvents {
  /** A fragment's frames have all arrived (its Cluster ended). Tags after it may still come. */
  onFrame?(frame: ConsumedFrame, fragment: ConsumedFragment): void;
  /** A document is complete: its closing tags arrived, the next one began, or the input ended. */
  onFragment?(fragment: ConsumedFragment): void;
}

const seconds = (v: string | undefined): number | undefined => (v === undefined ? undefined : Math.round(Number(v) * 1000));

export class GetMediaParser {
  private readonly parser: MkvStreamParser;
  private current: ConsumedFragment | undefined;
  private readonly events: GetMediaParserEvents;

  constructor(events: GetMediaParserEvents = {}) {
    this.events = events;
    this.parser = new MkvStreamParser(
      {
        onEbmlHeader: () => {
          this.flush();
          this.current = { tags: {}, tracks: [], frames: [] };
        },
        onTopElement: (id, el) => {
          const f = this.current;
          if (!f) return;
          if (id === ID.Tracks) f.tracks = readTracks(el);
          if (id !== ID.Tags) return;
          for (const [name, value] of readSimpleTags(el)) f.tags[name] = value;
          f.fragmentNumber = f.tags.AWS_KINESISVIDEO_FRAGMENT_NUMBER;
          f.serverTimestampMs = seconds(f.tags.AWS_KINESISVIDEO_SERVER_TIMESTAMP);
          f.producerTimestampMs = seconds(f.tags.AWS_KINESISVIDEO_PRODUCER_TIMESTAMP);
          const behind = f.tags.AWS_KINESISVIDEO_MILLIS_BEHIND_NOW;
          f.millisBehindNow = behind === undefined ? undefined : Number(behind);
          f.continuationToken = f.tags.AWS_KINESISVIDEO_CONTINUATION_TOKEN;
          f.errorCode = f.tags.AWS_KINESISVIDEO_ERROR_CODE;
          // The tags after the Cluster close the fragment's document.
          if (f.continuationToken !== undefined || f.errorCode !== undefined) this.flush();
        },
        onClusterTimecode: (tc) => {
          if (this.current) this.current.clusterTimecode = tc;
        },
        onBlock: (b) => {
          const f = this.current;
          if (!f) return;
          const frame: ConsumedFrame = {
            track: b.track,
            timecode: (f.clusterTimecode ?? 0) + b.timecode,
            keyframe: b.keyframe,
            data: b.data!,
          };
          f.frames.push(frame);
          this.events.onFrame?.(frame, f);
        },
      },
      { collectBlocks: true },
    );
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
