/**
 * SealThread: fragments sealed on the thread open like those sealed on the event loop; what does
 * not fit (too large, every slot taken) or arrives after the thread stopped is sealed on the event
 * loop instead, never lost.
 */
import { randomBytes } from 'node:crypto';
import { afterEach, expect, it } from 'vitest';
import { SEAL_OVERHEAD, openSealed } from '../../../lib/service/storage/fragment-cipher.js';
import { SLOT_BYTES, SLOTS, SealThread } from '../../../lib/service/storage/seal-thread.js';

const key = randomBytes(32);
const warnings: string[] = [];
const log = { warn: (_obj: object, msg: string) => void warnings.push(msg) };
let thread: SealThread | undefined;
afterEach(async () => {
  await thread?.close();
  thread = undefined;
  warnings.length = 0;
});

const fragment = (size: number) => {
  const plain = randomBytes(size);
  // Cut into uneven chunks, as the network delivers them.
  const chunks: Buffer[] = [];
  for (let at = 0; at < size; ) {
    const n = Math.min(size - at, 1 + ((at * 7919) % 40_000));
    chunks.push(plain.subarray(at, at + n));
    at += n;
  }
  return { plain, chunks };
};

it('seals on the thread; every fragment opens to its bytes, under its own stream and sequence number', async () => {
  thread = new SealThread(log);
  for (const size of [0, 1, 16_384, 512 * 1024, SLOT_BYTES]) {
    const { plain, chunks } = fragment(size);
    const sealed = await thread.seal(key, 3, 1000 + size, chunks, size);
    const bytes = Buffer.concat(sealed.chunks);
    sealed.release();
    expect(bytes.length).toBe(size + SEAL_OVERHEAD);
    expect(openSealed(key, 3, 1000 + size, bytes).equals(plain)).toBe(true);
    expect(() => openSealed(key, 3, 999, bytes)).toThrow();
  }
  expect(thread.stats()).toEqual({ onThread: 5, onLoop: 0 });
});

it('seals on the event loop what is larger than a slot, or finds every slot taken; released slots are used again', async () => {
  thread = new SealThread(log);
  const big = fragment(SLOT_BYTES + 1);
  const sealedBig = await thread.seal(key, 1, 1, big.chunks, big.plain.length);
  expect(openSealed(key, 1, 1, Buffer.concat(sealedBig.chunks)).equals(big.plain)).toBe(true);

  // Hold every slot, and then some: the extra ones are sealed here, all open.
  const frags = Array.from({ length: SLOTS + 5 }, () => fragment(100_000));
  const held = await Promise.all(frags.map((f, i) => thread!.seal(key, 1, 10 + i, f.chunks, f.plain.length)));
  held.forEach((s, i) => expect(openSealed(key, 1, 10 + i, Buffer.concat(s.chunks)).equals(frags[i]!.plain)).toBe(true));
  expect(thread.stats()).toEqual({ onThread: SLOTS, onLoop: 6 });
  for (const s of held) s.release();

  const again = fragment(1000);
  const sealed = await thread.seal(key, 1, 99, again.chunks, 1000);
  expect(openSealed(key, 1, 99, Buffer.concat(sealed.chunks)).equals(again.plain)).toBe(true);
  expect(thread.stats().onThread).toBe(SLOTS + 1);
});

it('a thread that stops is logged once; its fragments, and later ones, are sealed on the event loop', async () => {
  thread = new SealThread(log);
  const frags = Array.from({ length: 8 }, () => fragment(300_000));
  const pending = frags.map((f, i) => thread!.seal(key, 2, i, f.chunks, f.plain.length));
  await (thread as unknown as { worker: { terminate(): Promise<number> } }).worker.terminate();
  const sealed = await Promise.all(pending);
  const later = fragment(5000);
  sealed.push(await thread.seal(key, 2, 8, later.chunks, 5000));
  [...frags, later].forEach((f, i) => expect(openSealed(key, 2, i, Buffer.concat(sealed[i]!.chunks)).equals(f.plain)).toBe(true));
  expect(warnings).toEqual(['sealing thread stopped; fragments are sealed on the event loop']);
  expect(thread.stats().onLoop).toBeGreaterThanOrEqual(1);
});
