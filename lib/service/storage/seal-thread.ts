/**
 * AES-256-GCM sealing of fragments on a thread of its own (encryption at rest, fragment-cipher.ts).
 *
 * The event loop copies a fragment's chunks into a free slot (an ArrayBuffer of its own) and
 * hands the slot to the thread (transferred, not copied); the thread encrypts it in place and
 * hands it back with the tag. The event loop then writes nonce ‖ slot ‖ tag and frees the slot.
 * Besides moving AES off the event loop, this keeps the ciphertext out of the main heap: every
 * cipher output is a new external buffer, and at a few hundred MB/s those drove a full garbage
 * collection every ~100 ms. Slots are plain ArrayBuffers, not one SharedArrayBuffer: V8 copies
 * into shared memory with a relaxed-atomic memmove, about a third of memcpy's speed, which cost
 * the event loop ~6 % of a core at 600 streams. Fragments larger than a slot, or arriving when
 * every slot is taken, are sealed on the event loop (sealChunks) as before.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { aad, sealChunks } from './fragment-cipher.js';

/** Slots of this size (a 1 s fragment of 4 Mbps is 512 KB)… */
export const SLOT_BYTES = 1024 * 1024;
/** …and at most this many of them, made as needed (most fragments are written within a few ms of being sealed). */
export const SLOTS = 24;

/** The thread: plain JavaScript (only node: modules), so it runs from the sources and from dist/ alike. */
const THREAD_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { createCipheriv } = require('node:crypto');
const PIECE = 64 * 1024;
parentPort.on('message', (job) => {
  try {
    const slot = Buffer.from(job.slot, 0, job.length);
    const cipher = createCipheriv('aes-256-gcm', job.key, job.nonce);
    cipher.setAAD(job.aad);
    for (let at = 0; at < slot.length; at += PIECE) {
      const piece = slot.subarray(at, Math.min(at + PIECE, slot.length));
      cipher.update(piece).copy(piece); // GCM output has the input's length: in place
    }
    cipher.final();
    parentPort.postMessage({ id: job.id, tag: cipher.getAuthTag(), slot: job.slot }, [job.slot]);
  } catch (err) {
    parentPort.postMessage({ id: job.id, error: String(err && err.message || err) });
  }
});
`;

export interface Sealed {
  /** nonce, ciphertext, tag: written as they are. */
  chunks: Buffer[];
  /** Call once the chunks are written (the ciphertext lives in a slot until then). */
  release(): void;
}

interface Job {
  resolve(done: { tag: Buffer; slot: ArrayBuffer }): void;
  reject(err: Error): void;
}

/** One sealing thread and its slots; seal() falls back to the event loop when it must. */
export class SealThread {
  private readonly worker: Worker;
  /** Slots at hand; with those on the thread or holding a sealed fragment, `slots` in all. */
  private readonly free: ArrayBuffer[] = [];
  private slots = 0;
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private failed: Error | undefined;
  private readonly counts = { onThread: 0, onLoop: 0 };

  constructor(private readonly log: { warn(obj: object, msg: string): void }) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; tag?: Uint8Array; slot?: ArrayBuffer; error?: string }) => {
      const job = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (m.tag && m.slot) job?.resolve({ tag: Buffer.from(m.tag.buffer, m.tag.byteOffset, m.tag.byteLength), slot: m.slot });
      else job?.reject(new Error(`sealing failed: ${m.error}`));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the sealing thread exited (${code})`)));
  }

  /** Seals a fragment; on the thread when it fits a free slot, else here. */
  async seal(key: Buffer, streamId: number, seq: number, chunks: readonly Buffer[], size: number): Promise<Sealed> {
    if (this.failed || size > SLOT_BYTES || (this.free.length === 0 && this.slots === SLOTS)) return this.sealHere(key, streamId, seq, chunks);
    let slot = this.free.pop();
    if (!slot) {
      slot = new ArrayBuffer(SLOT_BYTES);
      this.slots++;
    }
    const view = Buffer.from(slot, 0, size);
    let at = 0;
    for (const c of chunks) at += c.copy(view, at);
    const nonce = randomBytes(12);
    const id = this.nextId++;
    try {
      const done = new Promise<{ tag: Buffer; slot: ArrayBuffer }>((resolve, reject) => this.jobs.set(id, { resolve, reject }));
      this.worker.postMessage({ id, slot, length: size, key, nonce, aad: aad(streamId, seq) }, [slot]);
      const { tag, slot: back } = await done;
      this.counts.onThread++;
      let released = false;
      const release = () => {
        if (released) return;
        released = true;
        this.free.push(back);
      };
      return { chunks: [nonce, Buffer.from(back, 0, size), tag], release };
    } catch {
      // The thread failed the job or stopped (logged once), and kept the slot: the chunks are untouched, seal them here.
      this.jobs.delete(id);
      this.slots--;
      return this.sealHere(key, streamId, seq, chunks);
    }
  }

  /** How many fragments were sealed on the thread and on the event loop. */
  stats(): { onThread: number; onLoop: number } {
    return { ...this.counts };
  }

  private sealHere(key: Buffer, streamId: number, seq: number, chunks: readonly Buffer[]): Sealed {
    const sealed = sealChunks(key, streamId, seq, chunks);
    this.counts.onLoop++;
    return { chunks: sealed, release() {} };
  }

  async close(): Promise<void> {
    this.failed ??= new Error('the sealing thread is closed');
    await this.worker.terminate();
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = err;
    this.log.warn({ err }, 'sealing thread stopped; fragments are sealed on the event loop');
    for (const job of this.jobs.values()) job.reject(err);
    this.jobs.clear();
  }
}
