/**
 * The live side of every stream: fragments that are arriving, or have arrived but are not yet in
 * the index. Ingest sessions publish into it; GetMedia readers read from it. A fragment's bytes
 * are held once (the ingest session's slices) and shared by every reader; readers are woken on
 * each change and copy nothing.
 *
 * Invariant: at any synchronous moment a fragment that was started and not aborted is in the
 * store's index, in the hub, or both — so a reader that looks at the index and then at the hub
 * never misses one.
 */
import type { FragmentHeader } from '../storage/fragment-store.js';

export type LiveFragmentState = 'receiving' | 'received' | 'aborted';

export interface LiveFragment {
  streamId: number;
  seq: number;
  fragmentNumber: string;
  producerTimestampMs: number;
  serverTimestampMs: number;
  header: FragmentHeader;
  /** Producer metadata Tags elements that precede the cluster. */
  producerTags: Buffer[];
  /** The cluster's children bytes received so far (Timecode, blocks, …), in order. */
  chunks: Buffer[];
  state: LiveFragmentState;
}

interface StreamLive {
  fragments: Map<number, LiveFragment>;
  waiters: Set<() => void>;
  /** Server timestamp of the newest fragment started on the stream. */
  latestServerTimestampMs: number;
}

export class LiveHub {
  private readonly streams = new Map<number, StreamLive>();
  private readonly closedStreams = new Set<number>();
  private readonly readers = new Map<number, number>();

  /** Registers a GetMedia reader; returns how many the stream had before. */
  addReader(streamId: number): number {
    const n = this.readers.get(streamId) ?? 0;
    this.readers.set(streamId, n + 1);
    return n;
  }

  removeReader(streamId: number): void {
    const n = (this.readers.get(streamId) ?? 1) - 1;
    if (n > 0) this.readers.set(streamId, n);
    else this.readers.delete(streamId);
  }

  private live(streamId: number): StreamLive {
    let s = this.streams.get(streamId);
    if (!s) {
      s = { fragments: new Map(), waiters: new Set(), latestServerTimestampMs: 0 };
      this.streams.set(streamId, s);
    }
    return s;
  }

  private notify(s: StreamLive): void {
    const waiters = [...s.waiters];
    s.waiters.clear();
    for (const w of waiters) w();
  }

  start(fragment: LiveFragment): void {
    const s = this.live(fragment.streamId);
    s.fragments.set(fragment.seq, fragment);
    s.latestServerTimestampMs = Math.max(s.latestServerTimestampMs, fragment.serverTimestampMs);
    this.notify(s);
  }

  data(fragment: LiveFragment, bytes: Buffer): void {
    fragment.chunks.push(bytes);
    const s = this.streams.get(fragment.streamId);
    if (s && s.waiters.size > 0) this.notify(s);
  }

  received(fragment: LiveFragment): void {
    fragment.state = 'received';
    const s = this.streams.get(fragment.streamId);
    if (s) this.notify(s);
  }

  /** The fragment is now in the index (or failed to store): readers find it there. */
  indexed(fragment: LiveFragment): void {
    this.remove(fragment);
  }

  abort(fragment: LiveFragment): void {
    fragment.state = 'aborted';
    this.remove(fragment);
  }

  /** Removes the fragment, not a re-send that took its seq over (IngestSession.clusterTimecode). */
  private remove(fragment: LiveFragment): void {
    const s = this.streams.get(fragment.streamId);
    if (!s) return;
    if (s.fragments.get(fragment.seq) === fragment) s.fragments.delete(fragment.seq);
    this.notify(s);
  }

  /** The live fragment with the lowest seq above `afterSeq`, if any. */
  nextAfter(streamId: number, afterSeq: number): LiveFragment | undefined {
    let best: LiveFragment | undefined;
    for (const f of this.streams.get(streamId)?.fragments.values() ?? []) {
      if (f.seq > afterSeq && (best === undefined || f.seq < best.seq)) best = f;
    }
    return best;
  }

  /** The newest fragment that has started arriving (for GetMedia NOW). */
  newest(streamId: number): LiveFragment | undefined {
    let best: LiveFragment | undefined;
    for (const f of this.streams.get(streamId)?.fragments.values() ?? []) {
      if (best === undefined || f.seq > best.seq) best = f;
    }
    return best;
  }

  /** Finds a fragment by producer timestamp among those not yet indexed (duplicate detection). */
  findByProducerTimestamp(streamId: number, producerTimestampMs: number): LiveFragment | undefined {
    for (const f of this.streams.get(streamId)?.fragments.values() ?? []) {
      if (f.producerTimestampMs === producerTimestampMs && f.state !== 'aborted') return f;
    }
    return undefined;
  }

  latestServerTimestampMs(streamId: number): number {
    return this.streams.get(streamId)?.latestServerTimestampMs ?? 0;
  }

  /** Resolves at the next change on the stream (or when the stream or hub is closed). */
  changed(streamId: number): Promise<void> {
    if (this.closedStreams.has(streamId)) return Promise.resolve();
    return new Promise((resolve) => this.live(streamId).waiters.add(resolve));
  }

  /** Cancels a `changed` wait (for readers that stop waiting for another reason). */
  wake(streamId: number): void {
    const s = this.streams.get(streamId);
    if (s) this.notify(s);
  }

  isClosed(streamId: number): boolean {
    return this.closedStreams.has(streamId);
  }

  /** The stream was deleted: wake and end every reader of it. */
  closeStream(streamId: number): void {
    this.closedStreams.add(streamId);
    const s = this.streams.get(streamId);
    this.streams.delete(streamId);
    if (s) this.notify(s);
  }

  closeAll(): void {
    for (const id of [...this.streams.keys()]) this.closeStream(id);
  }
}
