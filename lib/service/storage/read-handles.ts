import { open, type FileHandle } from 'node:fs/promises';

interface Entry {
  handle: Promise<FileHandle>;
  users: number;
  evicted: boolean;
}

/**
 * A small LRU cache of read-only file handles keyed by data-file id. A handle evicted while reads
 * are using it is closed when the last of them finishes.
 */
export class ReadHandles {
  private readonly entries = new Map<number, Entry>(); // Map order = least recently used first

  constructor(private readonly capacity = 64) {}

  async use<T>(fileId: number, path: string, fn: (handle: FileHandle) => Promise<T>): Promise<T> {
    let entry = this.entries.get(fileId);
    if (entry) {
      this.entries.delete(fileId);
      this.entries.set(fileId, entry);
    } else {
      entry = { handle: open(path, 'r'), users: 0, evicted: false };
      this.entries.set(fileId, entry);
      this.trim();
    }
    entry.users++;
    try {
      let handle: FileHandle;
      try {
        handle = await entry.handle;
      } catch (err) {
        if (this.entries.get(fileId) === entry) this.entries.delete(fileId);
        entry.evicted = true;
        throw err;
      }
      return await fn(handle);
    } finally {
      entry.users--;
      if (entry.evicted && entry.users === 0) void closeQuietly(entry);
    }
  }

  /** Drops the cached handle of a file (it is being deleted). */
  invalidate(fileId: number): void {
    const entry = this.entries.get(fileId);
    if (!entry) return;
    this.entries.delete(fileId);
    this.evict(entry);
  }

  async closeAll(): Promise<void> {
    const idle: Promise<void>[] = [];
    for (const entry of this.entries.values()) {
      entry.evicted = true;
      if (entry.users === 0) idle.push(closeQuietly(entry));
    }
    this.entries.clear();
    await Promise.all(idle);
  }

  private trim(): void {
    while (this.entries.size > this.capacity) {
      const [fileId, entry] = this.entries.entries().next().value as [number, Entry];
      this.entries.delete(fileId);
      this.evict(entry);
    }
  }

  private evict(entry: Entry): void {
    entry.evicted = true;
    if (entry.users === 0) void closeQuietly(entry);
  }
}

async function closeQuietly(entry: Entry): Promise<void> {
  try {
    await (await entry.handle).close();
  } catch {
    // the open failed or the handle is already closed: nothing to release
  }
}
