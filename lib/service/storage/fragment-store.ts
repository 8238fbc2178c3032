import { createHash } from 'node:crypto';
import { mkdir, open, readdir, rm, rmdir, stat, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { type DataKeys, IntegrityError, openSealed, sealChunks } from './fragment-cipher.js';
import { formatFragmentNumber } from './fragment-number.js';
import { ReadHandles } from './read-handles.js';

/** The MKV stream header a fragment belongs to: EBML header element bytes; Info + Tracks element bytes. */
export interface FragmentHeader {
  ebml: Buffer;
  tracks: Buffer;
}

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

export interface StoredFragment {
  seq: number;
  fragmentNumber: string;
  streamId: number;
  producerTimestampMs: number;
  serverTimestampMs: number;
  durationMs: number;
  sizeBytes: number;
  headerId: number;
  fileId: number;
  offset: number;
  /** Bytes on disk (sizeBytes plus the nonce and tag when sealed). */
  length: number;
  /** The data key the fragment is sealed with; undefined: stored in the clear. */
  keyId?: number;
}

export type TimestampKind = 'producer' | 'server';

export interface StorageLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** Test-only: awaited at points of a batch commit, to simulate a crash there (never resolve). */
export interface FragmentStoreTestHooks {
  afterWrite?(): Promise<void>;
  afterSync?(): Promise<void>;
}

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

export interface FragmentStoreStats {
  batches: number;
  fsyncs: number;
  fragments: number;
}

export interface SweepResult {
  filesDeleted: number;
  fragmentsDeleted: number;
}

/** The data file a stream is currently appending to. */
interface Writer {
  streamId: number;
  fileId: number;
  relPath: string;
  handle: FileHandle;
  /** End of the last fragment written (and kept) in the file. */
  size: number;
  createdMs: number;
  /** Whether its `files` row is committed. */
  indexed: boolean;
  /** Directories whose entries for this file are not yet durable. */
  dirsToSync: string[];
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

interface FragmentRow {
  seq: number;
  stream_id: number;
  producer_ms: number;
  server_ms: number;
  duration_ms: number;
  size: number;
  header_id: number;
  file_id: number;
  offset: number;
  length: number;
  key_id: number | null;
}

interface FileRow {
  id: number;
  stream_id: number;
  path: string;
}

interface KindQueries {
  atOrBefore: Database.Statement<[number, number], FragmentRow>;
  after: Database.Statement<[number, number], FragmentRow>;
  range: Database.Statement<[number, number, number, number, number], FragmentRow>;
}

const DEFAULT_FILE_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_FILE_MAX_AGE_MS = 10 * 60_000;
const DEFAULT_LIVE_BUFFER_MS = 300_000;
const COLUMNS = 'seq, stream_id, producer_ms, server_ms, duration_ms, size, header_id, file_id, offset, length, key_id';
const NO_LOG: StorageLog = { error() {}, warn() {}, info() {} };

/**
 * Durable, time-indexed fragment storage: fragment bytes are appended to per-stream data files,
 * and an SQLite index maps fragments to (file, offset, length). Appends are group-committed: one
 * batch at a time writes every queued fragment, fsyncs the touched files once, and indexes the
 * whole batch in one transaction.
 */
export class FragmentStore {
  private readonly dataDir: string;
  private readonly streamsDir: string;
  private readonly db: Database.Database;
  private readonly fileMaxBytes: number;
  private readonly fileMaxAgeMs: number;
  private readonly liveBufferMs: number;
  private readonly retentionMs: (streamId: number) => number | undefined;
  private readonly log: StorageLog;
  private readonly hooks: FragmentStoreTestHooks;
  private readonly dataKeys: DataKeys | undefined;
  private readonly seal: boolean;

  private seqCounter = 0;
  private nextFileId = 1;
  private closed = false;
  private queue: Pending[] = [];
  private readonly tasks: (() => Promise<void>)[] = [];
  private worker: Promise<void> | undefined;
  private readonly writers = new Map<number, Writer>();
  private retired: Writer[] = [];
  private readonly headerIds = new Map<string, number>();
  private readonly headers = new Map<number, FragmentHeader>();
  private readonly readHandles = new ReadHandles(64);
  private sweeper: NodeJS.Timeout | undefined;
  private sweeping = false;
  private readonly counters: FragmentStoreStats = { batches: 0, fsyncs: 0, fragments: 0 };

  private readonly sql: {
    insertFragment: Database.Statement<[FragmentRow]>;
    insertFile: Database.Statement<[number, number, string, number]>;
    insertHeader: Database.Statement<[string, Buffer, Buffer]>;
    headerIdByHash: Database.Statement<[string], number>;
    headerById: Database.Statement<[number], { ebml: Buffer; tracks: Buffer }>;
    get: Database.Statement<[number, number], FragmentRow>;
    after: Database.Statement<[number, number, number], FragmentRow>;
    first: Database.Statement<[number], FragmentRow>;
    last: Database.Statement<[number], FragmentRow>;
    byProducerTimestamp: Database.Statement<[number, number], FragmentRow>;
    streamsWithFiles: Database.Statement<[], number>;
    filesOfStream: Database.Statement<[number], FileRow>;
    newestInFile: Database.Statement<[number], number | null>;
    fileEnd: Database.Statement<[number], number>;
    deleteFileFragments: Database.Statement<[number]>;
    deleteFile: Database.Statement<[number]>;
    deleteFragmentsPastEnd: Database.Statement<[number, number]>;
    deleteStreamFragments: Database.Statement<[number]>;
    deleteStreamFiles: Database.Statement<[number]>;
    deleteStreamKeys: Database.Statement<[number]>;
  };
  private readonly byKind: Record<TimestampKind, KindQueries>;

  private constructor(opts: FragmentStoreOptions) {
    this.dataDir = opts.dataDir;
    this.streamsDir = join(opts.dataDir, 'streams');
    this.db = opts.db;
    this.fileMaxBytes = opts.fileMaxBytes ?? DEFAULT_FILE_MAX_BYTES;
    this.fileMaxAgeMs = opts.fileMaxAgeMs ?? DEFAULT_FILE_MAX_AGE_MS;
    this.liveBufferMs = opts.liveBufferMs ?? DEFAULT_LIVE_BUFFER_MS;
    this.retentionMs = opts.retentionMs;
    this.log = opts.log ?? NO_LOG;
    this.hooks = opts.testHooks ?? {};
    this.dataKeys = opts.dataKeys;
    this.seal = opts.seal ?? true;

    const db = this.db;
    this.sql = {
      insertFragment: db.prepare(
        `INSERT INTO fragments (${COLUMNS}) VALUES (@seq, @stream_id, @producer_ms, @server_ms, @duration_ms,
           @size, @header_id, @file_id, @offset, @length, @key_id)`,
      ),
      insertFile: db.prepare('INSERT INTO files (id, stream_id, path, created_ms) VALUES (?, ?, ?, ?)'),
      insertHeader: db.prepare('INSERT INTO headers (hash, ebml, tracks) VALUES (?, ?, ?)'),
      headerIdByHash: db.prepare<[string], number>('SELECT id FROM headers WHERE hash = ?').pluck(),
      headerById: db.prepare('SELECT ebml, tracks FROM headers WHERE id = ?'),
      get: db.prepare(`SELECT ${COLUMNS} FROM fragments WHERE seq = ? AND stream_id = ?`),
      after: db.prepare(`SELECT ${COLUMNS} FROM fragments WHERE stream_id = ? AND seq > ? ORDER BY seq LIMIT ?`),
      first: db.prepare(`SELECT ${COLUMNS} FROM fragments WHERE stream_id = ? ORDER BY seq LIMIT 1`),
      last: db.prepare(`SELECT ${COLUMNS} FROM fragments WHERE stream_id = ? ORDER BY seq DESC LIMIT 1`),
      byProducerTimestamp: db.prepare(
        `SELECT ${COLUMNS} FROM fragments WHERE stream_id = ? AND producer_ms = ? ORDER BY seq DESC LIMIT 1`,
      ),
      streamsWithFiles: db.prepare<[], number>('SELECT DISTINCT stream_id FROM files').pluck(),
      filesOfStream: db.prepare('SELECT id, stream_id, path FROM files WHERE stream_id = ? ORDER BY id'),
      newestInFile: db
        .prepare<[number], number | null>('SELECT MAX(server_ms) FROM fragments WHERE file_id = ?')
        .pluck(),
      fileEnd: db
        .prepare<[number], number>(
          'SELECT offset + length FROM fragments WHERE file_id = ? ORDER BY offset DESC LIMIT 1',
        )
        .pluck(),
      deleteFileFragments: db.prepare('DELETE FROM fragments WHERE file_id = ?'),
      deleteFile: db.prepare('DELETE FROM files WHERE id = ?'),
      deleteFragmentsPastEnd: db.prepare('DELETE FROM fragments WHERE file_id = ? AND offset + length > ?'),
      deleteStreamFragments: db.prepare('DELETE FROM fragments WHERE stream_id = ?'),
      deleteStreamFiles: db.prepare('DELETE FROM files WHERE stream_id = ?'),
      deleteStreamKeys: db.prepare('DELETE FROM data_keys WHERE stream_id = ?'),
    };
    const kindQueries = (column: string): KindQueries => ({
      atOrBefore: db.prepare(
        `SELECT ${COLUMNS} FROM fragments WHERE stream_id = ? AND ${column} <= ?
         ORDER BY ${column} DESC, seq LIMIT 1`,
      ),
      after: db.prepare(
        `SELECT ${COLUMNS} FROM fragments WHERE stream_id = ? AND ${column} > ?
         ORDER BY ${column}, seq LIMIT 1`,
      ),
      range: db.prepare(
        `SELECT ${COLUMNS} FROM fragments WHERE stream_id = ? AND ${column} BETWEEN ? AND ? AND seq > ?
         ORDER BY seq LIMIT ?`,
      ),
    });
    this.byKind = { producer: kindQueries('producer_ms'), server: kindQueries('server_ms') };
  }

  /** Opens the store, first repairing whatever a crash left behind. */
  static async open(opts: FragmentStoreOptions): Promise<FragmentStore> {
    const store = new FragmentStore(opts);
    await store.recover();
    const maxSeq = opts.db.prepare<[], number | null>('SELECT MAX(seq) FROM fragments').pluck().get() ?? -1;
    const maxFileId = opts.db.prepare<[], number | null>('SELECT MAX(id) FROM files').pluck().get() ?? 0;
    store.seqCounter = Math.max(maxSeq + 1, Date.now() * 1000);
    store.nextFileId = maxFileId + 1;
    return store;
  }

  /** A new sequence number: strictly increasing, and never reused across restarts. */
  nextSeq(): number {
    return this.seqCounter++;
  }

  stats(): FragmentStoreStats {
    return { ...this.counters };
  }

  /** Queues a fragment for the next batch; resolves once it is written, (if durable) synced, and indexed. */
  append(input: FragmentInput): Promise<StoredFragment> {
    if (this.closed) return Promise.reject(new Error('fragment store is closed'));
    const problem = checkInput(input);
    if (problem) return Promise.reject(new TypeError(`invalid fragment: ${problem}`));
    return new Promise<StoredFragment>((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      this.schedule();
    });
  }

  header(headerId: number): FragmentHeader {
    let header = this.headers.get(headerId);
    if (!header) {
      const row = this.sql.headerById.get(headerId);
      if (!row) throw new Error(`unknown stream header ${headerId}`);
      header = { ebml: row.ebml, tracks: row.tracks };
      this.headers.set(headerId, header);
    }
    return header;
  }

  /**
   * The fragment's bytes, exactly as appended (opened when sealed). A sealed fragment whose bytes
   * changed on disk is never returned: the error is logged and thrown as an IntegrityError.
   */
  async read(f: StoredFragment): Promise<Buffer> {
    if (this.closed) throw new Error('fragment store is closed');
    const path = join(this.dataDir, filePath(f.streamId, f.fileId));
    const stored = await this.readHandles.use(f.fileId, path, async (handle) => {
      const buffer = Buffer.allocUnsafe(f.length);
      let done = 0;
      while (done < f.length) {
        const { bytesRead } = await handle.read(buffer, done, f.length - done, f.offset + done);
        if (bytesRead === 0) throw new Error(`fragment ${f.fragmentNumber} is truncated in ${path}`);
        done += bytesRead;
      }
      return buffer;
    });
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
      this.log.error({ err, fragment: f.fragmentNumber, file: filePath(f.streamId, f.fileId), offset: f.offset }, 'fragment failed its integrity check: the data file was changed or damaged; not serving it');
      throw new IntegrityError(`Fragment ${f.fragmentNumber} failed its integrity check (the stored data was changed or damaged); it is not served.`);
    }
  }

  get(streamId: number, seq: number): StoredFragment | undefined {
    return toStored(this.sql.get.get(seq, streamId));
  }

  /** Fragments with seq > afterSeq, ascending. */
  after(streamId: number, afterSeq: number, limit: number): StoredFragment[] {
    return this.sql.after.all(streamId, afterSeq, limit).map(fromRow);
  }

  first(streamId: number): StoredFragment | undefined {
    return toStored(this.sql.first.get(streamId));
  }

  last(streamId: number): StoredFragment | undefined {
    return toStored(this.sql.last.get(streamId));
  }

  /** The fragment containing the timestamp: the last start at or before it (the earliest fragment of that start), else the first after it. */
  atTimestamp(streamId: number, kind: TimestampKind, ms: number): StoredFragment | undefined {
    const q = this.byKind[kind];
    return toStored(q.atOrBefore.get(streamId, ms) ?? q.after.get(streamId, ms));
  }

  /** Fragments starting (by kind) within [startMs, endMs], with seq > afterSeq, by seq, at most limit. */
  list(
    streamId: number,
    q: { kind: TimestampKind; startMs: number; endMs: number; afterSeq?: number; limit: number },
  ): StoredFragment[] {
    return this.byKind[q.kind].range
      .all(streamId, q.startMs, q.endMs, q.afterSeq ?? -1, q.limit)
      .map(fromRow);
  }

  /** The latest fragment with exactly this producer timestamp (to detect re-sent fragments). */
  findByProducerTimestamp(streamId: number, producerTimestampMs: number): StoredFragment | undefined {
    return toStored(this.sql.byProducerTimestamp.get(streamId, producerTimestampMs));
  }

  /** Removes all of a stream's fragments, files and its folder. */
  async deleteStream(streamId: number): Promise<void> {
    await this.exclusive(async () => {
      await this.removeStreams([streamId]);
    });
  }

  /** Applies retention: deletes whole data files whose newest fragment is older than the cutoff. */
  sweep(now = Date.now()): Promise<SweepResult> {
    return this.exclusive(() => this.sweepNow(now));
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
    while (this.worker) await this.worker;
    for (const writer of [...this.writers.values()]) this.retire(writer);
    await this.closeRetired();
    await this.readHandles.closeAll();
  }

  // ---- the committer ------------------------------------------------------------------------

  private schedule(): void {
    if (this.worker) return;
    // Start on the next turn of the event loop so that appends made in this one share a batch.
    this.worker = new Promise<void>((resolve) => setImmediate(resolve))
      .then(() => this.drain())
      .catch((err: unknown) => this.log.warn({ err }, 'fragment store worker failed'))
      .finally(() => {
        this.worker = undefined;
        if (this.queue.length > 0 || this.tasks.length > 0) this.schedule();
      });
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 || this.tasks.length > 0) {
      if (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        await this.commitBatch(batch);
      }
      const task = this.tasks.shift();
      if (task) await task();
    }
  }

  /** Runs fn alone: never concurrently with a batch or another task. */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new Error('fragment store is closed'));
    return new Promise<T>((resolve, reject) => {
      this.tasks.push(async () => {
        let outcome: { value: T } | { error: unknown };
        try {
          outcome = { value: await fn() };
        } catch (error) {
          outcome = { error };
        }
        await this.closeRetired();
        if ('value' in outcome) resolve(outcome.value);
        else reject(outcome.error);
      });
      this.schedule();
    });
  }

  private async commitBatch(batch: Pending[]): Promise<void> {
    this.counters.batches++;
    try {
      const written = await this.writeBatch(batch);
      await this.hooks.afterWrite?.();
      const synced = await this.syncBatch(written);
      await this.hooks.afterSync?.();
      this.indexBatch(synced);
    } catch (err) {
      // Unexpected (each step handles its own failures): fail whatever is still pending.
      for (const p of batch) p.reject(err);
      this.log.warn({ err }, 'fragment batch failed');
    } finally {
      await this.closeRetired();
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
    const dataKey = this.seal ? this.dataKeys?.keyFor(streamId) : undefined;
    const size = pending.input.chunks.reduce((sum, c) => sum + c.length, 0);
    const chunks = dataKey ? sealChunks(dataKey.key, streamId, seq, pending.input.chunks) : pending.input.chunks;
    const writer = await this.writerFor(streamId);
    const offset = writer.size;
    const length = chunks.reduce((sum, c) => sum + c.length, 0);
    try {
      await writeAll(writer.handle, chunks, offset);
    } catch (err) {
      // Keep the file clean for the next fragment; if even that fails, give the file up.
      try {
        await writer.handle.truncate(offset);
      } catch (truncateErr) {
        this.log.warn({ err: truncateErr, file: writer.relPath }, 'could not truncate a failed write');
        this.retire(writer);
      }
      throw err;
    }
    writer.size = offset + length;
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
        if (!dirs.has(dir)) dirs.set(dir, errorOf(this.syncDir(dir).then(() => this.counters.fsyncs++)));
      }
    }
    const failed = new Map<Writer, unknown>();
    await Promise.all(
      [...writers].map(async (writer) => {
        let err = await errorOf(writer.handle.datasync());
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
      this.log.warn({ err, file: writer.relPath }, 'fsync failed; rotating the data file');
      this.retire(writer);
    }
    return kept;
  }

  private async syncDir(dir: string): Promise<void> {
    const handle = await open(dir, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** Indexes the batch in one transaction, then resolves its promises. */
  private indexBatch(written: Written[]): void {
    if (written.length === 0) return;
    const newHeaders = new Map<string, { id: number; header: FragmentHeader }>();
    const newFiles = new Set<Writer>();
    const done: [Pending, StoredFragment][] = [];
    try {
      this.db.transaction(() => {
        for (const w of written) {
          const { input } = w.pending;
          try {
            const headerId = this.headerIdFor(input.header, newHeaders);
            if (!w.writer.indexed && !newFiles.has(w.writer)) {
              this.sql.insertFile.run(w.writer.fileId, w.writer.streamId, w.writer.relPath, w.writer.createdMs);
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
            this.sql.insertFragment.run(row);
            done.push([w.pending, fromRow(row)]);
          } catch (err) {
            if (!this.db.inTransaction) throw err; // the whole transaction is gone
            w.pending.reject(err); // e.g. a duplicate seq: only this fragment fails
          }
        }
      })();
    } catch (err) {
      for (const w of written) w.pending.reject(err);
      for (const w of written) this.retire(w.writer); // their unindexed tails are left for recovery
      this.log.warn({ err }, 'indexing a fragment batch failed');
      return;
    }
    for (const [hash, { id, header }] of newHeaders) {
      this.headerIds.set(hash, id);
      this.headers.set(id, header);
    }
    for (const writer of newFiles) writer.indexed = true;
    this.counters.fragments += done.length;
    for (const [pending, stored] of done) pending.resolve(stored);
  }

  private headerIdFor(header: FragmentHeader, batch: Map<string, { id: number; header: FragmentHeader }>): number {
    const hash = headerHash(header);
    const known = this.headerIds.get(hash) ?? batch.get(hash)?.id;
    if (known !== undefined) return known;
    const stored = this.sql.headerIdByHash.get(hash);
    if (stored !== undefined) {
      this.headerIds.set(hash, stored); // committed earlier, so safe to cache now
      return stored;
    }
    // Cached only once the transaction commits (the id is not real before).
    const copy = { ebml: Buffer.from(header.ebml), tracks: Buffer.from(header.tracks) };
    const id = Number(this.sql.insertHeader.run(hash, copy.ebml, copy.tracks).lastInsertRowid);
    batch.set(hash, { id, header: copy });
    return id;
  }

  // ---- data files -----------------------------------------------------------------------------

  private async writerFor(streamId: number): Promise<Writer> {
    const now = Date.now();
    const current = this.writers.get(streamId);
    if (current && current.size < this.fileMaxBytes && now - current.createdMs < this.fileMaxAgeMs) return current;
    if (current) this.retire(current);

    const fileId = this.nextFileId++;
    const dir = join(this.streamsDir, String(streamId));
    await mkdir(dir, { recursive: true });
    const dirsToSync = [this.streamsDir, dir]; // the stream folder's entry and the file's
    const relPath = filePath(streamId, fileId);
    const handle = await open(join(this.dataDir, relPath), 'wx');
    const writer: Writer = { streamId, fileId, relPath, handle, size: 0, createdMs: now, indexed: false, dirsToSync };
    this.writers.set(streamId, writer);
    return writer;
  }

  /** Stops appending to a file. Its handle is closed once the current batch or task is over. */
  private retire(writer: Writer): void {
    if (this.writers.get(writer.streamId) === writer) this.writers.delete(writer.streamId);
    if (!this.retired.includes(writer)) this.retired.push(writer);
  }

  /** Closes retired files; ones that never got indexed hold nothing committed and are deleted. */
  private async closeRetired(): Promise<void> {
    const retired = this.retired;
    this.retired = [];
    await Promise.all(
      retired.map(async (writer) => {
        try {
          await writer.handle.close();
          if (!writer.indexed) await unlink(join(this.dataDir, writer.relPath));
        } catch (err) {
          this.log.warn({ err, file: writer.relPath }, 'could not release a data file');
        }
      }),
    );
  }

  // ---- retention and deletion -----------------------------------------------------------------

  private async sweepNow(now: number): Promise<SweepResult> {
    const gone: number[] = [];
    const expired: FileRow[] = [];
    for (const streamId of this.sql.streamsWithFiles.all()) {
      const retention = this.retentionMs(streamId);
      if (retention === undefined) {
        gone.push(streamId);
        continue;
      }
      const cutoff = now - (retention === 0 ? this.liveBufferMs : retention);
      const current = this.writers.get(streamId);
      // Oldest first; stop at the first file still holding unexpired data.
      for (const file of this.sql.filesOfStream.all(streamId)) {
        const isCurrent = file.id === current?.fileId;
        const newest = this.sql.newestInFile.get(file.id) ?? null;
        const keep = newest === null ? isCurrent : newest >= cutoff;
        if (keep) break;
        expired.push(file);
        if (current && isCurrent) this.retire(current); // rotate first: it is deleted below
      }
    }

    let fragmentsDeleted = 0;
    if (expired.length > 0) {
      this.db.transaction(() => {
        for (const file of expired) {
          fragmentsDeleted += this.sql.deleteFileFragments.run(file.id).changes;
          this.sql.deleteFile.run(file.id);
        }
      })();
      await this.closeRetired();
      await Promise.all(
        expired.map(async (file) => {
          this.readHandles.invalidate(file.id);
          await rm(join(this.dataDir, file.path), { force: true });
        }),
      );
    }
    const removed = await this.removeStreams(gone);
    const result = {
      filesDeleted: expired.length + removed.filesDeleted,
      fragmentsDeleted: fragmentsDeleted + removed.fragmentsDeleted,
    };
    if (result.filesDeleted > 0) this.log.info(result, 'retention sweep');
    return result;
  }

  /** Deletes streams' index rows (one transaction), then their folders. Runs inside a task. */
  private async removeStreams(streamIds: number[]): Promise<SweepResult> {
    if (streamIds.length === 0) return { filesDeleted: 0, fragmentsDeleted: 0 };
    const files: FileRow[] = [];
    let fragmentsDeleted = 0;
    for (const streamId of streamIds) {
      const writer = this.writers.get(streamId);
      if (writer) this.retire(writer);
    }
    this.db.transaction(() => {
      for (const streamId of streamIds) {
        files.push(...this.sql.filesOfStream.all(streamId));
        fragmentsDeleted += this.sql.deleteStreamFragments.run(streamId).changes;
        this.sql.deleteStreamFiles.run(streamId);
        // A deleted stream's data key goes too: whatever of its data survives on disk is unreadable.
        this.sql.deleteStreamKeys.run(streamId);
      }
    })();
    for (const streamId of streamIds) this.dataKeys?.forget(streamId);
    await this.closeRetired();
    for (const file of files) this.readHandles.invalidate(file.id);
    await Promise.all(
      streamIds.map((id) => rm(join(this.streamsDir, String(id)), { recursive: true, force: true })),
    );
    return { filesDeleted: files.length, fragmentsDeleted };
  }

  // ---- crash recovery -------------------------------------------------------------------------

  /**
   * Makes disk and index agree: truncates torn tails past the last indexed fragment, drops index
   * rows whose data is missing, and deletes data files the index does not reference.
   */
  private async recover(): Promise<void> {
    await mkdir(this.streamsDir, { recursive: true });
    await this.syncDir(this.dataDir);
    const known = new Set<string>();
    const files = this.db.prepare<[], FileRow>('SELECT id, stream_id, path FROM files ORDER BY id').all();
    for (const file of files) {
      const path = join(this.dataDir, file.path);
      let size: number;
      try {
        size = (await stat(path)).size;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        const lost = this.dropFile(file.id);
        this.log.warn({ file: file.path, fragments: lost }, 'data file is missing; dropped its fragments');
        continue;
      }
      let end = this.sql.fileEnd.get(file.id);
      if (end !== undefined && size < end) {
        const lost = this.sql.deleteFragmentsPastEnd.run(file.id, size).changes;
        this.log.warn({ file: file.path, fragments: lost }, 'data file is shorter than its index; dropped its end');
        end = this.sql.fileEnd.get(file.id);
      }
      if (end === undefined) {
        this.dropFile(file.id);
        await unlink(path);
        this.log.info({ file: file.path }, 'deleted a data file without indexed fragments');
        continue;
      }
      known.add(path);
      if (size > end) {
        const handle = await open(path, 'r+');
        try {
          await handle.truncate(end);
          await handle.datasync();
        } finally {
          await handle.close();
        }
        this.log.info({ file: file.path, bytes: size - end }, 'truncated a torn tail');
      }
    }
    await this.removeStrayFiles(known);
  }

  private dropFile(fileId: number): number {
    return this.db.transaction(() => {
      const n = this.sql.deleteFileFragments.run(fileId).changes;
      this.sql.deleteFile.run(fileId);
      return n;
    })();
  }

  /** Deletes `.frag` files the index does not know, and stream folders left empty. */
  private async removeStrayFiles(known: Set<string>): Promise<void> {
    for (const entry of await readdir(this.streamsDir, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      const dir = join(this.streamsDir, entry.name);
      const names = await readdir(dir);
      let left = names.length;
      for (const name of names) {
        const path = join(dir, name);
        if (!name.endsWith('.frag') || known.has(path)) continue;
        await unlink(path);
        left--;
        this.log.info({ file: path }, 'deleted an unindexed data file');
      }
      if (left === 0) await rmdir(dir);
    }
  }
}

function filePath(streamId: number, fileId: number): string {
  return `streams/${streamId}/${fileId}.frag`;
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

function headerHash(header: FragmentHeader): string {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.ebml.length);
  return createHash('sha1').update(length).update(header.ebml).update(header.tracks).digest('hex');
}

/** Writes all chunks at position, with one writev unless the kernel writes short. */
async function writeAll(handle: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let buffers = chunks.filter((c) => c.length > 0);
  while (buffers.length > 0) {
    const { bytesWritten } = await handle.writev(buffers, position);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    position += bytesWritten;
    let skip = bytesWritten;
    while (buffers.length > 0 && skip >= buffers[0]!.length) skip -= buffers.shift()!.length;
    if (skip > 0) buffers[0] = buffers[0]!.subarray(skip);
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

function fromRow(row: FragmentRow): StoredFragment {
  return {
    seq: row.seq,
    fragmentNumber: formatFragmentNumber(row.seq),
    streamId: row.stream_id,
    producerTimestampMs: row.producer_ms,
    serverTimestampMs: row.server_ms,
    durationMs: row.duration_ms,
    sizeBytes: row.size,
    headerId: row.header_id,
    fileId: row.file_id,
    offset: row.offset,
    length: row.length,
    ...(row.key_id === null ? {} : { keyId: row.key_id }),
  };
}

function toStored(row: FragmentRow | undefined): StoredFragment | undefined {
  return row ? fromRow(row) : undefined;
}
