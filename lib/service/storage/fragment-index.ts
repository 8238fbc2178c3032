import { createHash } from 'node:crypto';
import type Database from 'better-sqlite3';
import { formatFragmentNumber } from './fragment-number.js';

/** The MKV stream header a fragment belongs to: EBML header element bytes; Info + Tracks element bytes. */
export interface FragmentHeader {
  ebml: Buffer;
  tracks: Buffer;
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

/** A row of the `fragments` table. */
export interface FragmentRow {
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

/** A row of the `files` table: one data file; path is relative to the data folder. */
export interface FileRow {
  id: number;
  stream_id: number;
  path: string;
}

/** Headers first stored in the current transaction, by hash: cached only once it commits. */
export type NewHeaders = Map<string, { id: number; header: FragmentHeader }>;

interface KindQueries {
  atOrBefore: Database.Statement<[number, number], FragmentRow>;
  after: Database.Statement<[number, number], FragmentRow>;
  range: Database.Statement<[number, number, number, number, number], FragmentRow>;
}

const COLUMNS = 'seq, stream_id, producer_ms, server_ms, duration_ms, size, header_id, file_id, offset, length, key_id';

/**
 * The SQLite index of stored fragments: which data file, offset and length hold each fragment,
 * the MKV stream headers fragments belong to, and the data files of every stream. It reads and
 * writes the database only, never the data files.
 */
export class FragmentIndex {
  private readonly headerIds = new Map<string, number>();
  private readonly headers = new Map<number, FragmentHeader>();
  /**
   * Per stream, a producer timestamp no stored fragment is newer than (the newest seen; deleting
   * fragments leaves it an upper bound, which is all findByProducerTimestamp needs).
   */
  private readonly producerMsBound = new Map<number, number>();
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
    maxProducerMs: Database.Statement<[number], number | null>;
    maxSeq: Database.Statement<[], number | null>;
    maxFileId: Database.Statement<[], number | null>;
    allFiles: Database.Statement<[], FileRow>;
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

  /** db: from openDatabase; the index does not close it. */
  constructor(private readonly db: Database.Database) {
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
      maxProducerMs: db.prepare<[number], number | null>('SELECT MAX(producer_ms) FROM fragments WHERE stream_id = ?').pluck(),
      maxSeq: db.prepare<[], number | null>('SELECT MAX(seq) FROM fragments').pluck(),
      maxFileId: db.prepare<[], number | null>('SELECT MAX(id) FROM files').pluck(),
      allFiles: db.prepare('SELECT id, stream_id, path FROM files ORDER BY id'),
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

  /** Runs fn in one transaction (a savepoint when one is already open). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  get inTransaction(): boolean {
    return this.db.inTransaction;
  }

  // ---- fragments --------------------------------------------------------------------------------

  /** The highest seq ever indexed and still present, or -1. */
  maxSeq(): number {
    return this.sql.maxSeq.get() ?? -1;
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
    // Live media is newer than everything stored: no query for it.
    let bound = this.producerMsBound.get(streamId);
    if (bound === undefined) {
      bound = this.sql.maxProducerMs.get(streamId) ?? -Infinity;
      this.producerMsBound.set(streamId, bound);
    }
    if (producerTimestampMs > bound) return undefined;
    return toStored(this.sql.byProducerTimestamp.get(streamId, producerTimestampMs));
  }

  insertFragment(row: FragmentRow): StoredFragment {
    this.sql.insertFragment.run(row);
    const bound = this.producerMsBound.get(row.stream_id);
    if (bound !== undefined && row.producer_ms > bound) this.producerMsBound.set(row.stream_id, row.producer_ms);
    return fromRow(row);
  }

  // ---- stream headers ---------------------------------------------------------------------------

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

  /** The header's id, storing it (inside the caller's transaction) and noting it in batch when new. */
  headerIdFor(header: FragmentHeader, batch: NewHeaders): number {
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

  /** Caches the headers of a transaction that has committed. */
  headersCommitted(batch: NewHeaders): void {
    for (const [hash, { id, header }] of batch) {
      this.headerIds.set(hash, id);
      this.headers.set(id, header);
    }
  }

  // ---- data files -------------------------------------------------------------------------------

  /** The highest data-file id indexed, or 0. */
  maxFileId(): number {
    return this.sql.maxFileId.get() ?? 0;
  }

  insertFile(fileId: number, streamId: number, path: string, createdMs: number): void {
    this.sql.insertFile.run(fileId, streamId, path, createdMs);
  }

  allFiles(): FileRow[] {
    return this.sql.allFiles.all();
  }

  streamsWithFiles(): number[] {
    return this.sql.streamsWithFiles.all();
  }

  /** Oldest first. */
  filesOfStream(streamId: number): FileRow[] {
    return this.sql.filesOfStream.all(streamId);
  }

  /** The newest server timestamp of the file's fragments; null when it has none. */
  newestInFile(fileId: number): number | null {
    return this.sql.newestInFile.get(fileId) ?? null;
  }

  /** Where the file's last indexed fragment ends; undefined when it has none. */
  fileEnd(fileId: number): number | undefined {
    return this.sql.fileEnd.get(fileId);
  }

  /** Drops the file's fragments that end past size; returns how many. */
  dropFragmentsPastEnd(fileId: number, size: number): number {
    return this.sql.deleteFragmentsPastEnd.run(fileId, size).changes;
  }

  /** Drops files and their fragments in one transaction; returns how many fragments. */
  dropFiles(fileIds: number[]): number {
    return this.transaction(() => {
      let fragments = 0;
      for (const fileId of fileIds) {
        fragments += this.sql.deleteFileFragments.run(fileId).changes;
        this.sql.deleteFile.run(fileId);
      }
      return fragments;
    });
  }

  /** Drops streams' fragments, files and data keys in one transaction; returns the files they had. */
  dropStreams(streamIds: number[]): { files: FileRow[]; fragmentsDeleted: number } {
    const files: FileRow[] = [];
    let fragmentsDeleted = 0;
    this.transaction(() => {
      for (const streamId of streamIds) {
        files.push(...this.sql.filesOfStream.all(streamId));
        fragmentsDeleted += this.sql.deleteStreamFragments.run(streamId).changes;
        this.sql.deleteStreamFiles.run(streamId);
        // A deleted stream's data key goes too: whatever of its data survives on disk is unreadable.
        this.sql.deleteStreamKeys.run(streamId);
      }
    });
    return { files, fragmentsDeleted };
  }
}

function headerHash(header: FragmentHeader): string {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(header.ebml.length);
  return createHash('sha1').update(length).update(header.ebml).update(header.tracks).digest('hex');
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
