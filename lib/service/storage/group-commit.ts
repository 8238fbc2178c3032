import type { DataKeys } from './fragment-cipher.js';
import type { FragmentHeader, FragmentIndex, FragmentRow, NewHeaders, StoredFragment } from './fragment-index.js';
import type { SealThread } from './seal-thread.js';
import { type DataFiles, type StorageLog, type Writer, syncDir } from './data-files.js';

export interface FragmentInput {
  streamId: number;
  /** From nextSeq(), allocated when the fragment started arriving. */
  seq: number;
  producerTimestampMs: number;
  serverTimestampMs: number;
  durationMs: number;
  header: FragmentHeader;
  /** The fragment's bytes, written as they are with one writev (no concatenation). */
  chunks: Buffer[];
  /** true: data is fsynced before the index commit; false: no fsync on its behalf. */
  durable: boolean;
}

/** Test-only: awaited at points of a batch commit, to simulate a crash there (never resolve). */
export interface FragmentStoreTestHooks {
  afterWrite?(): Promise<void>;
  afterSync?(): Promise<void>;
}

export interface FragmentStoreStats {
  batches: number;
  fsyncs: number;
  fragments: number;
}

export interface GroupCommitOptions {
  index: FragmentIndex;
  files: DataFiles;
  /** The per-stream keys new fragments are sealed with, and the thread sealing them; undefined: stored as received. */
  seal: { keys: DataKeys; thread: SealThread } | undefined;
  log: StorageLog;
  hooks: FragmentStoreTestHooks;
}

interface Pending {
  input: FragmentInput;
  resolve(fragment: StoredFragment): void;
  reject(err: unknown): void;
}

interface Written {
  pending: Pending;
  writer: Writer;
  offset: number;
  length: number;
  size: number;
  keyId: number | null;
}

/**
 * Group commit of appends, pipelined in two stages. A batch takes every queued fragment and writes
 * it to its stream's data file; then, in batch order, it fsyncs the touched files once and indexes
 * the whole batch in one transaction. The next batch's writes overlap the previous batch's fsync
 * and commit, one batch in each stage at most. Other work that changes files or index (retention,
 * deleting streams) runs as exclusive tasks, with neither stage busy.
 */
export class GroupCommit {
  private queue: Pending[] = [];
  private readonly tasks: (() => Promise<void>)[] = [];
  private worker: Promise<void> | undefined;
  /** Wakes a worker that waits on a batch's commit when new work arrives. */
  private wake: (() => void) | undefined;
  private readonly counters: FragmentStoreStats = { batches: 0, fsyncs: 0, fragments: 0 };

  constructor(private readonly opts: GroupCommitOptions) {}

  stats(): FragmentStoreStats {
    return { ...this.counters };
  }

