/**
 * Tests that run `openkvs serve` in a child process need the compiled CLI. `npm test` builds
 * first; a direct `npx vitest` builds here when dist/ is missing or older than the sources.
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
}
