/**
 * The stream catalog: every stream's metadata, kept in the SQLite `streams` table and read
 * through a small in-memory cache by id (ingest looks a stream up for every fragment).
 *
 * All methods are synchronous except `delete`, so a check and the write that follows it (the
 * version guard, the duplicate-name check) cannot interleave with another request.
 *
 * Versions: every metadata update (UpdateStream, UpdateDataRetention) regenerates the stream's
 * Version, as the service documents. Tag changes do not: tags are resource tagging, also reachable
 * through the generic TagResource API, and leaving the Version alone means tagging a stream never
 * makes another client's CurrentVersion stale.
 */
import { randomInt } from 'node:crypto';
import type Database from 'better-sqlite3';
import { KvsApiError, invalidArgument, streamNotFound } from '../../errors.js';

export type StreamStatus = 'CREATING' | 'ACTIVE' | 'UPDATING' | 'DELETING';

/** A stream's metadata. Records handed out are frozen snapshots: a write makes a new one. */
export interface StreamRecord {
  id: number;
  name: string;
  arn: string;
  creationMs: number;
  version: string;
  status: StreamStatus;
  deviceName?: string;
  mediaType?: string;
  kmsKeyId: string;
  retentionHours: number;
  tags: Record<string, string>;
}

export interface NewStream {
  name: string;
  deviceName?: string | undefined;
  mediaType?: string | undefined;
  /** Defaults to the AWS-managed key, `arn:aws:kms:{region}:{account}:alias/aws/kinesisvideo`. */
  kmsKeyId?: string | undefined;
  retentionHours: number;
  tags?: Record<string, string> | undefined;
}

/** What UpdateStream and UpdateDataRetention may change; absent members are left as they are. */
export interface StreamUpdate {
  deviceName?: string | undefined;
  mediaType?: string | undefined;
  retentionHours?: number | undefined;
}

export interface StreamRef {
  StreamName?: string | undefined;
  StreamARN?: string | undefined;
}

export interface StreamPage {
  streams: StreamRecord[];
  /** Name of the last stream returned, when more streams match. */
  lastName?: string;
}

interface StreamRow {
  id: number;
  name: string;
  arn: string;
  creation_ms: number;
  version: string;
  status: StreamStatus;
  device_name: string | null;
  media_type: string | null;
  kms_key_id: string;
  retention_hours: number;
  tags: string;
}

const ALPHANUMERICS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A stream Version as the service makes them: 20 random mixed-case alphanumerics. */
export function newVersion(): string {
  let version = '';
  for (let i = 0; i < 20; i++) version += ALPHANUMERICS[randomInt(ALPHANUMERICS.length)];
  return version;
}

function toRecord(row: StreamRow): StreamRecord {
  const record: StreamRecord = {
    id: row.id,
    name: row.name,
    arn: row.arn,
    creationMs: row.creation_ms,
    version: row.version,
    status: row.status,
    kmsKeyId: row.kms_key_id,
    retentionHours: row.retention_hours,
    tags: Object.freeze(JSON.parse(row.tags) as Record<string, string>),
  };
  if (row.device_name !== null) record.deviceName = row.device_name;
  if (row.media_type !== null) record.mediaType = row.media_type;
  return Object.freeze(record);
}

/** Work done in the transaction that creates a stream, undone in memory if it rolls back. */
export interface CreateListener {
  created(stream: StreamRecord): void;
  rolledBack(streamId: number): void;
}

export class StreamCatalog {
  private readonly db: Database.Database;
  private readonly region: string;
  private readonly accountId: string;
  private readonly cache = new Map<number, StreamRecord>();
  private readonly deleteListeners: Array<(streamId: number) => void | Promise<void>> = [];
  private createListener: CreateListener | undefined;
  /** Creation times are kept unique so an old ARN can never match a re-created stream. */
  private lastCreationMs: number;

