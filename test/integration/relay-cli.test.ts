/**
 * `openkvs relay` as a user runs it: a bad config is refused with the field named; SIGHUP
 * removes one camera and adds another while the unchanged one keeps streaming; a bad config on
 * SIGHUP keeps the running one; SIGTERM drains and exits 0.
 */
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CameraStatus } from '../../lib/relay/camera.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp-server.js';
import { credentials, freePort, listAllFragments, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

const CLI = 'dist/lib/cli/main.js';
let t: TestServer;
let cams: RtspServer[] = [];
const dir = tempDir('openkvs-relay-cli-');

beforeAll(async () => {
  t = await startTestServer();
  cams = await Promise.all([startRtspServer(), startRtspServer()]);
});
afterAll(async () => {
  await Promise.all(cams.map((c) => c.stop()));
  await t?.close();
});

const keys = { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey };

function writeConfig(file: string, cameras: Array<Record<string, unknown>>): string {
  const full = path.join(dir, file);
  writeFileSync(full, JSON.stringify({ endpoint: t.url, region: 'us-east-1', credentials: keys, cameras }, null, 2));
  return full;
}

function refuses(file: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'relay', '--config', file], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status, stderr: r.stderr };
}

it('refuses a config with a bad URL or a missing field, naming the field, with a non-zero exit', () => {
  const badUrl = refuses(writeConfig('bad-url.json', [{ name: 'x', url: 'http://10.0.0.5/stream1', streamName: 'x' }]));
  expect(badUrl.status).not.toBe(0);
  expect(badUrl.stderr).toContain('cameras[0].url: expected an rtsp:// or rtsps:// URL');
  const yaml = path.join(dir, 'missing.yaml');
  writeFileSync(yaml, 'cameras:\n  - name: lobby\n    url: rtsp://10.0.0.5/stream1\n');
  const missing = refuses(yaml);
  expect(missing.status).not.toBe(0);
  expect(missing.stderr).toContain(`${yaml}: cameras[0].streamName: is required`);
});

async function until<T>(what: string, get: () => Promise<T>, cond: (v: T) => boolean, timeoutMs = 25_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get().catch(() => undefined);
    if (v !== undefined && cond(v)) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function lastServerTimestamp(stream: string): Promise<number> {
  return Math.max(0, ...(await listAllFragments(t.archived, stream)).map((f) => f.ServerTimestamp!.getTime()));
}

it('SIGHUP removes a camera and adds another; the unchanged one is untouched; SIGTERM drains and exits 0', async () => {
  const x = { name: 'x', url: cams[0]!.url, streamName: 'cli-x' };
  const y = { name: 'y', url: cams[1]!.url, streamName: 'cli-y' };
  const z = { name: 'z', url: cams[0]!.url, streamName: 'cli-z' };
  const config = writeConfig('cameras.json', [x, y]);
  const statusPort = await freePort();
  const child = spawn(process.execPath, [CLI, 'relay', '--config', config, '--status-port', String(statusPort)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const cameras = async () =>
    ((await (await fetch(`http://127.0.0.1:${statusPort}/status`, { signal: AbortSignal.timeout(5_000) })).json()) as { cameras: CameraStatus[] }).cameras;
  try {
    const started = await until('x and y streaming', cameras, (cs) => cs.length === 2 && cs.every((c) => c.state === 'streaming' && c.fragmentsPersisted >= 2));

    // Untouched is judged from here: a camera may reconnect while it starts on a loaded machine.
    const yStarted = started.find((c) => c.name === 'y')!;
    if (yStarted.reconnects > 0) console.warn(`y reconnected while starting (${yStarted.lastError}):\n${out}`);

    // A bad config on SIGHUP is reported; the running cameras go on.
    writeConfig('cameras.json', [x, { ...y, url: 'rtsp:/' }]);
    child.kill('SIGHUP');
    await until('the reload failure', async () => out, (o) => /reload failed, keeping the running config: .*cameras\[1\]\.url: expected an rtsp/.test(o));

    writeConfig('cameras.json', [y, z]);
    const yBefore = (await cameras()).find((c) => c.name === 'y')!;
    child.kill('SIGHUP');
    await until('the reload', async () => out, (o) => /reloaded .*added \[z\], removed \[x\], restarted \[\], unchanged \[y\]/.test(o));
    const reloadedAt = Date.now();
    const after = await until('z streaming', cameras, (cs) => cs.some((c) => c.name === 'z' && c.state === 'streaming' && c.fragmentsPersisted >= 2));
    expect(after.map((c) => c.name).sort()).toEqual(['y', 'z']);
    const yAfter = after.find((c) => c.name === 'y')!;
    expect(yAfter.reconnects, `y reconnected (${yAfter.lastError}):\n${out}`).toBe(yStarted.reconnects);
    expect(yAfter.fragmentsPersisted).toBeGreaterThan(yBefore.fragmentsPersisted);
    // x drained and stopped at the reload: nothing reached its stream afterwards.
    expect(await lastServerTimestamp('cli-x')).toBeLessThan(reloadedAt);
    expect(await lastServerTimestamp('cli-z')).toBeGreaterThan(reloadedAt - 1000);
  } finally {
    child.kill('SIGTERM');
  }
  const stopped = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('still running 20 s after SIGTERM'), 20_000))]);
  if (typeof stopped === 'string') child.kill('SIGKILL');
  expect(stopped, out).toBe(0);
  expect(out).toMatch(/SIGTERM: draining every camera/);
  expect(out).toMatch(/stopped\n$/);
});
