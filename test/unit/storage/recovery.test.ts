import { appendFile, mkdir, open as openFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { FragmentStoreTestHooks, StoredFragment } from '../../../lib/service/storage/fragment-store.js';
import {
  closeAll,
  dataFiles,
  expectConsistent,
  exists,
  fileSize,
  makeFragment,
  makeTempDir,
  memoryLog,
  openStore,
  removeDir,
  type MadeFragment,
  type Opened,
} from './fixtures.js';

/** Appends fragments to streams 1..streams, rounds times, returning what was stored with its bytes. */
async function fill(opened: Opened, streams: number, rounds: number): Promise<[StoredFragment, Buffer][]> {
  const out: [StoredFragment, Buffer][] = [];
  for (let r = 0; r < rounds; r++) {
    const made = Array.from({ length: streams }, (_, s) => makeFragment(opened.store, s + 1));
    const stored = await Promise.all(made.map((m) => opened.store.append(m.input)));
    stored.forEach((f, i) => out.push([f, made[i]!.bytes]));
  }
  return out;
}

async function expectIntact(opened: Opened, fragments: [StoredFragment, Buffer][]): Promise<void> {
  for (const [f, bytes] of fragments) {
    expect(opened.store.get(f.streamId, f.seq)).toEqual(f);
    expect((await opened.store.read(f)).equals(bytes)).toBe(true);
  }
}

// Stores "killed" mid-batch stay referenced so that their open files are not closed by the GC.
const abandoned: Opened[] = [];

describe('crash recovery', () => {
  let dir: string;
  const toClose: Opened[] = [];
  beforeEach(async () => {
    dir = await makeTempDir();
  });
  afterEach(async () => {
    for (const o of toClose.splice(0)) await closeAll(o).catch(() => {});
    await removeDir(dir);
  });

  it('truncates torn tails, deletes unindexed files, drops index rows of missing files', async () => {
    const first = await openStore(dir);
    const kept = await fill(first, 3, 4);
    await closeAll(first);

    const victim = kept.find(([f]) => f.streamId === 3)![0];
    const lastOfStream1 = kept.filter(([f]) => f.streamId === 1).at(-1)![0];
    const stream1File = join(dir, 'streams', '1', `${lastOfStream1.fileId}.frag`);
    const goodSize = await fileSize(stream1File);
    await appendFile(stream1File, Buffer.alloc(12_345, 0xee)); // a torn tail
    await writeFile(join(dir, 'streams', '2', '999.frag'), 'stray'); // data without a files row
    await mkdir(join(dir, 'streams', '42'));
    await writeFile(join(dir, 'streams', '42', '1000.frag'), 'stray in a stray folder');
    await removeDir(join(dir, 'streams', '3')); // a files row whose file is gone

    const log = memoryLog();
    const second = await openStore(dir, { log });
    toClose.push(second);
    expect(await fileSize(stream1File)).toBe(goodSize);
    expect(await exists(join(dir, 'streams', '2', '999.frag'))).toBe(false);
    expect(await exists(join(dir, 'streams', '42'))).toBe(false);
    expect(second.store.get(3, victim.seq)).toBeUndefined();
    expect(second.store.first(3)).toBeUndefined();
    expect(log.entries.some((e) => e.level === 'warn' && /missing/.test(e.msg))).toBe(true);
    expect(log.entries.some((e) => /torn tail/.test(e.msg))).toBe(true);

    await expectIntact(second, kept.filter(([f]) => f.streamId !== 3));
    await expectConsistent(dir, second);
    // And it keeps working.
    const more = makeFragment(second.store, 3);
    const stored = await second.store.append(more.input);
    await expectIntact(second, [[stored, more.bytes]]);
  });

  it('drops fragments past the end of a file that lost data, and files left with none', async () => {
    const first = await openStore(dir);
    const kept = await fill(first, 1, 3);
    await closeAll(first);
    const [last] = kept.at(-1)!;
    await truncate(join(dir, 'streams', '1', `${last.fileId}.frag`), last.offset + 10);
    // A files row with a file but no fragments.
    const second = await openStore(dir);
    second.db.prepare("INSERT INTO files (id, stream_id, path, created_ms) VALUES (500, 5, 'streams/5/500.frag', 0)").run();
    await mkdir(join(dir, 'streams', '5'));
    await writeFile(join(dir, 'streams', '5', '500.frag'), 'nothing indexed');
    await closeAll(second);

    const third = await openStore(dir);
    toClose.push(third);
    expect(third.store.get(1, last.seq)).toBeUndefined();
    await expectIntact(third, kept.slice(0, -1));
    expect(await exists(join(dir, 'streams', '5'))).toBe(false);
    expect(third.db.prepare('SELECT COUNT(*) AS n FROM files WHERE id = 500').get()).toEqual({ n: 0 });
    await expectConsistent(dir, third);
  });

  // Simulates the process dying at a point of a batch commit: the hook never returns, the store is
  // abandoned as is (no close), and a new store opens the same files with a new connection.
  for (const point of ['afterWrite', 'afterSync'] as const) {
    const when = point === 'afterWrite' ? 'after writing, before fsync' : 'after fsync, before the index commit';
    it(`recovers from a crash ${when}`, async () => {
      let crash = false;
      let crashed!: () => void;
      const reached = new Promise<void>((resolve) => (crashed = resolve));
      const hooks: FragmentStoreTestHooks = {
        [point]: () => {
          if (!crash) return Promise.resolve();
          crashed();
          return new Promise<void>(() => {}); // never: the process is "dead" here
        },
      };
      const first = await openStore(dir, { testHooks: hooks });
      const kept = await fill(first, 3, 3);

      crash = true;
      const lost: MadeFragment[] = [1, 2, 3, 4].map((s) => makeFragment(first.store, s, { size: 30_000 }));
      for (const m of lost) void first.store.append(m.input); // never settle
      await reached;
      // Stream 4 got its first data file in the lost batch; streams 1-3 got torn tails.
      expect((await dataFiles(dir)).some((p) => p.startsWith('streams/4/'))).toBe(true);
      const [tailed] = kept.filter(([f]) => f.streamId === 1).at(-1)!;
      const tailedFile = join(dir, 'streams', '1', `${tailed.fileId}.frag`);
      expect(await fileSize(tailedFile)).toBeGreaterThan(tailed.offset + tailed.length);
      abandoned.push(first);
      first.db.close();

      const second = await openStore(dir);
      toClose.push(second);
      for (const m of lost) expect(second.store.get(m.input.streamId, m.input.seq)).toBeUndefined();
      expect(await exists(join(dir, 'streams', '4'))).toBe(false);
      await expectIntact(second, kept);
      expect(await fileSize(tailedFile)).toBe(tailed.offset + tailed.length);
      await expectConsistent(dir, second);
      const again = await fill(second, 4, 2);
      await expectIntact(second, again);
      await expectConsistent(dir, second);
    });
  }

  it('cuts a fragment written only in part past the index', async () => {
    const first = await openStore(dir);
    const kept = await fill(first, 1, 2);
    await closeAll(first);
    const [last] = kept.at(-1)!;
    // Half a fragment written past the index: must be cut, not mistaken for data.
    const handle = await openFile(join(dir, 'streams', '1', `${last.fileId}.frag`), 'a');
    await handle.write(Buffer.alloc(777, 1));
    await handle.close();
    const second = await openStore(dir);
    toClose.push(second);
    await expectIntact(second, kept);
    await expectConsistent(dir, second);
  });
});
