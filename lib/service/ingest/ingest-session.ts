/**
 * One PutMedia body turned into fragments (producer-protocol.md §5, §13.2).
 *
 * The MKV is parsed incrementally (headers only; payloads stay slices of the received chunks).
 * Each Cluster is one fragment: BUFFERING is acknowledged when its Timecode arrives, RECEIVED when
 * it is complete (at the next level-1 element — next Cluster, metadata or end-of-fragment Tags —
 * or at the end of the body), PERSISTED once the store has made it durable. Re-sent fragments
 * (same producer timestamp as one already stored or arriving) are acknowledged with the existing
 * fragment number and stored once.
 */
import {
  ID,
  MkvError,
  elementHeader,
  readSimpleTags,
  readTimecodeScale,
  readTracks,
} from '../../mkv/ebml.js';
import { MkvStreamParser } from '../../mkv/stream-parser.js';
import type { ServiceContext } from '../context.js';
import type { StreamRecord } from '../control-plane/stream-catalog.js';
import type { LiveFragment } from '../media/live-hub.js';
import { formatFragmentNumber } from '../storage/fragment-number.js';
import type { FragmentHeader, StoredFragment } from '../storage/fragment-store.js';
import type { PutMediaAck } from '../../put-media-ack.js';
import { IngestError } from './ack-errors.js';

export interface IngestSessionOptions {
  stream: StreamRecord;
  timecodeType: 'ABSOLUTE' | 'RELATIVE';
  /** Producer start timestamp (RELATIVE mode base), ms. */
  producerStartMs: number;
  sendAck: (ack: PutMediaAck) => void;
}

const END_OF_FRAGMENT_TAG = 'AWS_KINESISVIDEO_END_OF_FRAGMENT';
const MAX_TRACKS = 3;

interface FragmentInProgress {
  /** Undefined for a re-sent duplicate of a fragment stored (or arriving) already. */
  live?: LiveFragment;
  /** `indexed`: true once the original is stored, false if it was dropped with its connection. */
  duplicateOf?: { fragmentNumber: string; seq: number; indexed: Promise<boolean> };
  seq: number;
  fragmentNumber: string;
  timecode?: number;
  producerTags: Buffer[];
  chunks: Buffer[];
  bytes: number;
  serverTimestampMs: number;
  producerTimestampMs: number;
  tracksSeen: Map<number, { frames: number; maxTimecode: number }>;
  maxBlockTimecode: number;
}

export class IngestSession {
  private readonly ctx: ServiceContext;
  private readonly opts: IngestSessionOptions;
  private readonly parser: MkvStreamParser;
  private readonly scaleMs: () => number;

  private ebml: Buffer | undefined;
  private info: Buffer | undefined;
  private tracks: Buffer | undefined;
  private header: FragmentHeader | undefined;
  private trackNumbers = new Set<number>();
  private timecodeScaleNs = 1_000_000;
  private pendingTags: Buffer[] = [];
  private current: FragmentInProgress | undefined;
  private lastTimecode: number | undefined;
  private failed: IngestError | undefined;
  private errorAcked: Promise<void> | undefined;
  /** Fragments handed to the store whose PERSISTED ack is not yet written. */
  private readonly inFlight = new Set<Promise<void>>();
  readonly stats = { fragments: 0, duplicates: 0, bytes: 0 };

  constructor(ctx: ServiceContext, opts: IngestSessionOptions) {
    this.ctx = ctx;
    this.opts = opts;
    this.scaleMs = () => this.timecodeScaleNs / 1_000_000;
    this.parser = new MkvStreamParser({
      onEbmlHeader: (el) => {
        this.ebml = el;
        this.info = undefined;
        this.tracks = undefined;
        this.header = undefined;
      },
      onTopElement: (id, el) => this.topElement(id, el),
      onClusterStart: () => this.clusterStart(),
      onClusterTimecode: (tc) => this.clusterTimecode(tc),
      onClusterData: (bytes) => this.clusterData(bytes),
      onBlock: (b) => this.block(b.track, b.timecode),
      onClusterEnd: () => this.clusterEnd(),
    });
  }

  /** The error that ended the session, if any. */
  get error(): IngestError | undefined {
    return this.failed;
  }

  /** Feeds body bytes; returns false once the session has failed (the caller stops reading). */
  push(chunk: Buffer): boolean {
    if (this.failed) return false;
    this.stats.bytes += chunk.length;
    try {
      this.parser.push(chunk);
    } catch (err) {
      this.fail(err);
    }
    return this.failed === undefined;
  }