  private readonly selectById: Database.Statement<[number], StreamRow>;
  private readonly selectByName: Database.Statement<[string], StreamRow>;
  private readonly selectByArn: Database.Statement<[string], StreamRow>;
  private readonly selectAll: Database.Statement<[], StreamRow>;
  private readonly selectPage: Database.Statement<[string, string, number, string, number], StreamRow>;
  private readonly insert: Database.Statement<[string, string, number, string, string | null, string | null, string, number, string]>;

  constructor(db: Database.Database, opts: { region: string; accountId: string }) {
    this.db = db;
    this.region = opts.region;
    this.accountId = opts.accountId;
    this.selectById = db.prepare('SELECT * FROM streams WHERE id = ?');
    this.selectByName = db.prepare('SELECT * FROM streams WHERE name = ?');
    this.selectByArn = db.prepare('SELECT * FROM streams WHERE arn = ?');
    this.selectAll = db.prepare('SELECT * FROM streams ORDER BY name');
    // (after, prefix, prefix length, prefix, limit): names after `after` that begin with `prefix`.
    this.selectPage = db.prepare(
      'SELECT * FROM streams WHERE name > ? AND (? = \'\' OR substr(name, 1, ?) = ?) ORDER BY name LIMIT ?',
    );
    this.insert = db.prepare(
      `INSERT INTO streams (name, arn, creation_ms, version, status, device_name, media_type, kms_key_id, retention_hours, tags)
       VALUES (?, ?, ?, ?, 'ACTIVE', ?, ?, ?, ?, ?)`,
    );
    // A delete interrupted by a crash left its row DELETING; finish it (its data is already unreachable).
    db.prepare("DELETE FROM streams WHERE status = 'DELETING'").run();
    const newest = db.prepare('SELECT max(creation_ms) AS ms FROM streams').get() as { ms: number | null };
    this.lastCreationMs = newest.ms ?? 0;
  }

  byId(id: number): StreamRecord | undefined {
    const cached = this.cache.get(id);
    if (cached) return cached;
    const row = this.selectById.get(id);
    if (!row) return undefined;
    const record = toRecord(row);
    this.cache.set(id, record);
    return record;
  }

  byName(name: string): StreamRecord | undefined {
    const row = this.selectByName.get(name);
    return row && toRecord(row);
  }

  byArn(arn: string): StreamRecord | undefined {
    const row = this.selectByArn.get(arn);
    return row && toRecord(row);
  }

  /**
   * The live stream a request names by StreamName or StreamARN (at least one; when both are
   * given they must name the same stream). A stream being deleted is no longer found.
   */
  resolve(ref: StreamRef): StreamRecord {
    const { StreamName: name, StreamARN: arn } = ref;
    if (name === undefined && arn === undefined) {
      throw invalidArgument('Either StreamName or StreamARN must be specified.');
    }
    if (name !== undefined && arn !== undefined && arn.split('/')[1] !== name) {
      throw invalidArgument(`StreamName ${name} and StreamARN ${arn} do not refer to the same stream.`);
    }
    const stream = arn !== undefined ? this.byArn(arn) : this.byName(name!);
    if (stream === undefined || stream.status === 'DELETING') throw streamNotFound();
    return stream;
  }

  /**
   * Registers work done in the transaction that creates a stream (e.g. making its data key), so
   * that the stream and what it needs are committed together; if it throws, there is no stream.
   */
  onCreate(listener: CreateListener): void {
    this.createListener = listener;
  }

  /** Registers work to run (and be awaited) when a stream is deleted, e.g. dropping its data. */
  onDelete(listener: (streamId: number) => void | Promise<void>): void {
    this.deleteListeners.push(listener);
  }

  /** All streams, ordered by name. */
  list(): StreamRecord[] {
    return this.selectAll.all().map(toRecord);
  }

  /** Up to `limit` streams whose names begin with `prefix` and sort after `after`, by name. */
  listPage(opts: { prefix?: string | undefined; after?: string | undefined; limit: number }): StreamPage {
    const prefix = opts.prefix ?? '';
    const rows = this.selectPage.all(opts.after ?? '', prefix, prefix.length, prefix, opts.limit + 1);
    const streams = rows.slice(0, opts.limit).map(toRecord);
    return rows.length > opts.limit ? { streams, lastName: streams[streams.length - 1]!.name } : { streams };
  }

