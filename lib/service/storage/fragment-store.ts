import type Database from 'better-sqlite3';
import { recoverFromCrash } from './crash-recovery.js';
import { DataFiles, dataFilePath, type StorageLog } from './data-files.js';
import { type DataKeys, IntegrityError, openSealed } from './fragment-cipher.js';
import { FragmentIndex, type FragmentHeader, type StoredFragment, type TimestampKind } from './fragment-index.js';
import { GroupCommit, type FragmentInput, type FragmentStoreStats, type FragmentStoreTestHooks } from './group-commit.js';
import { Retention, type SweepResult } from './retention.js';
import { SealThread } from './seal-thread.js';

export type { StorageLog } from './data-files.js';
export type { FragmentHeader, StoredFragment, TimestampKind } from './fragment-index.js';
export type { FragmentInput, FragmentStoreStats, FragmentStoreTestHooks } from './group-commit.js';
export type { SweepResult } from './retention.js';

export interface FragmentStoreOptions {
  /** Data files go under `${dataDir}/streams/<streamId>/<fileId>.frag`. */
  dataDir: string;
  /** From openDatabase. The store does not close it. */
  db: Database.Database;
  /** Rotate a stream's data file once it has reached this size (default 64 MiB). */
  fileMaxBytes?: number;
  /** ...or this age (default 10 minutes). */
  fileMaxAgeMs?: number;
  /** A stream's retention; 0 keeps only the live buffer (liveBufferMs); undefined: the stream is gone. */
  retentionMs: (streamId: number) => number | undefined;
  /** What retention 0 keeps (default 5 minutes). */
  liveBufferMs?: number;
  log?: StorageLog;
  /** Per-stream keys: new fragments are sealed with them (encryption at rest) and sealed ones opened. */
  dataKeys?: DataKeys;
  /** false: keep dataKeys only to open what was sealed before; new fragments are stored as received. */
  seal?: boolean;
  testHooks?: FragmentStoreTestHooks;
}

const DEFAULT_FILE_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_FILE_MAX_AGE_MS = 10 * 60_000;
const DEFAULT_LIVE_BUFFER_MS = 300_000;
const NO_LOG: StorageLog = { error() {}, warn() {}, info() {} };

/**
 * Durable, time-indexed fragment storage: fragment bytes are appended to per-stream data files
 * (data-files.ts), and an SQLite index (fragment-index.ts) maps fragments to (file, offset, length).
 * Appends are group-committed (group-commit.ts); opening repairs what a crash left
 * (crash-recovery.ts); retention deletes expired files (retention.ts).
 */
export class FragmentStore {
  private seqCounter = 0;
  private closed = false;
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;

  private constructor(
    private readonly index: FragmentIndex,
    private readonly files: DataFiles,
    private readonly commits: GroupCommit,
    private readonly retention: Retention,
    private readonly dataKeys: DataKeys | undefined,
    private readonly log: StorageLog,
  ) {}

  /** Opens the store, first repairing whatever a crash left behind. */
  static async open(opts: FragmentStoreOptions): Promise<FragmentStore> {
    const log = opts.log ?? NO_LOG;
    const index = new FragmentIndex(opts.db);
    const files = new DataFiles(opts.dataDir, {
      fileMaxBytes: opts.fileMaxBytes ?? DEFAULT_FILE_MAX_BYTES,
      fileMaxAgeMs: opts.fileMaxAgeMs ?? DEFAULT_FILE_MAX_AGE_MS,
      log,
    });
    const sealKeys = (opts.seal ?? true) ? opts.dataKeys : undefined;
    const commits = new GroupCommit({
      index,
      files,
      seal: sealKeys ? { keys: sealKeys, thread: new SealThread(log) } : undefined,
      log,
      hooks: opts.testHooks ?? {},
    });
    const retention = new Retention({
      index,
      files,
      retentionMs: opts.retentionMs,
      liveBufferMs: opts.liveBufferMs ?? DEFAULT_LIVE_BUFFER_MS,
      dataKeys: opts.dataKeys,
      log,
    });
    const store = new FragmentStore(index, files, commits, retention, opts.dataKeys, log);
    await recoverFromCrash(opts.dataDir, index, log);
    store.seqCounter = Math.max(index.maxSeq() + 1, Date.now() * 1000);
    files.nextFileId = index.maxFileId() + 1;
    return store;
  }