  /** End of the body: completes the last fragment, waits for every PERSISTED ack. */
  async end(): Promise<void> {
    if (!this.failed) {
      try {
        this.parser.end();
      } catch (err) {
        this.fail(err);
      }
    }
    await this.settle();
  }

  /** The connection dropped: the fragment being received is discarded. */
  abort(): void {
    this.discardCurrent();
  }

  /** Waits until every fragment handed to the store has its PERSISTED ack written (and an ERROR ack, if any). */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    await this.errorAcked;
  }

  get pendingFragments(): number {
    return this.inFlight.size;
  }

  private fail(err: unknown): void {
    if (this.failed) return;
    const e =
      err instanceof IngestError
        ? err
        : err instanceof MkvError
          ? new IngestError('INVALID_MKV_DATA', err.message)
          : new IngestError('INTERNAL_ERROR', (err as Error).message ?? String(err));
    if (e.code === 'INTERNAL_ERROR') this.ctx.log.error({ err }, 'ingest failed');
    const timecode = this.current?.timecode;
    const fragmentNumber = this.current?.fragmentNumber;
    this.discardCurrent();
    this.failed = e;
    this.ctx.log.info(
      { stream: this.opts.stream.name, code: e.code, errorId: e.errorId, reason: e.message },
      'PutMedia rejected',
    );
    // Fragments already complete keep their PERSISTED acks; the ERROR ack comes after them.
    this.errorAcked = (async () => {
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
      this.opts.sendAck({
        EventType: 'ERROR',
        ...(timecode !== undefined ? { FragmentTimecode: timecode } : {}),
        ...(fragmentNumber !== undefined ? { FragmentNumber: fragmentNumber } : {}),
        ErrorId: e.errorId,
        ErrorCode: e.code,
      });
    })();
  }

  private discardCurrent(): void {
    const cur = this.current;
    this.current = undefined;
    if (cur?.live) this.ctx.live.abort(cur.live);
  }

  private topElement(id: number, el: Buffer): void {
    if (id === ID.Info) {
      this.info = el;
      this.timecodeScaleNs = readTimecodeScale(el);
      if (this.timecodeScaleNs <= 0) throw new IngestError('INVALID_MKV_DATA', 'TimecodeScale must be positive');
      this.header = undefined;
    } else if (id === ID.Tracks) {
      const tracks = readTracks(el);
      if (tracks.length === 0) throw new IngestError('INVALID_MKV_DATA', 'Tracks element has no TrackEntry');
      if (tracks.length > MAX_TRACKS) {
        throw new IngestError('MORE_THAN_ALLOWED_TRACKS_FOUND', `${tracks.length} tracks found; at most ${MAX_TRACKS} are allowed`);
      }
      this.trackNumbers = new Set(tracks.map((t) => t.number));
      if (this.trackNumbers.size !== tracks.length || this.trackNumbers.has(0)) {
        throw new IngestError('INVALID_MKV_DATA', 'track numbers must be unique and non-zero');
      }
      this.tracks = el;
      this.header = undefined;
    } else if (id === ID.Tags) {
      const tags = readSimpleTags(el);
      if (tags.some(([name]) => name === END_OF_FRAGMENT_TAG)) return; // closes the fragment (already ended)
      this.pendingTags.push(el);
    }
    // SeekHead, Chapters, Attachments: not needed to serve the stream.
  }

  private clusterStart(): void {
    if (!this.ebml || !this.tracks) {
      throw new IngestError('INVALID_MKV_DATA', 'a Cluster arrived before the EBML header and Tracks');
    }
    this.activeStream();
    this.header ??= { ebml: this.ebml, tracks: this.info ? Buffer.concat([this.info, this.tracks]) : this.tracks };
    const seq = this.ctx.store.nextSeq();
    this.current = {
      seq,
      fragmentNumber: formatFragmentNumber(seq),
      producerTags: this.pendingTags,
      chunks: [],
      bytes: 0,
      serverTimestampMs: Date.now(),
      producerTimestampMs: 0,
      tracksSeen: new Map(),
      maxBlockTimecode: 0,
    };
    this.pendingTags = [];
  }

  /** The stream's current record; STREAM_NOT_ACTIVE once it is being deleted or gone. */
  private activeStream(): StreamRecord {
    const stream = this.ctx.streams.byId(this.opts.stream.id);
    if (!stream || stream.status === 'DELETING') {
      throw new IngestError('STREAM_NOT_ACTIVE', `stream ${this.opts.stream.name} was deleted`);
    }
    return stream;
  }

  private clusterTimecode(tc: number): void {
    const cur = this.current!;
    if (cur.timecode !== undefined) throw new IngestError('INVALID_MKV_DATA', 'a Cluster has two Timecode elements');
    cur.timecode = tc; // set first: the ERROR ack of a refused fragment names its timecode
    if (this.lastTimecode !== undefined && tc <= this.lastTimecode) {
      throw new IngestError(
        'FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS',
        `fragment timecode ${tc} is not greater than the previous fragment's ${this.lastTimecode}`,
      );
    }
    this.lastTimecode = tc;
    const producerMs = Math.floor(tc * this.scaleMs()) + (this.opts.timecodeType === 'RELATIVE' ? this.opts.producerStartMs : 0);
    if (producerMs > Date.now() + this.ctx.config.limits.maxFutureMs) {
      throw new IngestError('INVALID_PRODUCER_TIMESTAMP', `producer timestamp ${producerMs} ms is in the future`);
    }
    cur.producerTimestampMs = producerMs;

    const streamId = this.opts.stream.id;
    const stored = this.ctx.store.findByProducerTimestamp(streamId, producerMs);
    let arriving = stored ? undefined : this.ctx.live.findByProducerTimestamp(streamId, producerMs);
    if (arriving?.state === 'receiving') {
      // Re-sent while the original is still arriving on another connection: the producer gave
      // that connection up (it may be half-open, which the server learns only at its idle
      // timeout). This copy takes the original's place and fragment number; waiting for the
      // original instead would hold this connection's acks, and its body, until then.
      this.ctx.live.abort(arriving);
      cur.seq = arriving.seq;
      cur.fragmentNumber = arriving.fragmentNumber;
      arriving = undefined;
    }
    if (stored || arriving) {
      cur.fragmentNumber = stored?.fragmentNumber ?? arriving!.fragmentNumber;
      cur.duplicateOf = {
        fragmentNumber: cur.fragmentNumber,
        seq: stored?.seq ?? arriving!.seq,
        indexed: stored ? Promise.resolve(true) : this.waitIndexed(streamId, arriving!),
      };
    } else {
      cur.live = {
        streamId,
        seq: cur.seq,
        fragmentNumber: cur.fragmentNumber,
        producerTimestampMs: producerMs,
        serverTimestampMs: cur.serverTimestampMs,
        header: this.header!,
        producerTags: cur.producerTags,
        chunks: cur.chunks,
        state: 'receiving',
      };
      this.ctx.live.start(cur.live);
    }
    this.ack('BUFFERING', tc, cur.fragmentNumber);
  }

  /**
   * Resolves once a fragment arriving on another connection has left the hub: true when it was
   * stored, false when it was dropped. Never rejects: nothing may be waiting for it yet.
   */
  private async waitIndexed(streamId: number, f: LiveFragment): Promise<boolean> {
    while (this.ctx.live.findByProducerTimestamp(streamId, f.producerTimestampMs) === f) {
      await this.ctx.live.changed(streamId);
      if (this.ctx.live.isClosed(streamId)) return true;
    }
    return f.state !== 'aborted';
  }

  private clusterData(bytes: Buffer): void {
    const cur = this.current!;
    cur.bytes += bytes.length;
    if (cur.bytes > this.ctx.config.limits.maxFragmentBytes) {
      throw new IngestError('MAX_FRAGMENT_SIZE_REACHED', `fragment is larger than ${this.ctx.config.limits.maxFragmentBytes} bytes`);
    }
    if (cur.live) this.ctx.live.data(cur.live, bytes);
    else cur.chunks.push(bytes);
  }

  private block(track: number, timecode: number): void {
    const cur = this.current!;
    if (cur.timecode === undefined) throw new IngestError('INVALID_MKV_DATA', 'a block arrived before the Cluster Timecode');
    if (!this.trackNumbers.has(track)) {
      throw new IngestError('TRACK_NUMBER_MISMATCH', `block for track ${track}, which the Tracks element does not declare`);
    }
    const durationMs = timecode * this.scaleMs();
    if (durationMs > this.ctx.config.limits.maxFragmentDurationMs) {
      throw new IngestError(
        'MAX_FRAGMENT_DURATION_REACHED',
        `fragment is longer than ${this.ctx.config.limits.maxFragmentDurationMs} ms`,
      );
    }
    const t = cur.tracksSeen.get(track);
    if (t) {
      t.frames++;
      t.maxTimecode = Math.max(t.maxTimecode, timecode);
    } else cur.tracksSeen.set(track, { frames: 1, maxTimecode: timecode });
    cur.maxBlockTimecode = Math.max(cur.maxBlockTimecode, timecode);
  }

  private clusterEnd(): void {
    const cur = this.current;
    if (!cur) return;
    if (cur.live?.state === 'aborted') {
      // A re-send on a newer connection took this fragment over (clusterTimecode): not stored twice.
      this.current = undefined;
      this.ctx.log.info({ stream: this.opts.stream.name, fragmentNumber: cur.fragmentNumber }, 'fragment taken over by a re-send');
      return;
    }
    if (cur.timecode === undefined) throw new IngestError('INVALID_MKV_DATA', 'a Cluster has no Timecode');
    for (const n of this.trackNumbers) {
      if (!cur.tracksSeen.has(n)) throw new IngestError('FRAMES_MISSING_FOR_TRACK', `fragment has no frames for track ${n}`);
    }
    // A fragment completed while its stream is deleted is refused, not stored for a stream that is gone.
    const stream = this.activeStream();
    const durable = stream.retentionHours > 0;
    this.current = undefined;
    this.stats.fragments++;
    this.ack('RECEIVED', cur.timecode, cur.fragmentNumber);
    const timecode = cur.timecode;

    if (cur.duplicateOf) {
      this.stats.duplicates++;
      const { seq, indexed } = cur.duplicateOf;
      const header = this.header!;
      this.track(
        indexed.then((wasStored) => {
          if (wasStored) {
            if (durable) this.persistedAck(timecode, cur.fragmentNumber);
            return;
          }
          this.activeStream();
          // The original was dropped with its connection: this complete copy is stored in its
          // place, under the fragment number it was acknowledged with.
          const live: LiveFragment = {
            streamId: stream.id,
            seq,
            fragmentNumber: cur.fragmentNumber,
            producerTimestampMs: cur.producerTimestampMs,
            serverTimestampMs: cur.serverTimestampMs,
            header,
            producerTags: cur.producerTags,
            chunks: cur.chunks,
            state: 'receiving',
          };
          this.ctx.live.start(live);
          return this.persist(cur, live, timecode, durable);
        }),
      );
      return;
    }
    this.track(this.persist(cur, cur.live!, timecode, durable));
  }

  /** Hands a complete fragment to the store; its PERSISTED ack (if durable) follows once it is indexed. */
  private persist(cur: FragmentInProgress, live: LiveFragment, timecode: number, durable: boolean): Promise<void> {
    this.ctx.live.received(live);
    const clusterHeader = elementHeader(ID.Cluster, cur.bytes, 8);
    this.ctx.ingestBudget.take(cur.bytes);
    const appended = this.ctx.store.append({
      streamId: live.streamId,
      seq: live.seq,
      producerTimestampMs: cur.producerTimestampMs,
      serverTimestampMs: cur.serverTimestampMs,
      durationMs: Math.round(this.fragmentDuration(cur) * this.scaleMs()),
      header: live.header,
      chunks: [...cur.producerTags, clusterHeader, ...cur.chunks],
      durable,
    });
    void appended.then(
      () => this.ctx.ingestBudget.release(cur.bytes),
      () => this.ctx.ingestBudget.release(cur.bytes),
    );
    return appended.then(
      (stored: StoredFragment) => {
        this.ctx.live.indexed(live);
        if (durable) this.persistedAck(timecode, stored.fragmentNumber);
      },
      (err: unknown) => {
        this.ctx.live.abort(live);
        this.ctx.log.error({ err, stream: this.opts.stream.name }, 'storing a fragment failed');
        this.opts.sendAck({
          EventType: 'ERROR',
          FragmentTimecode: timecode,
          FragmentNumber: live.fragmentNumber,
          ErrorId: 5001,
          ErrorCode: 'ARCHIVAL_ERROR',
        });
      },
    );
  }

  /** Playback length of the fragment in timecode units: last block plus one frame interval. */
  private fragmentDuration(cur: FragmentInProgress): number {
    let best = { frames: 0, maxTimecode: 0 };
    for (const t of cur.tracksSeen.values()) if (t.frames > best.frames) best = t;
    const interval = best.frames > 1 ? best.maxTimecode / (best.frames - 1) : 0;
    return cur.maxBlockTimecode + interval;
  }

  private persistedAck(timecode: number, fragmentNumber: string): void {
    this.ack('PERSISTED', timecode, fragmentNumber);
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => {
      if (err instanceof IngestError) this.fail(err);
      else this.ctx.log.error({ err }, 'ingest bookkeeping failed');
    });
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
  }

  private ack(type: 'BUFFERING' | 'RECEIVED' | 'PERSISTED', timecode: number, fragmentNumber: string): void {
    this.opts.sendAck({ EventType: type, FragmentTimecode: timecode, FragmentNumber: fragmentNumber });
  }
}
