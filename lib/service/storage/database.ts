import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

/**
 * Schema migrations, applied in order. Migration `i` brings the database from
 * `user_version = i` to `user_version = i + 1`. Never edit a released migration: append a new one.
 */
const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE streams (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    arn TEXT NOT NULL UNIQUE,
    creation_ms INTEGER NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    device_name TEXT,
    media_type TEXT,
    kms_key_id TEXT NOT NULL,
    retention_hours INTEGER NOT NULL,
    tags TEXT NOT NULL DEFAULT '{}'
  );

  CREATE TABLE headers (
    id INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    ebml BLOB NOT NULL,
    tracks BLOB NOT NULL
  );

  CREATE TABLE files (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    created_ms INTEGER NOT NULL
  );
  CREATE INDEX files_stream ON files (stream_id);

  CREATE TABLE fragments (
    seq INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    producer_ms INTEGER NOT NULL,
    server_ms INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL,
    size INTEGER NOT NULL,
    header_id INTEGER NOT NULL,
    file_id INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL
  );
  CREATE INDEX fragments_stream_seq ON fragments (stream_id, seq);
  CREATE INDEX fragments_stream_producer ON fragments (stream_id, producer_ms);
  CREATE INDEX fragments_stream_server ON fragments (stream_id, server_ms);
  -- Per data file: its end (recovery) and its newest server timestamp (retention) are index seeks.
  CREATE INDEX fragments_file_offset ON fragments (file_id, offset);
  CREATE INDEX fragments_file_time ON fragments (file_id, server_ms);
  `,
  `
  -- Encryption at rest: per-stream data keys, wrapped by a master key of the keyring.
  CREATE TABLE data_keys (
    id INTEGER PRIMARY KEY,
    stream_id INTEGER NOT NULL,
    key_name TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    wrapped BLOB NOT NULL,
    created_ms INTEGER NOT NULL
  );
  CREATE INDEX data_keys_stream ON data_keys (stream_id);
  -- The data key a fragment is sealed with; NULL: stored in the clear (written before encryption).
  ALTER TABLE fragments ADD COLUMN key_id INTEGER;
  `,
  `
  -- Identities (lib/service/auth/identities.ts): secrets sealed by the keyring, tokens hashed.
  CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
  CREATE TABLE users (
    name TEXT PRIMARY KEY,
    access_key_id TEXT NOT NULL UNIQUE,
    secret BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    policy TEXT NOT NULL,
    created_ms INTEGER NOT NULL
  );
  CREATE TABLE sessions (
    access_key_id TEXT PRIMARY KEY,
    user_name TEXT NOT NULL,
    secret BLOB NOT NULL,
    key_version INTEGER NOT NULL,
    token_sha256 TEXT NOT NULL,
    policy TEXT,
    expires_ms INTEGER NOT NULL,
    created_ms INTEGER NOT NULL
  );
  CREATE INDEX sessions_user ON sessions (user_name);
  `,
];

/** The schema version this code expects (`PRAGMA user_version`). */
export const SCHEMA_VERSION = MIGRATIONS.length;

/**
 * Opens (creating if needed) the service database: WAL journal, fully synchronous commits,
 * foreign keys on, and all pending migrations applied.
 */
export function openDatabase(file: string): Database.Database {
  if (file !== ':memory:') mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

function migrate(db: Database.Database): void {
  const current = Number(db.pragma('user_version', { simple: true }));
  if (current > MIGRATIONS.length) {
    throw new Error(
      `database schema version ${current} is newer than this server supports (${MIGRATIONS.length})`,
    );
  }
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]!);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
