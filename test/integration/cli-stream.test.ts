/**
 * `openkvs stream` and `openkvs demo` (what `npm start` runs) as a user runs them: progress
 * lines, Ctrl-C drains, clear errors for bad input.
 */
import { spawn, spawnSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { listAllFragments, startTestServer, tempDir, type TestServer } from '../helpers/server.js';
import { awsEnv } from '../helpers/gst.js';

const CLI = 'dist/lib/cli/main.js';
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t?.close());

function runUntil(args: string[], until: RegExp) {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...awsEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const seen = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${until} in:\n${out}`)), 30_000);
    const on = (d: Buffer) => {
      out += d.toString();
      if (until.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return { child, seen, exited, output: () => out };
}

it('openkvs stream uploads a test source with a progress line and drains on Ctrl-C', async () => {
  const run = runUntil(['stream', '--source', 'test', '--stream-name', 'cli-test', '--endpoint', t.url, '--region', 'us-east-1'], /persisted [2-9]/);
  await run.seen;
  run.child.kill('SIGINT');
  expect(await run.exited, run.output()).toBe(0);
  expect(run.output()).toMatch(/persisted \d+ \| bitrate [\d.]+ kbit\/s \| buffered/);
  expect(run.output()).toMatch(/draining/);
  const listed = await listAllFragments(t.archived, 'cli-test');
  const last = Number(/persisted (\d+)(?![\s\S]*persisted \d)/.exec(run.output())![1]);
  expect(listed.length).toBeGreaterThanOrEqual(last);
});

it('openkvs stream refuses an unknown source with a clear message', () => {
  const r = spawnSync(process.execPath, [CLI, 'stream', '--source', 'webcam', '--stream-name', 'x', '--endpoint', t.url], { encoding: 'utf8' });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/unknown --source "webcam": expected test, file:PATH, rtsp:\/\/… or v4l2:\/dev\/videoN/);
});

it('openkvs demo (npm start) serves, streams the demo camera, and stops cleanly on Ctrl-C', async () => {
  const run = runUntil(['demo', '--port', '0', '--data-dir', tempDir()], /persisted [2-9]/);
  await run.seen;
  expect(run.output()).toMatch(/openkvs listening on http:\/\/127\.0\.0\.1:\d+/);
  expect(run.output()).toMatch(/get-media --endpoint-url http:\/\/127\.0\.0\.1:\d+ --stream-name demo/);
  run.child.kill('SIGINT');
  expect(await run.exited, run.output()).toBe(0);
  expect(run.output()).toMatch(/stopped/);
});
