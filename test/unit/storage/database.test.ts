import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SCHEMA_VERSION, openDatabase } from '../../../lib/service/storage/database.js';
import { makeTempDir, removeDir } from './fixtures.js';

describe('openDatabase', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  it('configures WAL, full sync, foreign keys and a busy timeout', () => {
    const db = openDatabase(join(dir, 'sub', 'index.db'));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2);
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(Number(db.pragma('busy_timeout', { simple: true }))).toBeGreaterThan(0);
    db.close();
  });

  it('creates the schema and records its version; reopening is a no-op', () => {
    const file = join(dir, 'index.db');
    const db = openDatabase(file);
    expect(db.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    const tables = db
      .prepare<[], string>("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
      .pluck()
      .all();
    expect(tables).toEqual(expect.arrayContaining(['files', 'fragments', 'headers', 'streams']));
    const indexes = db
      .prepare<[], string>("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'fragments'")
      .pluck()
      .all()
      .join('\n');
    expect(indexes).toContain('(stream_id, seq)');
    expect(indexes).toContain('(stream_id, producer_ms)');
    expect(indexes).toContain('(stream_id, server_ms)');
    expect(indexes).toContain('(file_id');
    db.prepare(
      `INSERT INTO streams (name, arn, creation_ms, version, status, kms_key_id, retention_hours)
       VALUES ('s', 'arn:s', 1, 'v1', 'ACTIVE', 'k', 0)`,
    ).run();
    db.close();

    const again = openDatabase(file);
    expect(again.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(again.prepare('SELECT name, tags FROM streams').get()).toEqual({ name: 's', tags: '{}' });
    again.close();
  });

  it('refuses a database from a newer version', () => {
    const file = join(dir, 'index.db');
    const db = openDatabase(file);
    db.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => openDatabase(file)).toThrow(/newer/);
  });

  it('lets statements of closed databases be garbage-collected without aborting the process', () => {
    // better-sqlite3 12 on Node 24 aborted ("Assertion failed: (env) != nullptr" in
    // RemoveEnvironmentCleanupHook) when a collected Statement was destroyed, within a fraction
    // of a second of churn like this; a server that opens and closes its index hit it at exit.
    const script = `
      const { openDatabase } = await import(${JSON.stringify(join(process.cwd(), 'dist/lib/service/storage/database.js'))});
      const end = Date.now() + 1500;
      let rounds = 0;
      while (Date.now() < end) {
        const db = openDatabase(${JSON.stringify(join(dir, 'churn.db'))});
        for (let i = 0; i < 50; i++) db.prepare('SELECT count(*) FROM streams WHERE name = ?').get('s' + i);
        db.close();
        const garbage = Array.from({ length: 5000 }, (_, i) => ({ i, s: 'x'.repeat(40) }));
        await new Promise((resolve) => setImmediate(resolve, garbage));
        rounds++;
      }
      console.log('rounds', rounds);
    `;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 30_000 });
    expect(child.stderr).not.toContain('Assertion failed');
    expect(child.signal).toBeNull();
    expect(child.status).toBe(0);
    expect(child.stdout).toMatch(/rounds [1-9]/);
  });
});
