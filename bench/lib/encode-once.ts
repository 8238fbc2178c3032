/**
 * Bench input clips: encoded once by gst-launch-1.0 and cached under `.bench-cache/` in the
 * repository (delete a file there to have it encoded again).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { repoRoot } from './util.js';

const run = promisify(execFile);

/** `.bench-cache/<name>`, written first by `gst-launch-1.0 gstArgs(location)` when it is missing. */
export async function encodeOnce(name: string, gstArgs: (location: string) => string[], log?: (msg: string) => void): Promise<string> {
  const dir = path.join(repoRoot(), '.bench-cache');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, name);
  if (existsSync(file)) return file;
  const tmp = `${file}.${process.pid}.tmp`;
  log?.(`encoding a bench clip (once): ${path.relative(repoRoot(), file)}`);
  try {
    await run('gst-launch-1.0', gstArgs(tmp), { maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    rmSync(tmp, { force: true });
    throw new Error(`gst-launch-1.0 failed to encode ${name} (is GStreamer with x264enc installed?): ${(err as Error).message}`);
  }
  renameSync(tmp, file);
  return file;
}
