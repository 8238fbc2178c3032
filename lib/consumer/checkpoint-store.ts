/**
 * Where a reader keeps its place in a stream. A checkpoint names the last fragment read whole
 * (its continuation token and number) and the producer timestamp of the last frame delivered on
 * each track, so a reader that resumes skips frames it already delivered from a fragment it had
 * read only in part.
 *
 * Stores are small and pluggable: `FileCheckpointStore` (default; one JSON file, written to a
 * temporary file, fsynced and renamed, so a crash leaves the old or the new checkpoint, never a
 * torn one) and `MemoryCheckpointStore`. Any `{ load, save }` pair works (a database row, …).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { ConsumerError } from '../errors.js';

export interface Checkpoint {
  /** Continuation token of the last fragment read whole. */
  continuationToken?: string;
  /** Number of the last fragment read whole (the fallback when the token is refused). */
  fragmentNumber?: string;
  producerTimestampMs?: number;
  serverTimestampMs?: number;
  /** Producer timestamp (ms) of the last frame delivered, per track number. */
  lastFrameTimestampMs: Record<string, number>;
  updatedAt: string;
}

export interface CheckpointStore {
  load(key: string): Promise<Checkpoint | undefined>;
  save(key: string, checkpoint: Checkpoint): Promise<void>;
}

const checkpointSchema = z.object({
  continuationToken: z.string().optional(),
  fragmentNumber: z.string().optional(),
  producerTimestampMs: z.number().optional(),
  serverTimestampMs: z.number().optional(),
  lastFrameTimestampMs: z.record(z.string(), z.number()),
  updatedAt: z.string(),
});

export class MemoryCheckpointStore implements CheckpointStore {
  private readonly entries = new Map<string, Checkpoint>();

  async load(key: string): Promise<Checkpoint | undefined> {
    const c = this.entries.get(key);
    return c && structuredClone(c);
  }

  async save(key: string, checkpoint: Checkpoint): Promise<void> {
    this.entries.set(key, structuredClone(checkpoint));
  }
}

/** Checkpoints of any number of keys in one JSON file. */
export class FileCheckpointStore implements CheckpointStore {
  readonly file: string;
  private entries: Record<string, Checkpoint> | undefined;
  private writing: Promise<void> = Promise.resolve();

  constructor(file: string) {
    this.file = path.resolve(file);
  }

  async load(key: string): Promise<Checkpoint | undefined> {
    const c = this.read()[key];
    return c && structuredClone(c);
  }

  save(key: string, checkpoint: Checkpoint): Promise<void> {
    const entries = this.read();
    entries[key] = structuredClone(checkpoint);
    const text = `${JSON.stringify(entries, null, 2)}\n`;
    // Writes happen one after the other; the last one written holds every key.
    this.writing = this.writing.catch(() => {}).then(() => this.write(text));
    return this.writing;
  }

  private read(): Record<string, Checkpoint> {
    if (this.entries) return this.entries;
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return (this.entries = {});
      throw new ConsumerError('CONSUMER_CHECKPOINT_STORE', `cannot read checkpoint file ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new ConsumerError('CONSUMER_CHECKPOINT_STORE', `checkpoint file ${this.file} is not JSON: ${(err as Error).message}`, { cause: err });
    }
    const result = z.record(z.string(), checkpointSchema).safeParse(parsed);
    if (!result.success) {
      const issue = result.error.issues[0]!;
      throw new ConsumerError('CONSUMER_CHECKPOINT_STORE', `checkpoint file ${this.file}: ${issue.path.join('.')}: ${issue.message}`);
    }
    return (this.entries = result.data);
  }

  private async write(text: string): Promise<void> {
    const tmp = `${this.file}.tmp-${process.pid}`;
    try {
      mkdirSync(path.dirname(this.file), { recursive: true });
      const fh = await open(tmp, 'w');
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, this.file);
    } catch (err) {
      throw new ConsumerError('CONSUMER_CHECKPOINT_STORE', `cannot write checkpoint file ${this.file}: ${(err as Error).message}`, { cause: err });
    }
  }
}
