import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type Database from 'better-sqlite3';
import { expect } from 'vitest';
import { openDatabase } from '../../../lib/service/storage/database.js';
import {
  FragmentStore,
  type FragmentHeader,
  type FragmentInput,
  type FragmentStoreOptions,
  type StorageLog,
} from '../../../lib/service/storage/fragment-store.js';

export const HOUR = 3_600_000;

export const HEADER: FragmentHeader = {
  ebml: Buffer.from('1a45dfa3a34286810142f7810142f2810442f381084282886d6174726f736b61', 'hex'),
  tracks: Buffer.from('1549a966' + '00'.repeat(16) + '1654ae6b' + 'ab'.repeat(24), 'hex'),
};

export const OTHER_HEADER: FragmentHeader = {
  ebml: HEADER.ebml,
  tracks: Buffer.from('1549a966' + '11'.repeat(16) + '1654ae6b' + 'cd'.repeat(24), 'hex'),
};

export async function makeTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'openkvs-storage-'));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

export interface Opened {
  db: Database.Database;
  store: FragmentStore;
}

/** Opens a store in dir with its own database connection; retention defaults to one hour. */
export async function openStore(dir: string, opts: Partial<FragmentStoreOptions> = {}): Promise<Opened> {
  const db = openDatabase(join(dir, 'index.db'));
  const store = await FragmentStore.open({ dataDir: dir, db, retentionMs: () => HOUR, ...opts });
  return { db, store };
}

export async function closeAll(opened: Opened): Promise<void> {
  await opened.store.close();
  opened.db.close();
}

/** Deterministic pseudo-random bytes. */
export function payload(seed: number, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Splits bytes into a few chunks (as the ingest path hands them over). */
export function chunked(bytes: Buffer, parts = 3): Buffer[] {
  const chunks: Buffer[] = [];
  const step = Math.ceil(bytes.length / parts);
  for (let at = 0; at < bytes.length; at += step) chunks.push(bytes.subarray(at, at + step));
  return chunks;
}

export interface MadeFragment {
  input: FragmentInput;
  bytes: Buffer;
}

/** A fragment input with fresh seq and deterministic bytes. */
export function makeFragment(
  store: FragmentStore,
  streamId: number,
  over: Partial<Omit<FragmentInput, 'chunks'>> & { size?: number } = {},
): MadeFragment {
  const seq = over.seq ?? store.nextSeq();
  const bytes = payload(seq % 1_000_003, over.size ?? 1000 + (seq % 5000));
  const now = Date.now();
  const input: FragmentInput = {
    streamId,
    seq,
    producerTimestampMs: over.producerTimestampMs ?? now,
    serverTimestampMs: over.serverTimestampMs ?? now,
    durationMs: over.durationMs ?? 2000,
    header: over.header ?? HEADER,
    chunks: chunked(bytes),
    durable: over.durable ?? true,
  };
  return { input, bytes };
}

export function sha1(bytes: Buffer): string {
  return createHash('sha1').update(bytes).digest('hex');
}

/** Relative paths of every file under `${dir}/streams`. */
export async function dataFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  const streams = join(dir, 'streams');
  for (const s of await readdir(streams)) {
    for (const f of await readdir(join(streams, s))) out.push(`streams/${s}/${f}`);
  }
  return out.sort();
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export interface LogEntry {
  level: 'error' | 'warn' | 'info';
  obj: object;
  msg: string;
}

export function memoryLog(): StorageLog & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return {
    entries,
    error: (obj, msg) => entries.push({ level: 'error', obj, msg }),
    warn: (obj, msg) => entries.push({ level: 'warn', obj, msg }),
    info: (obj, msg) => entries.push({ level: 'info', obj, msg }),
  };
}

/** Every data file ends exactly where its last indexed fragment ends, and every file on disk is indexed. */
export async function expectConsistent(dir: string, opened: Opened): Promise<void> {
  const rows = opened.db
    .prepare<[], { path: string; end: number | null }>(
      'SELECT path, (SELECT MAX(offset + length) FROM fragments WHERE file_id = files.id) AS end FROM files',
    )
    .all();
  for (const row of rows) {
    expect(row.end).not.toBeNull();
    expect(await fileSize(join(dir, row.path))).toBe(row.end);
  }
  expect(await dataFiles(dir)).toEqual(rows.map((r) => r.path).sort());
}
