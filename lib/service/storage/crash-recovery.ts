import { mkdir, open, readdir, rmdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { syncDir, type StorageLog } from './data-files.js';
import type { FragmentIndex } from './fragment-index.js';

/**
 * Start-up repair of what a crash left behind, run before the store accepts work. It makes disk
 * and index agree: truncates torn tails past the last indexed fragment, drops index rows whose data
 * is missing, and deletes data files the index does not reference.
 */
export async function recoverFromCrash(dataDir: string, index: FragmentIndex, log: StorageLog): Promise<void> {
  const streamsDir = join(dataDir, 'streams');
  await mkdir(streamsDir, { recursive: true });
  await syncDir(dataDir);
  const known = new Set<string>();
  for (const file of index.allFiles()) {
    const path = join(dataDir, file.path);
    let size: number;
    try {
      size = (await stat(path)).size;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      const lost = index.dropFiles([file.id]);
      log.warn({ file: file.path, fragments: lost }, 'data file is missing; dropped its fragments');
      continue;
    }
    let end = index.fileEnd(file.id);
    if (end !== undefined && size < end) {
      const lost = index.dropFragmentsPastEnd(file.id, size);
      log.warn({ file: file.path, fragments: lost }, 'data file is shorter than its index; dropped its end');
      end = index.fileEnd(file.id);
    }
    if (end === undefined) {
      index.dropFiles([file.id]);
      await unlink(path);
      log.info({ file: file.path }, 'deleted a data file without indexed fragments');
      continue;
    }
    known.add(path);
    if (size > end) {
      const handle = await open(path, 'r+');
      try {
        await handle.truncate(end);
        await handle.datasync();
      } finally {
        await handle.close();
      }
      log.info({ file: file.path, bytes: size - end }, 'truncated a torn tail');
    }
  }
  await removeStrayFiles(streamsDir, known, log);
}

/** Deletes `.frag` files the index does not know, and stream folders left empty. */
async function removeStrayFiles(streamsDir: string, known: Set<string>, log: StorageLog): Promise<void> {
  for (const entry of await readdir(streamsDir, { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    const dir = join(streamsDir, entry.name);
    const names = await readdir(dir);
    let left = names.length;
    for (const name of names) {
      const path = join(dir, name);
      if (!name.endsWith('.frag') || known.has(path)) continue;
      await unlink(path);
      left--;
      log.info({ file: path }, 'deleted an unindexed data file');
    }
    if (left === 0) await rmdir(dir);
  }
}
