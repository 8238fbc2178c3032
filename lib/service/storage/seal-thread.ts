/**
 * AES-256-GCM sealing of fragments on a thread of its own (encryption at rest, fragment-cipher.ts).
 *
 * The event loop copies a fragment's chunks into a free slot of a SharedArrayBuffer; the thread
 * encrypts the slot in place and answers with the tag. The event loop then writes nonce ‖ slot ‖
 * tag and frees the slot. Besides moving AES off the event loop, this keeps the ciphertext out of
 * the main heap: every cipher output is a new external buffer, and at a few hundred MB/s those
 * drove a full garbage collection every ~100 ms. Fragments larger than a slot, or arriving when
 * every slot is taken, are sealed on the event loop (sealChunks) as before.
 */
import { randomBytes } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { aad, sealChunks } from './fragment-cipher.js';

/** Slots of this size (a 1 s fragment of 4 Mbps is 512 KB)… */
export const SLOT_BYTES = 1024 * 1024;
/** …and this many of them (most fragments are written within a few ms of being sealed). */
export const SLOTS = 24;

/** The thread: plain JavaScript (only node: modules), so it runs from the sources and from dist/ alike. */
const THREAD_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createCipheriv } = require('node:crypto');
const memory = Buffer.from(workerData.memory);
const PIECE = 64 * 1024;
parentPort.on('message', (job) => {
  try {
    const slot = memory.subarray(job.offset, job.offset + job.length);
    const cipher = createCipheriv('aes-256-gcm', job.key, job.nonce);
    cipher.setAAD(job.aad);
    for (let at = 0; at < slot.length; at += PIECE) {
      const piece = slot.subarray(at, Math.min(at + PIECE, slot.length));
      cipher.update(piece).copy(piece); // GCM output has the input's length: in place
    }
    cipher.final();
    parentPort.postMessage({ id: job.id, tag: cipher.getAuthTag() });
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
  resolve(tag: Buffer): void;
  reject(err: Error): void;
}

/** One sealing thread and its slots; seal() falls back to the event loop when it must. */
export class SealThread {
  private readonly worker: Worker;
  private readonly memory = new SharedArrayBuffer(SLOT_BYTES * SLOTS);
  private readonly free: number[] = Array.from({ length: SLOTS }, (_, i) => i);
  private readonly jobs = new Map<number, Job>();
  private nextId = 0;
  private failed: Error | undefined;
  private readonly counts = { onThread: 0, onLoop: 0 };

  constructor(private readonly log: { warn(obj: object, msg: string): void }) {
    this.worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { memory: this.memory } });
    this.worker.unref();
    this.worker.on('message', (m: { id: number; tag?: Uint8Array; error?: string }) => {
      const job = this.jobs.get(m.id);
      this.jobs.delete(m.id);
      if (m.tag) job?.resolve(Buffer.from(m.tag.buffer, m.tag.byteOffset, m.tag.byteLength));
      else job?.reject(new Error(`sealing failed: ${m.error}`));
    });
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => this.fail(new Error(`the sealing thread exited (${code})`)));
  }

  /** Seals a fragment; on the thread when it fits a free slot, else here. */
  async seal(key: Buffer, streamId: number, seq: number, chunks: readonly Buffer[], size: number): Promise<Sealed> {
    if (this.failed || size > SLOT_BYTES || this.free.length === 0) return this.sealHere(key, streamId, seq, chunks);
    const slot = this.free.pop()!;
    const offset = slot * SLOT_BYTES;
    const view = Buffer.from(this.memory, offset, size);
    let at = 0;
    for (const c of chunks) at += c.copy(view, at);
    const nonce = randomBytes(12);
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      this.free.push(slot);
    };
    try {
      const tag = await new Promise<Buffer>((resolve, reject) => {
        const id = this.nextId++;
        this.jobs.set(id, { resolve, reject });
        this.worker.postMessage({ id, offset, length: size, key, nonce, aad: aad(streamId, seq) });
      });
      this.counts.onThread++;
      return { chunks: [nonce, view, tag], release };
    } catch {
      release(); // the thread stopped (logged once): the chunks are untouched, seal them here
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
