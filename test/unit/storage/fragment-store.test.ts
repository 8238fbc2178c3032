import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseFragmentNumber } from '../../../lib/service/storage/fragment-number.js';
import type { DataFiles } from '../../../lib/service/storage/data-files.js';
import type { FragmentInput, FragmentStoreTestHooks, StoredFragment } from '../../../lib/service/storage/fragment-store.js';
import {
  HEADER,
  OTHER_HEADER,
  closeAll,
  dataFiles,
  makeFragment,
  makeTempDir,
  memoryLog,
  openStore,
  removeDir,
  type Opened,
} from './fixtures.js';

describe('FragmentStore appends and reads', () => {
  let dir: string;
  let opened: Opened;
  beforeEach(async () => {
    dir = await makeTempDir();
    opened = await openStore(dir);
  });
  afterEach(async () => {
    await closeAll(opened).catch(() => {});
    await removeDir(dir);
  });

  it('reads a fragment back byte for byte and describes it', async () => {
    const { store } = opened;
    const { input, bytes } = makeFragment(store, 7, { producerTimestampMs: 1000, serverTimestampMs: 1500, durationMs: 2000 });
    const stored = await store.append(input);
    expect(stored).toMatchObject({
      seq: input.seq,
      streamId: 7,
      producerTimestampMs: 1000,
      serverTimestampMs: 1500,
      durationMs: 2000,
      sizeBytes: bytes.length,
      offset: 0,
      length: bytes.length,
    });
    expect(parseFragmentNumber(stored.fragmentNumber)).toBe(input.seq);
    expect(store.get(7, input.seq)).toEqual(stored);
    expect(store.get(8, input.seq)).toBeUndefined();
    expect((await store.read(stored)).equals(bytes)).toBe(true);
    expect(store.header(stored.headerId)).toEqual(HEADER);
    expect(await dataFiles(dir)).toEqual([`streams/7/${stored.fileId}.frag`]);
  });

  it('deduplicates stream headers', async () => {
    const { store, db } = opened;
    const a = await store.append(makeFragment(store, 1).input);
    const sameContent = { ebml: Buffer.from(HEADER.ebml), tracks: Buffer.from(HEADER.tracks) };
    const b = await store.append(makeFragment(store, 2, { header: sameContent }).input);
    const c = await store.append(makeFragment(store, 1, { header: OTHER_HEADER }).input);
    expect(b.headerId).toBe(a.headerId);
    expect(c.headerId).not.toBe(a.headerId);
    expect(db.prepare('SELECT COUNT(*) AS n FROM headers').get()).toEqual({ n: 2 });
    expect(store.header(c.headerId)).toEqual(OTHER_HEADER);
  });

  it('groups concurrent appends of many streams into few batches', async () => {
    const { store } = opened;
    const streams = 20;
    const perStream = 30;
    const expected = new Map<number, Buffer>();
    const stored: StoredFragment[][] = await Promise.all(
      Array.from({ length: streams }, async (_, s) => {
        const mine: StoredFragment[] = [];
        for (let i = 0; i < perStream; i++) {
          // Non-durable for a few streams, as for retention-0 streams.
          const { input, bytes } = makeFragment(store, s + 1, { durable: s % 5 !== 0, size: 500 + ((s * 31 + i * 17) % 3000) });
          expected.set(input.seq, bytes);
          mine.push(await store.append(input));
        }
        return mine;
      }),
    );
    const stats = store.stats();
    expect(stats.fragments).toBe(streams * perStream);
    expect(stats.batches).toBeLessThan(stats.fragments);
    expect(stats.batches).toBeLessThanOrEqual(perStream + 2);
    expect(stats.fsyncs).toBeLessThan(stats.fragments);

    for (let s = 0; s < streams; s++) {
      const listed = store.after(s + 1, -1, 1000);
      expect(listed.map((f) => f.seq)).toEqual(stored[s]!.map((f) => f.seq));
      for (let i = 1; i < listed.length; i++) expect(listed[i]!.seq).toBeGreaterThan(listed[i - 1]!.seq);
      for (const f of listed) expect((await store.read(f)).equals(expected.get(f.seq)!)).toBe(true);
    }
  });

  it('issues no fsync for non-durable fragments alone', async () => {
    const { store } = opened;
    await Promise.all([1, 2, 3].map((s) => store.append(makeFragment(store, s, { durable: false }).input)));
    expect(store.stats().fsyncs).toBe(0);
    await store.append(makeFragment(store, 1, { durable: true }).input);
    expect(store.stats().fsyncs).toBeGreaterThan(0);
  });

  it('rotates data files by size and by age', async () => {
    await closeAll(opened);
    opened = await openStore(dir, { fileMaxBytes: 10_000 });
    const { store } = opened;
    const bytes: Buffer[] = [];
    for (let i = 0; i < 10; i++) {
      const f = makeFragment(store, 3, { size: 4000 });
      bytes.push(f.bytes);
      await store.append(f.input);
    }
    const all = store.after(3, -1, 100);
    expect(new Set(all.map((f) => f.fileId)).size).toBe(4); // 3 fragments reach 12 000 bytes, then rotate
    for (const [i, f] of all.entries()) expect((await store.read(f)).equals(bytes[i]!)).toBe(true);

    await closeAll(opened);
    opened = await openStore(dir, { fileMaxAgeMs: 30 });
    const a = await opened.store.append(makeFragment(opened.store, 3).input);
    const b = await opened.store.append(makeFragment(opened.store, 3).input);
    expect(b.fileId).toBe(a.fileId); // a reopened store starts a new file, then keeps it while young
    expect(a.fileId).toBeGreaterThan(all.at(-1)!.fileId);
    await new Promise((r) => setTimeout(r, 50));
    const c = await opened.store.append(makeFragment(opened.store, 3).input);
    expect(c.fileId).not.toBe(b.fileId);
  });

  it('fails only the fragments whose write fails, and stays usable', async () => {
    const { store } = opened;
    // A regular file where stream 9's folder should be: creating its data file fails.
    await writeFile(join(dir, 'streams', '9'), 'in the way');
    const ok = makeFragment(store, 1);
    const bad = makeFragment(store, 9);
    const [good, failed] = await Promise.allSettled([store.append(ok.input), store.append(bad.input)]);
    expect(good.status).toBe('fulfilled');
    expect(failed.status).toBe('rejected');
    expect(store.get(9, bad.input.seq)).toBeUndefined();

    await removeDir(join(dir, 'streams', '9'));
    const retry = makeFragment(store, 9);
    const stored = await store.append(retry.input);
    expect((await store.read(stored)).equals(retry.bytes)).toBe(true);
  });

  it('rejects a duplicate seq without failing the rest of its batch', async () => {
    const { store } = opened;
    const first = await store.append(makeFragment(store, 1).input);
    const again = makeFragment(store, 2, { seq: first.seq });
    const other = makeFragment(store, 3);
    const [dup, fine] = await Promise.allSettled([store.append(again.input), store.append(other.input)]);
    expect(dup.status).toBe('rejected');
    expect(fine.status).toBe('fulfilled');
    expect(store.get(2, first.seq)).toBeUndefined();
    // The stream's file stays appendable, with every indexed fragment intact.
    const next = makeFragment(store, 2);
    const stored = await store.append(next.input);
    expect((await store.read(stored)).equals(next.bytes)).toBe(true);
  });

  it('rejects malformed input', async () => {
    const { store } = opened;
    const base = makeFragment(store, 1).input;
    const bad: FragmentInput[] = [
      { ...base, seq: -1 },
      { ...base, streamId: 1.5 },
      { ...base, serverTimestampMs: Number.NaN },
      { ...base, chunks: ['text' as unknown as Buffer] },
    ];
    for (const input of bad) await expect(store.append(input)).rejects.toThrow(TypeError);
  });

  it('allocates sequence numbers above everything stored, even after a reopen', async () => {
    const { store } = opened;
    const a = store.nextSeq();
    const b = store.nextSeq();
    expect(b).toBeGreaterThan(a);
    expect(a).toBeGreaterThanOrEqual(Date.now() * 1000 - 60_000_000);
    // Store a fragment with a seq far above the clock-based start.
    const future = Date.now() * 1000 + 10_000_000_000;
    await store.append(makeFragment(store, 1, { seq: future }).input);
    await closeAll(opened);
    opened = await openStore(dir);
    expect(opened.store.nextSeq()).toBe(future + 1);
  });

  it('writes the next batch while the previous one is in its fsync and commit, and acks in order', async () => {
    await closeAll(opened);
    let writes = 0;
    let holdSync = true;
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let inSync!: () => void;
    const syncing = new Promise<void>((resolve) => (inSync = resolve));
    const hooks: FragmentStoreTestHooks = {
      afterWrite: async () => {
        writes++;
      },
      afterSync: () => {
        if (!holdSync) return Promise.resolve();
        holdSync = false;
        inSync();
        return released;
      },
    };
    opened = await openStore(dir, { testHooks: hooks });
    const { store } = opened;
    const order: string[] = [];
    const a = makeFragment(store, 1);
    const first = store.append(a.input).then((f) => (order.push('first'), f));
    await syncing;
    const b = makeFragment(store, 1); // the same data file as the batch in commit
    const second = store.append(b.input).then((f) => (order.push('second'), f));
    await waitUntil(() => writes === 2);
    expect(order).toEqual([]); // written, but neither is acknowledged before the first commit
    release();
    const [fa, fb] = await Promise.all([first, second]);
    expect(order).toEqual(['first', 'second']);
    expect(fb.fileId).toBe(fa.fileId);
    expect((await store.read(fa)).equals(a.bytes)).toBe(true);
    expect((await store.read(fb)).equals(b.bytes)).toBe(true);
  });

  it('trusts nothing written to a file after its fsync failed, even if a later fsync succeeds', async () => {
    await closeAll(opened);
    let writes = 0;
    const log = memoryLog();
    opened = await openStore(dir, { log, testHooks: { afterWrite: async () => void writes++ } });
    const { store } = opened;
    const a = makeFragment(store, 1);
    const fa = await store.append(a.input);
    const writer = (store as unknown as { files: DataFiles }).files.current(1)!;
    const datasync = writer.handle.datasync.bind(writer.handle);
    let fail!: (err: Error) => void;
    let inSync!: () => void;
    const syncing = new Promise<void>((resolve) => (inSync = resolve));
    let calls = 0;
    writer.handle.datasync = () => {
      if (calls++ > 0) return datasync();
      inSync();
      return new Promise<void>((_, reject) => (fail = reject));
    };
    const b = store.append(makeFragment(store, 1).input);
    await syncing;
    const before = writes;
    const c = store.append(makeFragment(store, 1).input); // written to the same file meanwhile
    await waitUntil(() => writes > before);
    fail(Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' }));
    await expect(b).rejects.toThrow(/EIO/);
    await expect(c).rejects.toThrow(/EIO/);
    expect(log.entries.filter((e) => /fsync failed/.test(e.msg))).toHaveLength(1);

    const d = makeFragment(store, 1);
    const fd = await store.append(d.input);
    expect(fd.fileId).not.toBe(fa.fileId); // a new file
    expect((await store.read(fd)).equals(d.bytes)).toBe(true);
    expect((await store.read(fa)).equals(a.bytes)).toBe(true);
    expect(store.after(1, -1, 10).map((f) => f.seq)).toEqual([fa.seq, fd.seq]);
  });

  it('close() flushes queued appends; later calls reject', async () => {
    const { store } = opened;
    const made = Array.from({ length: 25 }, (_, i) => makeFragment(store, 1 + (i % 5)));
    const pending = made.map((m) => store.append(m.input));
    await store.close();
    const stored = await Promise.all(pending);
    expect(stored).toHaveLength(25);
    await expect(store.append(makeFragment(store, 1).input)).rejects.toThrow(/closed/);
    await expect(store.sweep()).rejects.toThrow(/closed/);
    await expect(store.deleteStream(1)).rejects.toThrow(/closed/);
    await expect(store.read(stored[0]!)).rejects.toThrow(/closed/);

    opened.db.close();
    opened = await openStore(dir);
    for (const [i, m] of made.entries()) {
      const f = opened.store.get(m.input.streamId, stored[i]!.seq)!;
      expect((await opened.store.read(f)).equals(m.bytes)).toBe(true);
    }
  });
});

describe('FragmentStore queries', () => {
  let dir: string;
  let opened: Opened;
  // Stream 1: producer timestamps 1000, 3000, 5000, 7000, 9000; server timestamps 10× them.
  const seqs: number[] = [];
  beforeEach(async () => {
    dir = await makeTempDir();
    opened = await openStore(dir);
    seqs.length = 0;
    for (const t of [1000, 3000, 5000, 7000, 9000]) {
      const f = makeFragment(opened.store, 1, { producerTimestampMs: t, serverTimestampMs: t * 10 });
      seqs.push(f.input.seq);
      await opened.store.append(f.input);
    }
    await opened.store.append(makeFragment(opened.store, 2, { producerTimestampMs: 4000, serverTimestampMs: 40_000 }).input);
  });
  afterEach(async () => {
    await closeAll(opened);
    await removeDir(dir);
  });

  const seqOf = (f: StoredFragment | undefined): number | undefined => f?.seq;

  it('first, last and after', () => {
    const { store } = opened;
    expect(seqOf(store.first(1))).toBe(seqs[0]);
    expect(seqOf(store.last(1))).toBe(seqs[4]);
    expect(store.first(99)).toBeUndefined();
    expect(store.last(99)).toBeUndefined();
    expect(store.after(1, seqs[1]!, 2).map((f) => f.seq)).toEqual([seqs[2], seqs[3]]);
    expect(store.after(1, seqs[4]!, 10)).toEqual([]);
    expect(store.after(1, -1, 100)).toHaveLength(5);
  });

  it('atTimestamp finds the fragment containing a timestamp, by either clock', () => {
    const { store } = opened;
    expect(seqOf(store.atTimestamp(1, 'producer', 3000))).toBe(seqs[1]);
    expect(seqOf(store.atTimestamp(1, 'producer', 4999))).toBe(seqs[1]);
    expect(seqOf(store.atTimestamp(1, 'producer', 500))).toBe(seqs[0]); // none before: the first after
    expect(seqOf(store.atTimestamp(1, 'producer', 1_000_000))).toBe(seqs[4]);
    expect(seqOf(store.atTimestamp(1, 'server', 4999))).toBe(seqs[0]);
    expect(seqOf(store.atTimestamp(1, 'server', 50_000))).toBe(seqs[2]);
    expect(store.atTimestamp(99, 'server', 0)).toBeUndefined();
  });

  it('list: inclusive bounds, by kind, paged with afterSeq', () => {
    const { store } = opened;
    const list = (kind: 'producer' | 'server', startMs: number, endMs: number, afterSeq?: number, limit = 100): number[] =>
      store.list(1, { kind, startMs, endMs, afterSeq, limit }).map((f) => f.seq);
    expect(list('producer', 3000, 7000)).toEqual([seqs[1], seqs[2], seqs[3]]);
    expect(list('producer', 3001, 6999)).toEqual([seqs[2]]);
    expect(list('server', 3000, 7000)).toEqual([]);
    expect(list('server', 30_000, 70_000)).toEqual([seqs[1], seqs[2], seqs[3]]);
    expect(list('producer', 0, 10_000, undefined, 2)).toEqual([seqs[0], seqs[1]]);
    expect(list('producer', 0, 10_000, seqs[1], 2)).toEqual([seqs[2], seqs[3]]);
    expect(list('producer', 0, 10_000, seqs[3], 2)).toEqual([seqs[4]]);
    expect(store.list(2, { kind: 'producer', startMs: 0, endMs: 10_000, limit: 10 })).toHaveLength(1);
  });

  it('findByProducerTimestamp detects a re-sent fragment', () => {
    const { store } = opened;
    expect(seqOf(store.findByProducerTimestamp(1, 5000))).toBe(seqs[2]);
    expect(store.findByProducerTimestamp(1, 5001)).toBeUndefined();
    expect(store.findByProducerTimestamp(2, 5000)).toBeUndefined();
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for a condition');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
