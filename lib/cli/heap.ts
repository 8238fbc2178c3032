/**
 * V8 heap tuning of the server process. Ingest reads a few hundred MB/s through socket buffers,
 * cipher output and file writes, all memory outside the JavaScript heap; with V8's default growing
 * factor that external churn set off a full garbage collection every 30–50 ms at 600 streams
 * (about a quarter of the event loop's time). Letting the heap grow to 5× what the last full
 * collection kept (the heap itself stays small, ~30 MB live) spaces them ~200 ms apart.
 * Process-wide, so the CLI applies it, not startServer() (embedders keep their own settings).
 */
import v8 from 'node:v8';

export const HEAP_GROWING_PERCENT = 400;

export function tuneHeapForIngest(): void {
  if (process.execArgv.some((a) => a.startsWith('--heap-growing-percent'))) return; // the user's own choice
  v8.setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
}
