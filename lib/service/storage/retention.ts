import type { DataFiles, StorageLog } from './data-files.js';
import type { DataKeys } from './fragment-cipher.js';
import type { FileRow, FragmentIndex } from './fragment-index.js';

export interface SweepResult {
  filesDeleted: number;
  fragmentsDeleted: number;
}

export interface RetentionOptions {
  index: FragmentIndex;
  files: DataFiles;
  /** A stream's retention; 0 keeps only the live buffer (liveBufferMs); undefined: the stream is gone. */
  retentionMs: (streamId: number) => number | undefined;
  /** What retention 0 keeps. */
  liveBufferMs: number;
  /** A deleted stream's data key is forgotten here too. */
  dataKeys: DataKeys | undefined;
  log: StorageLog;
}

/**
 * Expiry and deletion: whole data files go once their newest fragment is past the stream's
 * retention, and every file of a stream that is gone. Each call must run alone (a store task).
 */
export class Retention {
  constructor(private readonly opts: RetentionOptions) {}

  /** Deletes whole data files whose newest fragment is older than the cutoff, and streams that are gone. */
  async sweep(now: number): Promise<SweepResult> {
    const { index, files, log } = this.opts;
    const gone: number[] = [];
    const expired: FileRow[] = [];
    for (const streamId of index.streamsWithFiles()) {
      const retention = this.opts.retentionMs(streamId);
      if (retention === undefined) {
        gone.push(streamId);
        continue;
      }
      const cutoff = now - (retention === 0 ? this.opts.liveBufferMs : retention);
      const current = files.current(streamId);
      // Oldest first; stop at the first file still holding unexpired data.
      for (const file of index.filesOfStream(streamId)) {
        const isCurrent = file.id === current?.fileId;
        const newest = index.newestInFile(file.id);
        const keep = newest === null ? isCurrent : newest >= cutoff;
        if (keep) break;
        expired.push(file);
        if (current && isCurrent) files.retire(current); // rotate first: it is deleted below
      }
    }

    let fragmentsDeleted = 0;
    if (expired.length > 0) {
      fragmentsDeleted = index.dropFiles(expired.map((file) => file.id));
      await files.closeRetired();
      await Promise.all(expired.map((file) => files.remove(file.id, file.path)));
    }
    const removed = await this.removeStreams(gone);
    const result = {
      filesDeleted: expired.length + removed.filesDeleted,
      fragmentsDeleted: fragmentsDeleted + removed.fragmentsDeleted,
    };
    if (result.filesDeleted > 0) log.info(result, 'retention sweep');
    return result;
  }

  /** Deletes streams' index rows and data keys (one transaction), then their folders. */
  async removeStreams(streamIds: number[]): Promise<SweepResult> {
    if (streamIds.length === 0) return { filesDeleted: 0, fragmentsDeleted: 0 };
    const { index, files } = this.opts;
    for (const streamId of streamIds) files.retireStream(streamId);
    const dropped = index.dropStreams(streamIds);
    for (const streamId of streamIds) this.opts.dataKeys?.forget(streamId);
    await files.closeRetired();
    await files.removeStreams(
      streamIds,
      dropped.files.map((file) => file.id),
    );
    return { filesDeleted: dropped.files.length, fragmentsDeleted: dropped.fragmentsDeleted };
  }
}
