import { mkdir, open, rm, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { StoredFragment } from './fragment-index.js';
import { ReadHandles } from './read-handles.js';

export interface StorageLog {
  error(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

/** The data file a stream is currently appending to. */
export interface Writer {
  streamId: number;
  fileId: number;
  relPath: string;
  handle: FileHandle;
  /** End of the last fragment written (and kept) in the file. */
  size: number;
  createdMs: number;
  /** Whether its `files` row is committed. */
  indexed: boolean;
  /** Directories whose entries for this file are not yet durable. */
  dirsToSync: string[];
  /** Why an fsync of the file failed: nothing written to it since is trusted to be durable. */
  syncError?: unknown;
}

export interface DataFilesOptions {
  /** Rotate a stream's data file once it has reached this size. */
  fileMaxBytes: number;
  /** ...or this age. */
  fileMaxAgeMs: number;
  log: StorageLog;
}

/** A data file's path relative to the data folder. */
export function dataFilePath(streamId: number, fileId: number): string {
  return `streams/${streamId}/${fileId}.frag`;
}

/**
 * The fragment data files, `${dataDir}/streams/<streamId>/<fileId>.frag`: the file each stream
 * appends to (rotated by size and age), files retired from appending (closed, and deleted if never
 * indexed, once no batch in progress can be using them), and cached handles for reads.
 */
export class DataFiles {
  readonly streamsDir: string;
  /** The id the next new data file gets (set past the index's highest at open). */
  nextFileId = 1;
  private readonly writers = new Map<number, Writer>();
  private retired: Writer[] = [];
  private readonly readHandles = new ReadHandles(64);

  constructor(
    readonly dataDir: string,
    private readonly opts: DataFilesOptions,
  ) {
    this.streamsDir = join(dataDir, 'streams');
  }

  /** The file the stream appends to now, if any. */
  current(streamId: number): Writer | undefined {
    return this.writers.get(streamId);
  }

  /** Writes chunks at the end of the stream's data file (a new one when due); the file is left clean on failure. */
  async append(streamId: number, chunks: Buffer[]): Promise<{ writer: Writer; offset: number; length: number }> {
    const writer = await this.writerFor(streamId);
    const offset = writer.size;
    const length = chunks.reduce((sum, c) => sum + c.length, 0);
    try {
      await writeAll(writer.handle, chunks, offset);
    } catch (err) {
      // Keep the file clean for the next fragment; if even that fails, give the file up.
      try {
        await writer.handle.truncate(offset);
      } catch (truncateErr) {
        this.opts.log.warn({ err: truncateErr, file: writer.relPath }, 'could not truncate a failed write');
        this.retire(writer);
      }
      throw err;
    }
    writer.size = offset + length;
    return { writer, offset, length };
  }

  private async writerFor(streamId: number): Promise<Writer> {
    const now = Date.now();
    const current = this.writers.get(streamId);
    if (current && current.size < this.opts.fileMaxBytes && now - current.createdMs < this.opts.fileMaxAgeMs) {
      return current;
    }
    if (current) this.retire(current);

    const fileId = this.nextFileId++;
    const dir = join(this.streamsDir, String(streamId));
    await mkdir(dir, { recursive: true });
    const dirsToSync = [this.streamsDir, dir]; // the stream folder's entry and the file's
    const relPath = dataFilePath(streamId, fileId);
    const handle = await open(join(this.dataDir, relPath), 'wx');
    const writer: Writer = { streamId, fileId, relPath, handle, size: 0, createdMs: now, indexed: false, dirsToSync };
    this.writers.set(streamId, writer);
    return writer;
  }

  /** Stops appending to a file. Its handle is closed by the next closeRetired. */
  retire(writer: Writer): void {
    if (this.writers.get(writer.streamId) === writer) this.writers.delete(writer.streamId);
    if (!this.retired.includes(writer)) this.retired.push(writer);
  }

  /** Retires the file the stream appends to, if any. */
  retireStream(streamId: number): void {
    const writer = this.writers.get(streamId);
    if (writer) this.retire(writer);
  }

  retireAll(): void {
    for (const writer of [...this.writers.values()]) this.retire(writer);
  }

  /** Closes retired files; ones that never got indexed hold nothing committed and are deleted. */
  closeRetired(): Promise<void> {
    return this.closeWriters(this.takeRetired());
  }

  /** The files retired so far, for closeWriters once no batch uses them. */
  takeRetired(): Writer[] {
    const retired = this.retired;
    this.retired = [];
    return retired;
  }

  /** Closes retired files (from takeRetired), deleting those never indexed. */
  async closeWriters(retired: Writer[]): Promise<void> {
    await Promise.all(
      retired.map(async (writer) => {
        try {
          await writer.handle.close();
          if (!writer.indexed) await unlink(join(this.dataDir, writer.relPath));
        } catch (err) {
          this.opts.log.warn({ err, file: writer.relPath }, 'could not release a data file');
        }
      }),
    );
  }

  /** The fragment's bytes as stored on disk (sealed ones still sealed). */
  read(f: StoredFragment): Promise<Buffer> {
    const path = join(this.dataDir, dataFilePath(f.streamId, f.fileId));
    return this.readHandles.use(f.fileId, path, async (handle) => {
      const buffer = Buffer.allocUnsafe(f.length);
      let done = 0;
      while (done < f.length) {
        const { bytesRead } = await handle.read(buffer, done, f.length - done, f.offset + done);
        if (bytesRead === 0) throw new Error(`fragment ${f.fragmentNumber} is truncated in ${path}`);
        done += bytesRead;
      }
      return buffer;
    });
  }

  /** Deletes a data file (its path relative to the data folder); a missing one is no error. */
  async remove(fileId: number, relPath: string): Promise<void> {
    this.readHandles.invalidate(fileId);
    await rm(join(this.dataDir, relPath), { force: true });
  }

  /** Deletes streams' folders with everything in them; fileIds: their files, whose read handles go. */
  async removeStreams(streamIds: number[], fileIds: number[]): Promise<void> {
    for (const fileId of fileIds) this.readHandles.invalidate(fileId);
    await Promise.all(
      streamIds.map((id) => rm(join(this.streamsDir, String(id)), { recursive: true, force: true })),
    );
  }

  async closeReadHandles(): Promise<void> {
    await this.readHandles.closeAll();
  }
}

/** fsyncs a directory, making the entries of files created in it durable. */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes all chunks at position, with one writev unless the kernel writes short. */
async function writeAll(handle: FileHandle, chunks: Buffer[], position: number): Promise<void> {
  let buffers = chunks.filter((c) => c.length > 0);
  while (buffers.length > 0) {
    const { bytesWritten } = await handle.writev(buffers, position);
    if (bytesWritten <= 0) throw new Error('write made no progress');
    position += bytesWritten;
    let skip = bytesWritten;
    while (buffers.length > 0 && skip >= buffers[0]!.length) skip -= buffers.shift()!.length;
    if (skip > 0) buffers[0] = buffers[0]!.subarray(skip);
  }
}
