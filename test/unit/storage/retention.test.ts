import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { StoredFragment } from '../../../lib/service/storage/fragment-store.js';
import {
  HOUR,
  closeAll,
  dataFiles,
  exists,
  makeFragment,
  makeTempDir,
  openStore,
  removeDir,
  type Opened,
} from './fixtures.js';

const MIN = 60_000;

describe('retention', () => {
  let dir: string;
  let opened: Opened;
  const retention = new Map<number, number | undefined>();
  const now = Date.now();

  async function reopen(opts: { fileMaxBytes?: number; liveBufferMs?: number } = {}): Promise<void> {
    if (opened) await closeAll(opened);
    opened = await openStore(dir, {
      retentionMs: (id) => (retention.has(id) ? retention.get(id) : HOUR),
      ...opts,
    });
  }

  /** Appends one fragment per server timestamp (minutes before now), in order. */
  async function appendAt(streamId: number, minutesAgo: number[]): Promise<StoredFragment[]> {
    const out: StoredFragment[] = [];
    for (const m of minutesAgo) {
      const t = now - m * MIN;
      const made = makeFragment(opened.store, streamId, { serverTimestampMs: t, producerTimestampMs: t });
      out.push(await opened.store.append(made.input));
    }
    return out;
  }

  beforeEach(async () => {
    dir = await makeTempDir();
    retention.clear();
    await reopen();
  });
  afterEach(async () => {
    await closeAll(opened);
    await removeDir(dir);
  });

  it('deletes whole rotated files whose newest fragment is past retention', async () => {
    await reopen({ fileMaxBytes: 1 }); // one fragment per file
    const old = await appendAt(1, [180, 150, 120]);
    const recent = await appendAt(1, [30, 10]);
    const result = await opened.store.sweep(now);
    expect(result).toEqual({ filesDeleted: 3, fragmentsDeleted: 3 });
    for (const f of old) {
      expect(opened.store.get(1, f.seq)).toBeUndefined();
      expect(await exists(join(dir, 'streams', '1', `${f.fileId}.frag`))).toBe(false);
    }
    expect(opened.store.first(1)?.seq).toBe(recent[0]!.seq);
    expect(await dataFiles(dir)).toEqual(recent.map((f) => `streams/1/${f.fileId}.frag`).sort());
    expect(await opened.store.sweep(now)).toEqual({ filesDeleted: 0, fragmentsDeleted: 0 });
  });

  it('never deletes a partially expired file', async () => {
    const all = await appendAt(1, [180, 120, 30]);
    expect(new Set(all.map((f) => f.fileId)).size).toBe(1);
    expect(await opened.store.sweep(now)).toEqual({ filesDeleted: 0, fragmentsDeleted: 0 });
    expect(opened.store.after(1, -1, 10)).toHaveLength(3);
  });

  it('keeps the current file while it is not expired, and rotates it first when it is', async () => {
    const fresh = await appendAt(2, [5]);
    const stale = await appendAt(1, [180, 120]);
    expect(await opened.store.sweep(now)).toEqual({ filesDeleted: 1, fragmentsDeleted: 2 });
    expect(opened.store.first(1)).toBeUndefined();
    expect(opened.store.get(2, fresh[0]!.seq)).toBeDefined();
    // Stream 1 appends again: into a new file.
    const [next] = await appendAt(1, [0]);
    expect(next!.fileId).not.toBe(stale[0]!.fileId);
    expect((await opened.store.read(next!)).length).toBe(next!.length);
  });

  it('retention 0 keeps the live buffer', async () => {
    retention.set(1, 0);
    await reopen({ fileMaxBytes: 1, liveBufferMs: 5 * MIN });
    await appendAt(1, [20, 10, 6]);
    const live = await appendAt(1, [4, 1]);
    expect(await opened.store.sweep(now)).toEqual({ filesDeleted: 3, fragmentsDeleted: 3 });
    expect(opened.store.after(1, -1, 10).map((f) => f.seq)).toEqual(live.map((f) => f.seq));
  });

  it('deletes all data of streams that are gone', async () => {
    await appendAt(1, [1, 0]);
    const other = await appendAt(2, [1]);
    retention.set(1, undefined);
    expect(await opened.store.sweep(now)).toEqual({ filesDeleted: 1, fragmentsDeleted: 2 });
    expect(opened.store.first(1)).toBeUndefined();
    expect(await exists(join(dir, 'streams', '1'))).toBe(false);
    expect(opened.store.first(2)?.seq).toBe(other[0]!.seq);
  });

  it('deleteStream removes its rows and folder, and nothing else', async () => {
    await reopen({ fileMaxBytes: 1 });
    await appendAt(1, [3, 2, 1]);
    const other = await appendAt(2, [1]);
    await opened.store.deleteStream(1);
    expect(opened.store.first(1)).toBeUndefined();
    expect(await exists(join(dir, 'streams', '1'))).toBe(false);
    expect(opened.db.prepare('SELECT COUNT(*) AS n FROM files WHERE stream_id = 1').get()).toEqual({ n: 0 });
    expect((await opened.store.read(other[0]!)).length).toBe(other[0]!.length);
    // The id can be used again from scratch.
    const [again] = await appendAt(1, [0]);
    expect((await opened.store.read(again!)).length).toBe(again!.length);
  });

  it('the sweeper runs periodically', async () => {
    await reopen({ fileMaxBytes: 1 });
    const old = await appendAt(1, [24 * 60]);
    await appendAt(1, [0]);
    opened.store.startSweeper(10);
    await vi.waitFor(() => expect(opened.store.get(1, old[0]!.seq)).toBeUndefined(), { timeout: 2000 });
  });
});
