/**
 * `npm run bench:relay`: CPU and RSS of `openkvs relay` per camera, relaying 1080p30 4 Mbps
 * H.264 (passthrough: depayload + parse, no re-encoding) for 1, 8 and 32 cameras.
 *
 * The cameras are one GstRtspServer (test/helpers/rtsp-server.py --file) serving a pre-encoded
 * 10 s clip in a loop, paced in real time, as one shared media that every camera pulls over
 * RTSP/TCP. The relay uploads to an openkvs server in its own process. Only the relay
 * process is measured (all its threads, from /proc), over a window after every camera is
 * streaming; the RTSP server and the openkvs server run on the same machine and share its cores.
 *
 *   npm run bench:relay [-- --cameras 1,8,32 --seconds 20]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ensureClip, clipDescription, type ClipSpec } from './lib/media.js';
import { CpuMeter, MachineCpuMeter, RssSampler } from './lib/proc.js';
import { startServerProcess } from './lib/server-process.js';
import { fmtNum, formatTable, numberList, repoRoot, sleep } from './lib/util.js';

const CLIP_1080P: ClipSpec = { width: 1920, height: 1080, fps: 30, kbps: 4000, seconds: 10 };
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

interface CameraStatus {
  name: string;
  state: string;
  reconnects: number;
  fragmentsPersisted: number;
  bitrateBps: number;
}

interface Row {
  cameras: number;
  cpuPct: number;
  rssMiB: number;
  uploadMbps: number;
  fragmentsPerSecond: number;
  reconnects: number;
  machinePct: number;
}

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1]! : fallback;
}

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function waitFor<T>(what: string, get: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await get().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

function accepts(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(undefined));
  });
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  await exited;
  clearTimeout(timer);
}

async function runCase(cameras: number, clip: string, seconds: number): Promise<Row> {
  const server = await startServerProcess();
  const rtspPort = await freePort();
  const rtsp = spawn(PYTHON, [path.join(repoRoot(), 'test/helpers/rtsp-server.py'), String(rtspPort), '--file', clip], { stdio: ['ignore', 'ignore', 'inherit'] });
  const dir = mkdtempSync(path.join(os.tmpdir(), 'openkvs-bench-relay-'));
  let relay: ChildProcess | undefined;
  try {
    await waitFor('the RTSP server', () => accepts(rtspPort), 60_000);
    const config = path.join(dir, 'cameras.json');
    writeFileSync(
      config,
      JSON.stringify({
        endpoint: server.url,
        region: 'us-east-1',
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
        cameras: Array.from({ length: cameras }, (_, i) => ({ name: `cam${i}`, url: `rtsp://127.0.0.1:${rtspPort}/cam`, streamName: `bench-relay-${i}`, noDataTimeoutSeconds: 20 })),
      }),
    );
    const statusPort = await freePort();
    relay = spawn(process.execPath, [path.join(repoRoot(), 'dist/lib/cli/main.js'), 'relay', '--config', config, '--status-port', String(statusPort)], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let log = '';
    relay.stderr!.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
    const status = async () => ((await (await fetch(`http://127.0.0.1:${statusPort}/status`)).json()) as { cameras: CameraStatus[] }).cameras;
    await waitFor(
      `${cameras} cameras streaming`,
      async () => ((await status()).filter((c) => c.state === 'streaming').length === cameras ? true : undefined),
      90_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}\n${log}`);
    });
    await sleep(5000); // warm-up
    const before = await status();
    const cpu = new CpuMeter([relay.pid!]);
    const machine = new MachineCpuMeter();
    const rss = new RssSampler(relay.pid!);
    cpu.start();
    machine.start();
    rss.start();
    const bitrates: number[] = [];
    const started = performance.now();
    while (performance.now() - started < seconds * 1000) {
      await sleep(1000);
      bitrates.push((await status()).reduce((sum, c) => sum + c.bitrateBps, 0));
    }
    const wall = (performance.now() - started) / 1000;
    rss.stop();
    const after = await status();
    const sum = (cs: CameraStatus[], f: (c: CameraStatus) => number) => cs.reduce((s, c) => s + f(c), 0);
    return {
      cameras,
      cpuPct: cpu.read(),
      rssMiB: rss.last / 2 ** 20,
      uploadMbps: bitrates.reduce((a, b) => a + b, 0) / bitrates.length / 1e6,
      fragmentsPerSecond: (sum(after, (c) => c.fragmentsPersisted) - sum(before, (c) => c.fragmentsPersisted)) / wall,
      reconnects: sum(after, (c) => c.reconnects),
      machinePct: machine.read(),
    };
  } finally {
    if (relay) await stopChild(relay);
    await stopChild(rtsp, 'SIGKILL');
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const counts = numberList(arg('cameras', '1,8,32'));
  const seconds = Number(arg('seconds', '20'));
  const clip = await ensureClip(CLIP_1080P);
  const cpus = os.cpus();
  const out = (line: string) => process.stdout.write(`${line}\n`);
  out(`openkvs relay benchmark: ${clipDescription(CLIP_1080P)} per camera, RTSP/TCP passthrough into an openkvs server`);
  out(`machine: ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM; measured ${seconds} s after a 5 s warm-up`);
  const rows: Row[] = [];
  for (const n of counts) {
    process.stderr.write(`${n} camera(s)…\n`);
    rows.push(await runCase(n, clip, seconds));
  }
  out('');
  out(
    formatTable(
      ['cameras', 'relay CPU %', 'CPU %/camera', 'RSS MiB', 'RSS MiB/camera', 'upload Mbit/s', 'fragments/s', 'reconnects', 'machine CPU %'],
      rows.map((r) => [
        String(r.cameras),
        fmtNum(r.cpuPct, 1),
        fmtNum(r.cpuPct / r.cameras, 2),
        fmtNum(r.rssMiB, 0),
        fmtNum(r.rssMiB / r.cameras, 1),
        fmtNum(r.uploadMbps, 1),
        fmtNum(r.fragmentsPerSecond, 1),
        String(r.reconnects),
        fmtNum(r.machinePct, 0),
      ]),
    ),
  );
  out('');
  out('CPU % is of one core (the machine has ' + cpus.length + '); machine CPU includes the RTSP server and the openkvs server.');
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:relay failed: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
