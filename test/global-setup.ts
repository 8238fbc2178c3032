/**
 * Builds what the tests run: the compiled CLI (for `openkvs serve` in child processes; `npm test`
 * builds first, a direct `npx vitest` builds here when dist/ is stale), kvssink, the
 * sanitizer build of the C++ unit tests, and the Node addon (all incremental).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const cli = 'dist/lib/cli/main.js';
  if (!existsSync(cli) || statSync(cli).mtimeMs < newest('lib')) {
    execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json'], { stdio: 'inherit' });
  }
  // kvssink for the gst-launch tests, and the sanitizer build of the C++ unit tests
  // (incremental: quick when nothing changed).
  execFileSync('bash', ['scripts/build-plugin.sh', 'release'], { stdio: 'inherit' });
  execFileSync('bash', ['scripts/build-plugin.sh', 'asan'], { stdio: 'inherit' });
  execFileSync('bash', ['scripts/build-addon.sh'], { stdio: 'inherit' });
}
