/** Small helpers shared by the benchmark processes: clock, percentiles, table formatting. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

/**
 * Wall-clock time in epoch milliseconds with sub-millisecond resolution. Every bench process uses
 * it, so timestamps taken in different processes on this machine can be compared.
 */
export const nowMs = (): number => performance.timeOrigin + performance.now();

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** The repository root (the folder holding package.json above this file). */
export function repoRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error('package.json not found above the bench scripts');
    dir = up;
  }
}

export interface Summary {
  n: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array (NaN when empty). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** p50/p99/max of the values; values may include Infinity (a sample that never completed). */
export function summarize(values: readonly number[]): Summary {
  const sorted = Float64Array.from(values).sort();
  const arr = Array.from(sorted);
  let sum = 0;
  let finite = 0;
  for (const v of arr) {
    if (Number.isFinite(v)) {
      sum += v;
      finite++;
    }
  }
  return {
    n: arr.length,
    p50: percentile(arr, 50),
    p99: percentile(arr, 99),
    max: arr.length ? arr[arr.length - 1]! : NaN,
    mean: finite ? sum / finite : NaN,
  };
}

/** Milliseconds for a table cell: "12.3", "lost" for Infinity, "-" for NaN. */
export function fmtMs(v: number, digits = 1): string {
  if (Number.isNaN(v)) return '-';
  if (!Number.isFinite(v)) return 'lost';
  return v >= 1000 ? v.toFixed(0) : v.toFixed(digits);
}

export function fmtNum(v: number, digits = 1): string {
  return Number.isFinite(v) ? v.toFixed(digits) : '-';
}

/** A plain-text table: a header row, a rule, and rows; numeric-looking cells align right. */
export function formatTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const numeric = headers.map((_, i) => rows.length > 0 && rows.every((r) => /^[-<>~]?[0-9.,]+%?$|^-$|^lost$/.test(r[i] ?? '')));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (numeric[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

/** Parses "25,50,100" into numbers. */
export function numberList(text: string): number[] {
  const out = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (out.length === 0 || out.some((n) => !Number.isFinite(n) || n <= 0)) throw new Error(`expected a list of positive numbers, got "${text}"`);
  return out;
}
