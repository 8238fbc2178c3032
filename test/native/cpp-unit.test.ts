/**
 * The C++ unit tests of gst-plugin/ (GoogleTest), built with AddressSanitizer and
 * UndefinedBehaviorSanitizer by the global setup, each reported here as its own test.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

interface GTestCase {
  name: string;
  failures?: Array<{ failure: string }>;
}
interface GTestReport {
  testsuites: Array<{ name: string; testsuite: GTestCase[] }>;
}

const dir = path.resolve('cmake-build/asan/gst-plugin');
const binaries = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('_tests')) : [];

describe('C++ unit tests under ASan/UBSan', () => {
  it('were built', () => {
    expect(binaries.length).toBeGreaterThan(0);
  });
  for (const bin of binaries) {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'gtest-')), 'report.json');
    const run = spawnSync(path.join(dir, bin), [`--gtest_output=json:${out}`], {
      encoding: 'utf8',
      env: { ...process.env, ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=0', UBSAN_OPTIONS: 'print_stacktrace=1' },
      timeout: 600_000,
    });
    const report: GTestReport | undefined = existsSync(out) ? JSON.parse(readFileSync(out, 'utf8')) : undefined;
    describe(bin, () => {
      it('exits cleanly (no sanitizer report, no leak)', () => {
        expect(run.status, `${run.stdout}\n${run.stderr}`.slice(-6000)).toBe(0);
        expect(run.stderr).not.toMatch(/ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:/);
      });
      for (const suite of report?.testsuites ?? []) {
        for (const tc of suite.testsuite) {
          it(`${suite.name}.${tc.name}`, () => {
            expect(tc.failures?.map((f) => f.failure) ?? []).toEqual([]);
          });
        }
      }
    });
  }
});