  /** Queues a fragment for the next batch; resolves once it is written, (if durable) synced, and indexed. */
  append(input: FragmentInput): Promise<StoredFragment> {
    const problem = checkInput(input);
    if (problem) return Promise.reject(new TypeError(`invalid fragment: ${problem}`));
    return new Promise<StoredFragment>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  /** Runs fn alone: never concurrently with a batch or another task. */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(async () => {
        let outcome: { value: T } | { error: unknown };
        try {
          outcome = { value: await fn() };
        } catch (error) {
          outcome = { error };
        }
        await this.opts.files.closeRetired();
        if ('value' in outcome) resolve(outcome.value);
        else reject(outcome.error);
      });
      this.schedule();
    });
  }

  /** Stops the sealing thread (after idle()). */
  async close(): Promise<void> {
    await this.opts.seal?.thread.close();
  }

  /** Resolves once every queued batch and task is done. */
  async idle(): Promise<void> {
    while (this.worker) await this.worker;
  }

  private schedule(): void {
    if (this.wake) {
      this.wake();
      this.wake = undefined;
    }
    if (this.worker) return;
    this.worker = this.drain()
      .catch((err: unknown) => this.opts.log.warn({ err }, 'fragment store worker failed'))
      .finally(() => {
        this.worker = undefined;
        if (this.queue.length > 0 || this.tasks.length > 0) this.schedule();
      });
  }

  private async drain(): Promise<void> {
    /** The previous batch's fsync and commit, while this loop writes the next batch. */
    let committing: Promise<void> | undefined;
    let committed = false;
    for (;;) {
      // Start on the next turn of the event loop so that appends made in this one share a batch.
      await new Promise<void>((resolve) => setImmediate(resolve));
      if (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        // Files retired before these writes start were used by earlier batches only.
        const retired = this.opts.files.takeRetired();
        const written = await this.writeStage(batch);
        await committing;
        await this.opts.files.closeWriters(retired);
        committed = false;
        committing = this.commitStage(batch, written).finally(() => (committed = true));
      }
      // A task waits for the batch in commit, and runs before the next one: load does not starve it.
      if (this.tasks.length > 0) {
        await committing;
        committing = undefined;
        await this.opts.files.closeRetired();
        await this.tasks.shift()!();
        continue;
      }
      if (this.queue.length > 0) continue;
      if (!committing || committed) break;
      // Nothing queued: wait for the commit, or for new work to start writing meanwhile.
      await Promise.race([committing, new Promise<void>((resolve) => (this.wake = resolve))]);
      this.wake = undefined;
    }
    await this.opts.files.closeRetired();
  }

  /** Writes the batch; fails all of it on an unexpected error (each write handles its own). */
  private async writeStage(batch: Pending[]): Promise<Written[]> {
    this.counters.batches++;
    try {
      const written = await this.writeBatch(batch);
      await this.opts.hooks.afterWrite?.();
      return written;
    } catch (err) {
      for (const p of batch) p.reject(err);
      this.opts.log.warn({ err }, 'fragment batch failed');
      return [];
    }
  }

  /** fsyncs and indexes a written batch; fails what is still pending on an unexpected error. */
  private async commitStage(batch: Pending[], written: Written[]): Promise<void> {
    try {
      const synced = await this.syncBatch(written);
      await this.opts.hooks.afterSync?.();
      this.indexBatch(synced);
    } catch (err) {
      for (const p of batch) p.reject(err);
      this.opts.log.warn({ err }, 'fragment batch failed');
    }
  }

  /** Writes each fragment at the end of its stream's data file; streams in parallel. */
  private async writeBatch(batch: Pending[]): Promise<Written[]> {
    const byStream = new Map<number, Pending[]>();
    for (const p of batch) {
      const list = byStream.get(p.input.streamId);
      if (list) list.push(p);
      else byStream.set(p.input.streamId, [p]);
    }
    const written: Written[] = [];
    await Promise.all(
      [...byStream.values()].map(async (items) => {
        for (const pending of items) {
          try {
            written.push(await this.writeOne(pending));
          } catch (err) {
            pending.reject(err);
          }
        }
      }),
    );
    return written;
  }

  private async writeOne(pending: Pending): Promise<Written> {
    const { streamId, seq } = pending.input;
    const { seal } = this.opts;
    const dataKey = seal?.keys.keyFor(streamId);
    const size = pending.input.chunks.reduce((sum, c) => sum + c.length, 0);
    const { chunks } = pending.input;
    const sealed = dataKey ? await seal!.thread.seal(dataKey.key, streamId, seq, chunks, size) : { chunks, release() {} };
    let appended;
    try {
      appended = await this.opts.files.append(streamId, sealed.chunks);
    } finally {
      sealed.release();
    }
    const { writer, offset, length } = appended;
    return { pending, writer, offset, length, size, keyId: dataKey?.id ?? null };
  }

  /** fsyncs (in parallel) every file holding durable fragments; drops the durable fragments of files that fail. */
  private async syncBatch(written: Written[]): Promise<Written[]> {
    const writers = new Set<Writer>();
    for (const w of written) if (w.pending.input.durable) writers.add(w.writer);
    if (writers.size === 0) return written;

    // Every file and every directory entry (of new files) is synced once, all in parallel.
    const dirs = new Map<string, Promise<unknown>>();
    for (const writer of writers) {
      for (const dir of writer.dirsToSync) {
        if (!dirs.has(dir)) dirs.set(dir, errorOf(syncDir(dir).then(() => this.counters.fsyncs++)));
      }
    }
    const failed = new Map<Writer, unknown>();
    await Promise.all(
      [...writers].map(async (writer) => {
        // After a failed fsync, a later one may succeed with the data lost: the file is not trusted.
        let err = writer.syncError ?? (await errorOf(writer.handle.datasync()));
        if (err === undefined) this.counters.fsyncs++;
        for (const dir of writer.dirsToSync) err ??= await dirs.get(dir);
        if (err === undefined) writer.dirsToSync = [];
        else failed.set(writer, err);
      }),
    );
    if (failed.size === 0) return written;

    const kept: Written[] = [];
    for (const w of written) {
      const err = failed.get(w.writer);
      if (err !== undefined && w.pending.input.durable) w.pending.reject(err);
      else kept.push(w);
    }
    for (const [writer, err] of failed) {
      if (writer.syncError !== undefined) continue; // reported by the batch that found it
      writer.syncError = err;
      this.opts.log.warn({ err, file: writer.relPath }, 'fsync failed; rotating the data file');
      this.opts.files.retire(writer);
    }
    return kept;
  }

  /** Indexes the batch in one transaction, then resolves its promises. */
  private indexBatch(written: Written[]): void {
    if (written.length === 0) return;
    const { index } = this.opts;
    const newHeaders: NewHeaders = new Map();
    const newFiles = new Set<Writer>();
    const done: [Pending, StoredFragment][] = [];
    try {
      index.transaction(() => {
        for (const w of written) {
          const { input } = w.pending;
          try {
            const headerId = index.headerIdFor(input.header, newHeaders);
            if (!w.writer.indexed && !newFiles.has(w.writer)) {
              index.insertFile(w.writer.fileId, w.writer.streamId, w.writer.relPath, w.writer.createdMs);
              newFiles.add(w.writer);
            }
            const row: FragmentRow = {
              seq: input.seq,
              stream_id: input.streamId,
              producer_ms: input.producerTimestampMs,
              server_ms: input.serverTimestampMs,
              duration_ms: input.durationMs,
              size: w.size,
              header_id: headerId,
              file_id: w.writer.fileId,
              offset: w.offset,
              length: w.length,
              key_id: w.keyId,
            };
            done.push([w.pending, index.insertFragment(row)]);
          } catch (err) {
            if (!index.inTransaction) throw err; // the whole transaction is gone
            w.pending.reject(err); // e.g. a duplicate seq: only this fragment fails
          }
        }
      });
    } catch (err) {
      for (const w of written) w.pending.reject(err);
      for (const w of written) this.opts.files.retire(w.writer); // their unindexed tails are left for recovery
      this.opts.log.warn({ err }, 'indexing a fragment batch failed');
      return;
    }
    index.headersCommitted(newHeaders);
    for (const writer of newFiles) writer.indexed = true;
    this.counters.fragments += done.length;
    for (const [pending, stored] of done) pending.resolve(stored);
  }
}

/** Resolves to the promise's error, or undefined if it succeeds. */
async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return err ?? new Error('unknown error');
  }
}

function checkInput(input: FragmentInput): string | undefined {
  if (!Number.isSafeInteger(input.streamId)) return 'streamId must be an integer';
  if (!Number.isSafeInteger(input.seq) || input.seq < 0) return 'seq must be a non-negative integer';
  for (const key of ['producerTimestampMs', 'serverTimestampMs', 'durationMs'] as const) {
    if (!Number.isFinite(input[key])) return `${key} must be a finite number`;
  }
  if (!Buffer.isBuffer(input.header?.ebml) || !Buffer.isBuffer(input.header?.tracks)) return 'header must hold buffers';
  if (!Array.isArray(input.chunks) || !input.chunks.every((c) => Buffer.isBuffer(c))) return 'chunks must be buffers';
  return undefined;
}