  /** Creates an ACTIVE stream; a name already in use gives ResourceInUseException. */
  create(input: NewStream): StreamRecord {
    if (this.selectByName.get(input.name)) {
      throw new KvsApiError('ResourceInUseException', `The stream ${input.name} already exists.`);
    }
    const creationMs = Math.max(Date.now(), this.lastCreationMs + 1);
    const arn = `arn:aws:kinesisvideo:${this.region}:${this.accountId}:stream/${input.name}/${creationMs}`;
    const kmsKeyId = input.kmsKeyId ?? `arn:aws:kms:${this.region}:${this.accountId}:alias/aws/kinesisvideo`;
    let created: StreamRecord | undefined;
    const insert = this.db.transaction(() => {
      const { lastInsertRowid } = this.insert.run(
        input.name,
        arn,
        creationMs,
        newVersion(),
        input.deviceName ?? null,
        input.mediaType ?? null,
        kmsKeyId,
        input.retentionHours,
        JSON.stringify(input.tags ?? {}),
      );
      created = this.byId(Number(lastInsertRowid))!;
      this.createListener?.created(created);
      return created;
    });
    let record: StreamRecord;
    try {
      record = insert();
    } catch (err) {
      // Rolled back: the id may be given to the next stream; forget what was cached under it.
      if (created) {
        this.cache.delete(created.id);
        this.createListener?.rolledBack(created.id);
      }
      throw err;
    }
    this.lastCreationMs = creationMs;
    return record;
  }

  /**
   * Applies an UpdateStream / UpdateDataRetention change if `expectedVersion` is the stream's
   * current Version (else VersionMismatchException), and gives the stream a new Version.
   */
  update(id: number, expectedVersion: string, changes: StreamUpdate): StreamRecord {
    const stream = this.activeStream(id);
    this.checkVersion(stream, expectedVersion);
    this.db
      .prepare('UPDATE streams SET device_name = ?, media_type = ?, retention_hours = ?, version = ? WHERE id = ?')
      .run(
        changes.deviceName ?? stream.deviceName ?? null,
        changes.mediaType ?? stream.mediaType ?? null,
        changes.retentionHours ?? stream.retentionHours,
        newVersion(),
        id,
      );
    this.cache.delete(id);
    return this.byId(id)!;
  }

  /** Replaces the stream's tags (the Version is kept, see the file comment). */
  setTags(id: number, tags: Record<string, string>): StreamRecord {
    this.activeStream(id);
    this.db.prepare('UPDATE streams SET tags = ? WHERE id = ?').run(JSON.stringify(tags), id);
    this.cache.delete(id);
    return this.byId(id)!;
  }

  /**
   * Deletes a stream: marks it DELETING (ingest and readers stop seeing it as live), awaits the
   * onDelete listeners, then removes its row, even if a listener failed (that error is rethrown).
   */
  async delete(id: number, expectedVersion?: string): Promise<void> {
    const stream = this.activeStream(id);
    if (expectedVersion !== undefined) this.checkVersion(stream, expectedVersion);
    this.db.prepare("UPDATE streams SET status = 'DELETING' WHERE id = ?").run(id);
    this.cache.delete(id);
    try {
      for (const listener of this.deleteListeners) await listener(id);
    } finally {
      this.db.prepare('DELETE FROM streams WHERE id = ?').run(id);
      this.cache.delete(id);
    }
  }

  private activeStream(id: number): StreamRecord {
    const stream = this.byId(id);
    if (stream === undefined || stream.status === 'DELETING') throw streamNotFound();
    if (stream.status !== 'ACTIVE') {
      throw new KvsApiError('ResourceInUseException', `The stream ${stream.name} is ${stream.status}, not ACTIVE.`);
    }
    return stream;
  }

  private checkVersion(stream: StreamRecord, expectedVersion: string): void {
    if (stream.version !== expectedVersion) {
      throw new KvsApiError(
        'VersionMismatchException',
        `The stream version ${expectedVersion} does not match the current version of stream ${stream.name}.`,
      );
    }
  }
}
