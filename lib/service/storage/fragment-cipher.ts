/**
 * Encryption at rest of fragment data: AES-256-GCM with a per-stream data key, a random 96-bit
 * nonce per fragment, and the stream id and fragment sequence number as associated data (a
 * fragment copied to another place in the store fails to open). On disk a fragment is
 * nonce (12) ‖ ciphertext ‖ tag (16). Data keys live in the `data_keys` table, wrapped by a master
 * key of the keyring (keyring.ts) named after the stream's KmsKeyId.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type Database from 'better-sqlite3';
import { type Keyring, keyNameOf } from './keyring.js';

export const SEAL_OVERHEAD = 12 + 16;

/** Stored data that cannot be served: changed or damaged on disk, or sealed with a key not at hand. */
export class IntegrityError extends Error {
  override readonly name = 'IntegrityError';
}

export interface DataKey {
  id: number;
  key: Buffer;
}

interface DataKeyRow {
  id: number;
  stream_id: number;
  key_name: string;
  key_version: number;
  wrapped: Buffer;
}

/** The associated data of a fragment: its stream id and sequence number. */
export const aad = (streamId: number, seq: number): Buffer => {
  const b = Buffer.alloc(16);
  b.writeBigUInt64BE(BigInt(streamId), 0);
  b.writeBigUInt64BE(BigInt(seq), 8);
  return b;
};

/**
 * Plaintext is fed to the cipher in pieces of this size: a fragment arrives as many small slices
 * (frames cut by network reads), and AES-GCM per call on a few KiB runs at a third of its speed
 * on 16 KiB, while one call on a whole fragment is slower again (its output misses the caches).
 */
const PIECE_BYTES = 16 * 1024;
const stage = Buffer.allocUnsafe(PIECE_BYTES);

/** The chunks of one fragment, encrypted: nonce, ciphertext pieces, tag. */
export function sealChunks(key: Buffer, streamId: number, seq: number, chunks: readonly Buffer[]): Buffer[] {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad(streamId, seq));
  const out = [nonce];
  let staged = 0;
  for (const c of chunks) {
    let at = 0;
    if (staged === 0) for (; at + PIECE_BYTES <= c.length; at += PIECE_BYTES) out.push(cipher.update(c.subarray(at, at + PIECE_BYTES)));
    while (at < c.length) {
      const n = Math.min(PIECE_BYTES - staged, c.length - at);
      c.copy(stage, staged, at, at + n);
      staged += n;
      at += n;
      if (staged === PIECE_BYTES) {
        out.push(cipher.update(stage));
        staged = 0;
      }
    }
  }
  if (staged > 0) out.push(cipher.update(stage.subarray(0, staged)));
  const last = cipher.final();
  if (last.length > 0) out.push(last);
  out.push(cipher.getAuthTag());
  return out;
}

/** The plaintext of a sealed fragment; throws if a single byte was changed. */
export function openSealed(key: Buffer, streamId: number, seq: number, sealed: Buffer): Buffer {
  if (sealed.length < SEAL_OVERHEAD) throw new Error('sealed fragment is shorter than its nonce and tag');
  const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, 12));
  decipher.setAAD(aad(streamId, seq));
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  const body = decipher.update(sealed.subarray(12, sealed.length - 16));
  decipher.final(); // throws "Unsupported state or unable to authenticate data" on any change
  return body;
}

/** Per-stream data keys: made on a stream's first fragment, unwrapped once and kept in memory. */
export class DataKeys {
  private readonly cache = new Map<number, Buffer>();
  private readonly byStream = new Map<number, DataKey>();
  private readonly sql: {
    forStream: Database.Statement<[number], DataKeyRow>;
    byId: Database.Statement<[number], DataKeyRow>;
    insert: Database.Statement<[number, string, number, Buffer, number]>;
    all: Database.Statement<[], DataKeyRow>;
    rewrap: Database.Statement<[string, number, Buffer, number]>;
  };

  constructor(
    private readonly db: Database.Database,
    private readonly keyring: Keyring,
    /** The KmsKeyId of a stream (undefined: the default key). */
    private readonly kmsKeyIdOf: (streamId: number) => string | undefined,
  ) {
    const cols = 'id, stream_id, key_name, key_version, wrapped';
    this.sql = {
      forStream: db.prepare(`SELECT ${cols} FROM data_keys WHERE stream_id = ? ORDER BY id DESC LIMIT 1`),
      byId: db.prepare(`SELECT ${cols} FROM data_keys WHERE id = ?`),
      insert: db.prepare('INSERT INTO data_keys (stream_id, key_name, key_version, wrapped, created_ms) VALUES (?, ?, ?, ?, ?)'),
      all: db.prepare(`SELECT ${cols} FROM data_keys ORDER BY id`),
      rewrap: db.prepare('UPDATE data_keys SET key_name = ?, key_version = ?, wrapped = ? WHERE id = ?'),
    };
  }

  /** The key this stream's new fragments are sealed with (made and stored on first use). */
  keyFor(streamId: number): DataKey {
    const known = this.byStream.get(streamId);
    if (known) return known;
    const row = this.sql.forStream.get(streamId);
    let dk: DataKey;
    if (row) {
      dk = { id: row.id, key: this.unwrapRow(row) };
    } else {
      const key = randomBytes(32);
      const w = this.keyring.wrap(key, keyNameOf(this.kmsKeyIdOf(streamId)));
      const id = Number(this.sql.insert.run(streamId, w.name, w.version, w.wrapped, Date.now()).lastInsertRowid);
      dk = { id, key };
    }
    this.cache.set(dk.id, dk.key);
    this.byStream.set(streamId, dk);
    return dk;
  }

  /** The data key with this id (for reading). */
  key(id: number): Buffer {
    let key = this.cache.get(id);
    if (!key) {
      const row = this.sql.byId.get(id);
      if (!row) throw new Error(`data key ${id} is missing from the index`);
      key = this.unwrapRow(row);
      this.cache.set(id, key);
    }
    return key;
  }

  /** Forgets a deleted stream's keys (their rows go with the stream). */
  forget(streamId: number): void {
    const dk = this.byStream.get(streamId);
    if (dk) this.cache.delete(dk.id);
    this.byStream.delete(streamId);
  }

  /**
   * Rewraps every data key not wrapped by the newest version of its master key, in one
   * transaction (a crash leaves all old or all new wrappings, both readable). Returns the count.
   */
  rewrapAll(): number {
    const rows = this.sql.all.all();
    const updates: [string, number, Buffer, number][] = [];
    for (const row of rows) {
      const active = this.keyring.active(row.key_name);
      if (active.version === row.key_version && active.name === row.key_name) continue;
      const w = this.keyring.wrap(this.unwrapRow(row), row.key_name);
      updates.push([w.name, w.version, w.wrapped, row.id]);
    }
    this.db.transaction(() => {
      for (const u of updates) this.sql.rewrap.run(...u);
    })();
    return updates.length;
  }

  private unwrapRow(row: DataKeyRow): Buffer {
    return this.keyring.unwrap({ name: row.key_name, version: row.key_version, wrapped: row.wrapped });
  }
}