  /** A new sequence number: strictly increasing, and never reused across restarts. */
  nextSeq(): number {
    return this.seqCounter++;
  }

  stats(): FragmentStoreStats {
    return this.commits.stats();
  }

  /** Queues a fragment for the next batch; resolves once it is written, (if durable) synced, and indexed. */
  append(input: FragmentInput): Promise<StoredFragment> {
    if (this.closed) return Promise.reject(new Error('fragment store is closed'));
    return this.commits.append(input);
  }

  header(headerId: number): FragmentHeader {
    return this.index.header(headerId);
  }

  /**
   * The fragment's bytes, exactly as appended (opened when sealed). A sealed fragment whose bytes
   * changed on disk is never returned: the error is logged and thrown as an IntegrityError.
   */
  async read(f: StoredFragment): Promise<Buffer> {
    if (this.closed) throw new Error('fragment store is closed');
    const stored = await this.files.read(f);
    if (f.keyId === undefined) return stored;
    if (!this.dataKeys) throw new IntegrityError(`Fragment ${f.fragmentNumber} is encrypted and this server runs without its keys (encryption off).`);
    let key: Buffer;
    try {
      key = this.dataKeys.key(f.keyId);
    } catch (err) {
      throw new IntegrityError(`Fragment ${f.fragmentNumber} cannot be opened: ${(err as Error).message}.`);
    }
    try {
      return openSealed(key, f.streamId, f.seq, stored);
    } catch (err) {
      this.log.error({ err, fragment: f.fragmentNumber, file: dataFilePath(f.streamId, f.fileId), offset: f.offset }, 'fragment failed its integrity check: the data file was changed or damaged; not serving it');
      throw new IntegrityError(`Fragment ${f.fragmentNumber} failed its integrity check (the stored data was changed or damaged); it is not served.`);
    }
  }

  get(streamId: number, seq: number): StoredFragment | undefined {
    return this.index.get(streamId, seq);
  }

  /** Fragments with seq > afterSeq, ascending. */
  after(streamId: number, afterSeq: number, limit: number): StoredFragment[] {
    return this.index.after(streamId, afterSeq, limit);
  }

  first(streamId: number): StoredFragment | undefined {
    return this.index.first(streamId);
  }

  last(streamId: number): StoredFragment | undefined {
    return this.index.last(streamId);
  }

  /** The fragment containing the timestamp: the last start at or before it (the earliest fragment of that start), else the first after it. */
  atTimestamp(streamId: number, kind: TimestampKind, ms: number): StoredFragment | undefined {
    return this.index.atTimestamp(streamId, kind, ms);
  }

  /** Fragments starting (by kind) within [startMs, endMs], with seq > afterSeq, by seq, at most limit. */
  list(
    streamId: number,
    q: { kind: TimestampKind; startMs: number; endMs: number; afterSeq?: number; limit: number },
  ): StoredFragment[] {
    return this.index.list(streamId, q);
  }

  /** The latest fragment with exactly this producer timestamp (to detect re-sent fragments). */
  findByProducerTimestamp(streamId: number, producerTimestampMs: number): StoredFragment | undefined {
    return this.index.findByProducerTimestamp(streamId, producerTimestampMs);
  }

  /** Removes all of a stream's fragments, files and its folder. */
  async deleteStream(streamId: number): Promise<void> {
    await this.exclusive(async () => {
      await this.retention.removeStreams([streamId]);
    });
  }

  /** Applies retention: deletes whole data files whose newest fragment is older than the cutoff. */
  sweep(now = Date.now()): Promise<SweepResult> {
    return this.exclusive(() => this.retention.sweep(now));
  }

  startSweeper(intervalMs: number): void {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = setInterval(() => {
      if (this.sweeping || this.closed) return;
      this.sweeping = true;
      this.sweep()
        .catch((err: unknown) => this.log.warn({ err }, 'retention sweep failed'))
        .finally(() => {
          this.sweeping = false;
        });
    }, intervalMs);
    this.sweeper.unref();
  }

  /** Flushes queued appends and pending work, then releases files. Later appends reject. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = undefined;
    await this.commits.idle();
    await this.commits.close();
    this.files.retireAll();
    await this.files.closeRetired();
    await this.files.closeReadHandles();
  }

  /** Runs fn alone: never concurrently with a batch or another task. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('fragment store is closed'));
    return this.commits.exclusive(fn);
  }
}
