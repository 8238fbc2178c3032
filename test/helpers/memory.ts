/**
 * Memory checks of start/stop cycles: RSS after a full garbage collection, so that garbage not
 * yet collected does not pass for a leak (vitest's workers do not run with --expose-gc).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** RSS in bytes after two full collections. */
export function rssAfterGc(): number {
  gc();
  gc();
  return process.memoryUsage().rss;
}
