/**
 * `npm run bench:server` — server benchmark of openkvs.
 *
 *   1. PERSISTED latency: 1 stream (~2 Mbps), frames written at their real time (30 fps), 1 s
 *      fragments; from the moment a fragment's last byte has left the client socket to its
 *      PERSISTED ack.
 *   2. Ingest capacity: N concurrent ~4 Mbps streams (1 s fragments, whole fragments written at
 *      their due time, streams staggered across the second) against a server in its own process,
 *      load from forked generator processes; N is stepped up until PERSISTED p99 reaches 100 ms
 *      (or fragments are lost, or the generator cannot keep up).
 *   3. GetMedia live latency: frame written by the producer -> frame's bytes read by a live
 *      GetMedia (NOW) reader, with 1 and 50 readers on one stream.
 *
 * Each section runs once per security mode (--security off,on): `off` = plain HTTP, anonymous,
 * no encryption at rest; `on` = HTTPS with the server's own certificate, every request
 * SigV4-signed, fragments encrypted at rest (and decrypted for GetMedia). A last table compares
 * the two. `--security at-rest` adds a run with encryption at rest only (plain, anonymous).
 *
 * Flags: --quick, --only latency,capacity,getmedia, --security off,on, --steps 25,50,..., --step-seconds N,
 * --warmup-seconds N, --latency-seconds N, --getmedia-seconds N, --readers 1,50, --workers N,
 * --no-refine, --server-prof DIR (run the capacity servers with --cpu-prof into DIR),
 * --server-node-args="ARGS" (extra node flags for the capacity servers), --server-log FILE,
 * --server-main PATH (run another build of the CLI, e.g. a patched copy of dist/, to compare),
 * --repeat N (the capacity section N times, the security modes taking turns in each round, so
 * that a drifting machine affects every mode alike; the comparison uses the medians).
 * The server inherits the environment (e.g. UV_THREADPOOL_SIZE).
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { FramePacedWriter } from './lib/frame-writer.js';
import { openGetMediaReader, type GetMediaReader } from './lib/get-media-reader.js';
import { createStream, createStreams } from './lib/kvs.js';
import { CLIP_2MBPS, CLIP_4MBPS, type Clip, type ClipSpec, clipDescription, ensureClip, loadClip } from './lib/media.js';
import { CpuMeter, MachineCpuSplitMeter, QuietWaiter, RssSampler } from './lib/proc.js';
import type { FromWorker, ResultMessage, ToWorker, WorkerStream } from './lib/protocol.js';
import { openRequest, postJson, requestHeaders, type SecurityMode } from './lib/security.js';
import { type ServerProcess, startServerProcess } from './lib/server-process.js';
import { fmtMs, fmtNum, formatTable, nowMs, numberList, sleep, summarize } from './lib/util.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const HOST = '127.0.0.1';
const P99_LIMIT_MS = 100;
/** The generator is "not keeping up" when it issues writes this late (p99). */
const GEN_LAG_LIMIT_MS = 50;
/** A failed capacity step is re-run once when other processes used more than this much CPU (% of one core). */
const NOISY_OTHER_CPU = 25;

// ---- options --------------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    security: { type: 'string' },
    steps: { type: 'string' },
    'step-seconds': { type: 'string' },
    'warmup-seconds': { type: 'string' },
    'latency-seconds': { type: 'string' },
    'getmedia-seconds': { type: 'string' },
    readers: { type: 'string' },
    workers: { type: 'string' },
    'no-refine': { type: 'boolean', default: false },
    'server-prof': { type: 'string' },
    'server-node-args': { type: 'string' },
    'server-log': { type: 'string' },
    'server-main': { type: 'string' },
    repeat: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});

if (flags.help) {
  process.stdout.write(
    [
      'usage: node dist/bench/server.js [--quick] [--only latency,capacity,getmedia] [--security off,on]',
      '         [--steps 25,50,100,...] [--step-seconds 15] [--warmup-seconds 5]',
      '         [--latency-seconds 30] [--getmedia-seconds 15] [--readers 1,50] [--workers 2]',
      '         [--no-refine] [--server-prof DIR] [--server-node-args="--trace-gc ..."] [--server-log FILE]',
      '         [--server-main PATH]   (another build of dist/lib/cli/main.js, to compare a patch)',
      '         [--repeat N]           (capacity N times, modes taking turns; medians compared)',
      '',
    ].join('\n'),
  );
  process.exit(0);
}

const quick = flags.quick;
const cfg = {
  sections: new Set((flags.only ?? 'latency,capacity,getmedia').split(',').map((s) => s.trim())),
  modes: (flags.security ?? 'off,on').split(',').map((s) => s.trim()) as SecurityMode[],
  steps: numberList(flags.steps ?? (quick ? '25,100,300' : '25,50,100,200,300,400,500,600,800,1000')),
  stepSeconds: Number(flags['step-seconds'] ?? (quick ? 8 : 15)),
  // Long enough for every stream's connection (and TLS handshake) to settle before measuring.
  warmupSeconds: Number(flags['warmup-seconds'] ?? (quick ? 4 : 6)),
  latencySeconds: Number(flags['latency-seconds'] ?? (quick ? 10 : 30)),
  getMediaSeconds: Number(flags['getmedia-seconds'] ?? (quick ? 8 : 15)),
  readers: numberList(flags.readers ?? '1,50'),
  workers: Number(flags.workers ?? 2),
  refine: !flags['no-refine'],
  serverProf: flags['server-prof'],
  serverNodeArgs: (flags['server-node-args'] ?? '').split(' ').filter((a) => a !== ''),
  serverLog: flags['server-log'],
  serverMain: flags['server-main'],
  repeat: Number(flags.repeat ?? 1),
  /** Stop starting capacity steps once the run of one security mode would exceed this. */
  budgetSeconds: quick ? 150 : 570,
};
if (!Number.isInteger(cfg.repeat) || cfg.repeat < 1) throw new Error(`--repeat: expected a positive integer, got "${flags.repeat}"`);
for (const m of cfg.modes) {
  if (m !== 'off' && m !== 'on' && m !== 'at-rest') throw new Error(`--security: unknown mode "${m}" (expected off, at-rest, on)`);
}
const MODE_TEXT: Record<SecurityMode, string> = {
  off: 'security off: http, anonymous, no encryption at rest',
  'at-rest': 'encryption at rest only: http, anonymous, AES-256-GCM at rest',
  on: 'security on: https (TLS 1.3, own certificate), SigV4 on every request, AES-256-GCM at rest',
};
/** Headline figures per mode, for the comparison table at the end. */
interface Headline {
  latencyP99?: number;
  /** Per capacity round: what passed, as text, and the last passing step (0: not even the first). */
  capacity: { text: string; pass: number }[];
  getMediaP99?: Map<number, number>;
  storedMbPerS?: number;
}
const headline: Record<SecurityMode, Headline> = { off: { capacity: [] }, 'at-rest': { capacity: [] }, on: { capacity: [] } };
for (const s of cfg.sections) {
  if (!['latency', 'capacity', 'getmedia'].includes(s)) throw new Error(`--only: unknown section "${s}"`);
}

const runStart = nowMs();
const elapsedS = () => (nowMs() - runStart) / 1000;
const progress = (msg: string) => process.stderr.write(`[${elapsedS().toFixed(0).padStart(4)} s] ${msg}\n`);
const out = (text = '') => process.stdout.write(`${text}\n`);

function header(clips: Clip[]): void {
  const cpus = os.cpus();
  out('openkvs server benchmark');
  out(`machine:  ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}`);
  out(`node:     ${process.version}`);
  out(`command:  node ${path.relative(process.cwd(), process.argv[1]!) || process.argv[1]} ${process.argv.slice(2).join(' ')}`.trimEnd());
  out(`date:     ${new Date().toISOString()}`);
  for (const c of clips) {
    out(`media:    ${clipDescription(c.spec)} (${c.mbps.toFixed(2)} Mbit/s measured, ${c.fragments.length} fragments of ~${Math.round(c.durationMs / c.fragments.length)} ms) — ${path.basename(c.file)}`);
  }
  out('server:   node dist/lib/cli/main.js serve --port 0 --data-dir <tmp> --log-level warn (own process, fresh data dir per test)');
  out('          security off: + --no-encryption; security on: + --tls auto --access-key ID:SECRET (clients verify the certificate and sign with SigV4)');
  out('network:  loopback only (127.0.0.1); the server and the load generators share the same cores.');
  out();
}

/** Other processes share this machine: wait (a bounded time, 90 s in all) until they use less than 30 % of one core. */
const quiet = new QuietWaiter({ belowPct: 30, sampleMs: 1000, budgetMs: quick ? 20_000 : 90_000, progress });
const waitForQuiet = () => quiet.wait(quick ? 5_000 : 20_000);

/** CPU of the server, of this process, and of the whole machine over a window, % of one core. */
class LoadMeter {
  private readonly server: CpuMeter;
  private readonly machine = new MachineCpuSplitMeter();
  private self: NodeJS.CpuUsage | undefined;
  private wall = 0;
  constructor(serverPid: number) {
    this.server = new CpuMeter([serverPid]);
  }

  start(): void {
    this.server.start();
    this.machine.start();
    this.self = process.cpuUsage();
    this.wall = performance.now();
  }

  /**
   * server, this process, kernel (irq/softirq — loopback TCP —, kernel threads such as writeback, steal),
   * and other = the rest of the machine minus `bench` (CPU of further bench processes): other work on this machine.
   */
  read(bench = 0): { server: number; self: number; kernel: number; other: number } {
    const d = process.cpuUsage(this.self);
    const wall = performance.now() - this.wall;
    const server = this.server.read();
    const self = ((d.user + d.system) / 1000 / wall) * 100;
    const m = this.machine.read();
    return { server, self, kernel: m.kernel, other: Math.max(0, m.busy - m.kernel - server - self - bench) };
  }
}

// ---- 1. PERSISTED latency, one stream --------------------------------------------------------

async function persistedLatency(clip: Clip, mode: SecurityMode): Promise<void> {
  progress(`1. PERSISTED latency (security ${mode}): 1 stream, ${cfg.latencySeconds} s`);
  await waitForQuiet();
  const server = await startServerProcess({ main: cfg.serverMain, security: mode });
  const warmupFragments = 2;
  try {
    const name = 'latency-1';
    await createStream(server.url, name, server.security);
    const writer = new FramePacedWriter({
      host: HOST,
      port: server.port,
      security: server.security,
      streamName: name,
      clip,
      startAt: nowMs() + 300,
      fragments: cfg.latencySeconds,
    });
    await writer.open();
    const cpu = new LoadMeter(server.pid);
    cpu.start();
    await writer.run();
    await writer.settle(5_000);
    const load = cpu.read();
    await writer.close();
    const records = [...writer.records.values()].sort((a, b) => a.timecode - b.timecode).slice(warmupFragments);
    const lat = records.map((r) =>
      r.persistedAt !== undefined && r.lastWriteDone !== undefined ? Math.max(0, r.persistedAt - r.lastWriteDone) : Infinity,
    );
    const s = summarize(lat);
    const lag = summarize(writer.lateness);
    headline[mode].latencyP99 = s.p99;
    out(`1. PERSISTED latency — last byte of a fragment leaves the client socket -> its PERSISTED ack (${MODE_TEXT[mode]})`);
    out(
      formatTable(
        ['streams', 'Mbps', 'fragments', 'p50 ms', 'p99 ms', 'max ms', 'lost', 'server CPU %', 'kernel CPU %', 'other CPU %', 'errors'],
        [[
          '1',
          fmtNum(clip.mbps, 2),
          String(s.n),
          fmtMs(s.p50),
          fmtMs(s.p99),
          fmtMs(s.max),
          String(lat.filter((v) => !Number.isFinite(v)).length),
          fmtNum(load.server),
          fmtNum(load.kernel, 0),
          fmtNum(load.other, 0),
          writer.errors.length ? writer.errors.slice(0, 3).join('; ') : '-',
        ]],
      ),
    );
    out(
      `   frames written one by one at 30 fps (real time), 1 s fragments, ABSOLUTE timecodes; first ${warmupFragments} fragments are warm-up;` +
        ` writer lateness p99 ${fmtMs(lag.p99)} ms.`,
    );
    out(`   p99 of ${s.n} samples is (close to) their maximum.`);
    out();
  } finally {
    await server.stop();
  }
}

// ---- 2. ingest capacity ----------------------------------------------------------------------

interface StepResult {
  streams: number;
  offeredMbps: number;
  ingestedMbps: number;
  lat: ReturnType<typeof summarize>;
  e2e: ReturnType<typeof summarize>;
  writeP99: number;
  lagP99: number;
  loopP99: number;
  serverCpu: number;
  /** irq/softirq (loopback TCP), kernel threads (writeback, …) and steal, % of one core. */
  kernelCpu: number;
  /** Machine CPU used by neither the server, the bench nor the kernel: other work on this machine, % of one core. */
  otherCpu: number;
  serverRssMb: number;
  genCpu: number;
  lost: number;
  /** NOISY: failed while other processes on the machine used a lot of CPU; the step was re-run. */
  verdict: 'ok' | 'FAIL' | 'GEN-LIMITED' | 'NOISY';
  reason: string;
}

function waitMessage<T extends FromWorker['type']>(child: ChildProcess, type: T, timeoutMs: number): Promise<Extract<FromWorker, { type: T }>> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker ${child.pid}: no "${type}" message in time`)), timeoutMs);
    const onMessage = (m: FromWorker) => {
      if (m.type !== type) return;
      clearTimeout(timer);
      child.off('message', onMessage);
      resolve(m as Extract<FromWorker, { type: T }>);
    };
    child.on('message', onMessage);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker ${child.pid} exited (${code}) before "${type}"`));
    });
  });
}

async function capacityStep(n: number, clip: Clip, spec: ClipSpec, mode: SecurityMode): Promise<StepResult> {
  const nodeArgs: string[] = [...cfg.serverNodeArgs];
  if (cfg.serverProf) {
    mkdirSync(cfg.serverProf, { recursive: true });
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${path.resolve(cfg.serverProf)}`, `--cpu-prof-name=server-${mode}-${n}-streams.cpuprofile`);
  }
  const server: ServerProcess = await startServerProcess({ nodeArgs, logFile: cfg.serverLog, main: cfg.serverMain, security: mode });
  const workers: ChildProcess[] = [];
  try {
    const names = Array.from({ length: n }, (_, i) => `cap-${n}-${i}`);
    await createStreams(server.url, names, server.security);
    const W = Math.max(1, Math.min(cfg.workers, n));
    const F = clip.fragments.length;
    for (let w = 0; w < W; w++) {
      workers.push(fork(path.join(here, 'load-worker.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    }
    const ready = workers.map((child, w) => {
      const streams: WorkerStream[] = [];
      for (let g = w; g < n; g += W) streams.push({ name: names[g]!, offsetMs: (g * 1000) / n, clipStart: g % F });
      const p = waitMessage(child, 'ready', 120_000);
      child.send({ type: 'prepare', host: HOST, port: server.port, security: server.security, clipFile: clip.file, clipSpec: spec, streams } satisfies ToWorker);
      return p;
    });
    const readies = await Promise.all(ready);
    const connected = readies.reduce((s, r) => s + r.connected, 0);
    if (connected < n) throw new Error(`only ${connected}/${n} PutMedia connections opened: ${readies.flatMap((r) => r.errors).join('; ')}`);

    const warmupMs = cfg.warmupSeconds * 1000;
    const measureMs = cfg.stepSeconds * 1000;
    const drainMs = 5_000;
    const t0 = nowMs() + 500;
    const results = workers.map((child) => waitMessage(child, 'result', warmupMs + measureMs + drainMs + 60_000));
    for (const child of workers) child.send({ type: 'go', t0, warmupMs, measureMs, drainMs } satisfies ToWorker);

    const cpu = new LoadMeter(server.pid);
    const rss = new RssSampler(server.pid);
    await sleep(t0 + warmupMs - nowMs());
    cpu.start();
    rss.start();
    await sleep(t0 + warmupMs + measureMs - nowMs());
    const loadAt = cpu.read();
    rss.stop();
    const res: ResultMessage[] = await Promise.all(results);
    const genCpu = res.reduce((s, r) => s + r.cpuPercent, 0); // as the workers measured it over the window
    const load = { ...loadAt, other: Math.max(0, loadAt.other - genCpu) };

    const lost = res.reduce((s, r) => s + r.lost, 0);
    const slowest = res.flatMap((r) => r.slowest).sort((a, b) => b[1] - a[1]).slice(0, 8);
    progress(`   slowest: ${slowest.map(([t, l]) => `${(t / 1000).toFixed(2)}s:${l.toFixed(0)}ms`).join(' ')}`);
    const latencies = [...res.flatMap((r) => r.latencies), ...Array<number>(lost).fill(Infinity)];
    const lat = summarize(latencies);
    const e2e = summarize([...res.flatMap((r) => r.endToEnd), ...Array<number>(lost).fill(Infinity)]);
    const writeP99 = summarize(res.flatMap((r) => r.writeMs)).p99;
    const lagP99 = summarize(res.flatMap((r) => r.lateness)).p99;
    const loopP99 = Math.max(...res.map((r) => r.loopDelayP99Ms));
    const errorAcks = res.reduce((s, r) => s + r.errorAcks, 0);
    const connErrors = res.flatMap((r) => r.connectionErrors);
    const seconds = measureMs / 1000;
    const offeredMbps = (res.reduce((s, r) => s + r.offeredBytes, 0) * 8) / seconds / 1e6;
    const ingestedMbps = (res.reduce((s, r) => s + r.persistedBytes, 0) * 8) / seconds / 1e6;

    const reasons: string[] = [];
    if (lat.p99 >= P99_LIMIT_MS) reasons.push(`p99 >= ${P99_LIMIT_MS} ms`);
    if (lost > 0) reasons.push(`${lost} fragments without PERSISTED`);
    if (errorAcks > 0) reasons.push(`${errorAcks} ERROR acks (${res.flatMap((r) => r.errorSamples).slice(0, 2).join(', ')})`);
    if (connErrors.length > 0) reasons.push(`connections closed: ${connErrors[0]}`);
    if (writeP99 >= P99_LIMIT_MS) reasons.push(`socket writes p99 ${fmtMs(writeP99)} ms (server not reading fast enough)`);
    // A server-side failure stands even when the generator was late too (a late generator offers
    // less load, not more); a pass with a late generator proves nothing: GEN-LIMITED.
    let verdict: StepResult['verdict'] = reasons.length ? 'FAIL' : 'ok';
    if (lagP99 > GEN_LAG_LIMIT_MS) {
      const busy = load.server + genCpu + load.kernel + load.other + load.self;
      const why = busy > 180 ? `the machine's CPU was saturated (${fmtNum(busy, 0)} % of 200 %)` : `generator CPU ${fmtNum(genCpu, 0)} %`;
      reasons.push(`generator issued writes ${fmtMs(lagP99)} ms late (p99): ${why}`);
      if (verdict === 'ok') verdict = 'GEN-LIMITED';
    }
    const logLines = server.logLines();
    if (logLines > 0) reasons.push(`server logged ${logLines} warn/error lines`);
    return {
      streams: n,
      offeredMbps,
      ingestedMbps,
      lat,
      e2e,
      writeP99,
      lagP99,
      loopP99,
      serverCpu: load.server,
      kernelCpu: load.kernel,
      otherCpu: load.other,
      serverRssMb: rss.peak / 2 ** 20,
      genCpu,
      lost,
      verdict,
      reason: reasons.join('; '),
    };
  } finally {
    for (const child of workers) {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    }
    if (server.logLines() > 0) progress(`server log (last lines):\n${server.logTail()}`);
    await server.stop();
  }
}

async function capacity(clip: Clip, spec: ClipSpec, mode: SecurityMode): Promise<void> {
  const rows: StepResult[] = [];
  const stepCost = cfg.warmupSeconds + cfg.stepSeconds + 15;
  // Each mode gets the same time, less what section 3 of that mode will need.
  const modeStart = elapsedS();
  const budget = cfg.budgetSeconds - (cfg.sections.has('getmedia') ? cfg.readers.length * (cfg.getMediaSeconds + 8) : 0);
  const used = () => elapsedS() - modeStart;
  let lastPass: number | undefined;
  let firstFail: number | undefined;
  let stopNote = '';
  const run = async (n: number) => {
    progress(`2. capacity (security ${mode}): ${n} streams (${cfg.warmupSeconds} s warm-up + ${cfg.stepSeconds} s measured)`);
    await waitForQuiet();
    let r: StepResult;
    try {
      r = await capacityStep(n, clip, spec, mode);
    } catch (err) {
      progress(`   step ${n} failed to run: ${(err as Error).message}`);
      r = {
        streams: n, offeredMbps: NaN, ingestedMbps: NaN, lat: summarize([]), e2e: summarize([]), writeP99: NaN, lagP99: NaN,
        loopP99: NaN, serverCpu: NaN, kernelCpu: NaN, otherCpu: NaN, serverRssMb: NaN, genCpu: NaN, lost: 0, verdict: 'FAIL', reason: (err as Error).message,
      };
    }
    rows.push(r);
    progress(`   ${n} streams: ${r.verdict} p50 ${fmtMs(r.lat.p50)} p99 ${fmtMs(r.lat.p99)} ms, server CPU ${fmtNum(r.serverCpu)} %, other ${fmtNum(r.otherCpu)} % ${r.reason}`);
    return r;
  };
  /** Runs a step; a failure while other work loaded the machine is re-run once. */
  const runChecked = async (n: number) => {
    const r = await run(n);
    if (r.verdict !== 'ok' && r.otherCpu > NOISY_OTHER_CPU && used() + stepCost <= budget) {
      r.verdict = 'NOISY';
      r.reason = `other processes used ${fmtNum(r.otherCpu, 0)} % CPU: re-run; ${r.reason}`;
      progress(`   re-running ${n} streams: other processes on the machine used ${fmtNum(r.otherCpu, 0)} % CPU`);
      return run(n);
    }
    return r;
  };
  for (const n of cfg.steps) {
    if (used() + stepCost > budget) {
      stopNote = `stopped before ${n} streams: time budget reached (each security mode is kept under ${Math.round(cfg.budgetSeconds / 60)} min)`;
      break;
    }
    const r = await runChecked(n);
    if (r.verdict === 'ok') lastPass = n;
    else {
      if (r.verdict === 'FAIL') firstFail = n;
      else stopNote = `stopped at ${n} streams: the load generator could not keep up — the result there says nothing about the server`;
      break;
    }
  }
  // One refinement step between the last pass and the first failure.
  if (cfg.refine && firstFail !== undefined && lastPass !== undefined && firstFail - lastPass >= 50 && used() + stepCost <= budget) {
    const mid = Math.round((lastPass + firstFail) / 2 / 25) * 25;
    if (mid > lastPass && mid < firstFail) {
      const r = await runChecked(mid);
      if (r.verdict === 'ok') lastPass = mid;
      else if (r.verdict === 'FAIL') firstFail = mid;
    }
  }
  rows.sort((a, b) => a.streams - b.streams); // stable: a NOISY row stays before its re-run

  out(`2. Ingest capacity — ~${clip.mbps.toFixed(1)} Mbps streams, 1 s fragments, whole fragment written at its due time, streams staggered across the second (${MODE_TEXT[mode]})`);
  out(
    `   ${cfg.warmupSeconds} s warm-up + ${cfg.stepSeconds} s measured per step; pass = PERSISTED p99 < ${P99_LIMIT_MS} ms, no lost fragments, no ERROR acks,` +
      ` socket-write p99 < ${P99_LIMIT_MS} ms; load from ${cfg.workers} forked generator process(es).`,
  );
  out(
    formatTable(
      ['streams', 'offered Mbps', 'ingested Mbps', 'PERSISTED p50 ms', 'p99 ms', 'max ms', 'due->PERSISTED p99 ms', 'write p99 ms', 'gen lag p99 ms', 'server CPU %', 'server RSS MB', 'gen CPU %', 'kernel CPU %', 'other CPU %', 'result'],
      rows.map((r) => [
        String(r.streams),
        fmtNum(r.offeredMbps, 0),
        fmtNum(r.ingestedMbps, 0),
        fmtMs(r.lat.p50),
        fmtMs(r.lat.p99),
        fmtMs(r.lat.max),
        fmtMs(r.e2e.p99),
        fmtMs(r.writeP99),
        fmtMs(r.lagP99),
        fmtNum(r.serverCpu, 0),
        fmtNum(r.serverRssMb, 0),
        fmtNum(r.genCpu, 0),
        fmtNum(r.kernelCpu, 0),
        fmtNum(r.otherCpu, 0),
        r.verdict,
      ]),
    ),
  );
  for (const r of rows) if (r.reason) out(`   ${r.streams} streams: ${r.reason}`);
  out('   PERSISTED = last byte of the fragment left the generator socket -> PERSISTED ack; write = write issued -> last byte taken by the kernel;');
  out('   due->PERSISTED = the fragment\'s scheduled send time -> PERSISTED; CPU % is of one core (200 % = both cores); RSS is the peak;');
  out('   kernel CPU = irq/softirq time (loopback TCP is mostly softirq, charged to no process), kernel threads (writeback, journal) and steal;');
  out(`   other CPU = everything else busy on the machine (other people\'s processes); a failed step with other > ${NOISY_OTHER_CPU} % is re-run once.`);
  const capacityText =
    lastPass === undefined
      ? `fewer than ${rows[0]?.streams ?? '?'} streams pass`
      : firstFail === undefined
        ? `>= ${lastPass} streams (no failing step was reached)`
        : `${lastPass} streams pass, ${firstFail} fail`;
  headline[mode].capacity.push({ text: capacityText, pass: lastPass ?? 0 });
  out(`   CAPACITY (security ${mode}): ${capacityText} (goal: >= 500).${stopNote ? ` ${stopNote}.` : ''}`);
  out();
}

// ---- 3. GetMedia live latency ----------------------------------------------------------------

async function getMediaLatency(clip: Clip, mode: SecurityMode): Promise<void> {
  progress(`3. GetMedia live latency (security ${mode}): readers ${cfg.readers.join(', ')}, ${cfg.getMediaSeconds} s each`);
  const server = await startServerProcess({ main: cfg.serverMain, security: mode });
  headline[mode].getMediaP99 = new Map();
  let stored: Awaited<ReturnType<typeof storedRead>> | undefined;
  const rows: string[][] = [];
  try {
    for (const R of cfg.readers) {
      await waitForQuiet();
      const name = `getmedia-${R}`;
      await createStream(server.url, name, server.security);
      const warmS = 3;
      const writer = new FramePacedWriter({
        host: HOST,
        port: server.port,
        security: server.security,
        streamName: name,
        clip,
        startAt: nowMs() + 300,
        fragments: 1 + warmS + cfg.getMediaSeconds + 1,
      });
      await writer.open();
      const running = writer.run();
      await sleep(1000); // the stream is live
      let winStart = Infinity;
      let winEnd = Infinity;
      const lat: number[] = [];
      const readers: GetMediaReader[] = [];
      for (let i = 0; i < R; i++) {
        readers.push(
          openGetMediaReader(
            server.url,
            name,
            (tc, at) => {
              const w = writer.frameWrites.get(tc);
              if (w !== undefined && w >= winStart && w < winEnd) lat.push(at - w);
            },
            server.security,
          ),
        );
      }
      await Promise.all(readers.map((r) => r.ready));
      const loop = monitorEventLoopDelay({ resolution: 5 });
      await sleep(warmS * 1000 - 1000);
      winStart = nowMs();
      winEnd = winStart + cfg.getMediaSeconds * 1000;
      const bytesAtStart = readers.reduce((n, r) => n + r.bytes, 0);
      loop.enable();
      const cpu = new LoadMeter(server.pid);
      cpu.start();
      await sleep(winEnd - nowMs());
      const load = cpu.read();
      const outMbps = ((readers.reduce((n, r) => n + r.bytes, 0) - bytesAtStart) * 8) / 1e6 / cfg.getMediaSeconds;
      loop.disable();
      await running;
      await sleep(500);
      for (const r of readers) r.close();
      await writer.settle(3_000);
      await writer.close();
      const written = [...writer.frameWrites.values()].filter((w) => w >= winStart && w < winEnd).length;
      const expected = written * R;
      const lost = Math.max(0, expected - lat.length);
      const s = summarize([...lat, ...Array<number>(lost).fill(Infinity)]);
      const readerErrors = readers.filter((r) => r.error).map((r) => r.error!.message);
      headline[mode].getMediaP99!.set(R, s.p99);
      if (R === cfg.readers[0]) stored = await storedRead(server, name, 5);
      rows.push([
        String(R),
        fmtNum(clip.mbps, 1),
        fmtNum(outMbps, 0),
        String(s.n),
        fmtMs(s.p50),
        fmtMs(s.p99),
        fmtMs(s.max),
        String(lost),
        fmtNum(load.server, 0),
        fmtNum(load.kernel, 0),
        fmtNum(load.other, 0),
        fmtMs(Math.max(0, loop.percentile(99) / 1e6 - 5)), // minus the 5 ms sampling interval
        readerErrors.length ? readerErrors[0]!.slice(0, 60) : '-',
      ]);
      progress(`   ${R} readers: p50 ${fmtMs(s.p50)} p99 ${fmtMs(s.p99)} ms over ${s.n} frame deliveries`);
    }
  } finally {
    await server.stop();
  }
  out(`3. GetMedia live latency — producer writes a frame (t) -> a live GetMedia (NOW) reader has read the frame's bytes (${MODE_TEXT[mode]})`);
  out(
    formatTable(
      ['readers', 'in Mbps', 'out Mbps', 'frame deliveries', 'p50 ms', 'p99 ms', 'max ms', 'lost', 'server CPU %', 'kernel CPU %', 'other CPU %', 'bench loop delay p99 ms', 'errors'],
      rows,
    ),
  );
  out(
    '   One stream, frames written one by one at 30 fps; readers are raw http POST /getMedia in the producer\'s process, the MKV parsed with GetMediaParser.',
  );
  out(
    '   Same machine clock for write and read; includes loopback TCP both ways and the bench process\'s own event-loop delay (column) — an upper bound.',
  );
  if (stored) {
    headline[mode].storedMbPerS = stored.mbPerS;
    out(
      `   Stored read (GetMediaForFragmentList of all ${stored.fragments} fragments, ${fmtNum(stored.mb, 1)} MB, from disk${mode === 'off' ? '' : ', decrypted'}), median of 5:` +
        ` first byte ${fmtMs(stored.firstByteMs)} ms, ${fmtNum(stored.mbPerS, 0)} MB/s.`,
    );
  }
  out();
}

/** Reads every stored fragment of a stream with one GetMediaForFragmentList, `times` times (medians). */
async function storedRead(server: ServerProcess, stream: string, times: number): Promise<{ fragments: number; mb: number; firstByteMs: number; mbPerS: number }> {
  const sec = server.security;
  const listed = await postJson(sec, server.url, 'listFragments', {
    StreamName: stream,
    FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: 0, EndTimestamp: Date.now() / 1000 + 60 } },
  });
  if (listed.status !== 200) throw new Error(`listFragments: ${listed.status} ${listed.text}`);
  const numbers = (JSON.parse(listed.text) as { Fragments: Array<{ FragmentNumber: string }> }).Fragments.map((f) => f.FragmentNumber);
  const body = JSON.stringify({ StreamName: stream, Fragments: numbers });
  const url = new URL(`${server.url}/getMediaForFragmentList`);
  const firsts: number[] = [];
  const rates: number[] = [];
  let bytes = 0;
  for (let i = 0; i < times; i++) {
    const headers = await requestHeaders(sec, url, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, body);
    const t0 = nowMs();
    const { first, end, n } = await new Promise<{ first: number; end: number; n: number }>((resolve, reject) => {
      const req = openRequest(sec, url, headers);
      req.on('error', reject);
      req.on('response', (res) => {
        if (res.statusCode !== 200) return reject(new Error(`getMediaForFragmentList: ${res.statusCode}`));
        let first = 0;
        let n = 0;
        res.on('data', (c: Buffer) => {
          if (n === 0) first = nowMs();
          n += c.length;
        });
        res.on('end', () => resolve({ first, end: nowMs(), n }));
        res.on('error', reject);
      });
      req.end(body);
    });
    bytes = n;
    firsts.push(first - t0);
    rates.push(n / 1e6 / ((end - t0) / 1000));
  }
  return { fragments: numbers.length, mb: bytes / 1e6, firstByteMs: summarize(firsts).p50, mbPerS: summarize(rates).p50 };
}

// ---- security on vs off ----------------------------------------------------------------------

function comparison(): void {
  const { off, on } = headline;
  const rows: string[][] = [];
  const ratio = (a: number | undefined, b: number | undefined, digits = 2) => (a !== undefined && b !== undefined && b > 0 ? `${fmtNum(a / b, digits)}×` : '-');
  if (cfg.sections.has('latency')) rows.push(['PERSISTED p99, 1 stream (ms)', fmtMs(off.latencyP99 ?? NaN), fmtMs(on.latencyP99 ?? NaN), ratio(on.latencyP99, off.latencyP99)]);
  const fewer = (onPass: number, offPass: number) => (offPass > 0 ? `${fmtNum((1 - onPass / offPass) * 100, 0)} % fewer streams` : '-');
  if (cfg.sections.has('capacity') && off.capacity.length > 0 && on.capacity.length > 0) {
    if (cfg.repeat === 1) {
      rows.push(['ingest capacity (streams passing)', off.capacity[0]!.text, on.capacity[0]!.text, `${fewer(on.capacity[0]!.pass, off.capacity[0]!.pass)} (goal: <= 15 %)`]);
    } else {
      off.capacity.forEach((o, i) => {
        const n = on.capacity[i];
        if (n) rows.push([`ingest capacity, round ${i + 1}`, o.text, n.text, fewer(n.pass, o.pass)]);
      });
      const offMedian = Math.round(summarize(off.capacity.map((c) => c.pass)).p50);
      const onMedian = Math.round(summarize(on.capacity.map((c) => c.pass)).p50);
      rows.push([`ingest capacity, median of ${cfg.repeat}`, `${offMedian} streams`, `${onMedian} streams`, `${fewer(onMedian, offMedian)} (goal: <= 15 %)`]);
    }
  }
  for (const R of cfg.sections.has('getmedia') ? cfg.readers : []) {
    rows.push([`GetMedia p99, ${R} reader(s) (ms)`, fmtMs(off.getMediaP99?.get(R) ?? NaN), fmtMs(on.getMediaP99?.get(R) ?? NaN), ratio(on.getMediaP99?.get(R), off.getMediaP99?.get(R))]);
  }
  if (cfg.sections.has('getmedia')) rows.push(['stored read, GetMediaForFragmentList (MB/s)', fmtNum(off.storedMbPerS ?? NaN, 0), fmtNum(on.storedMbPerS ?? NaN, 0), ratio(on.storedMbPerS, off.storedMbPerS)]);
  out('4. Security on vs off — same machine, same run');
  out(formatTable(['figure', 'security off', 'security on', 'on vs off'], rows));
  out('   on = https + SigV4 verification on every request + AES-256-GCM per fragment at rest (GetMedia decrypts what it serves);');
  out('   the load generators encrypt too (TLS), on the same two cores, so "on" also costs the generator side.');
  out();
}

// ---- main ------------------------------------------------------------------------------------

async function main(): Promise<void> {
  progress('preparing media (cached under .bench-cache/)');
  const [file4, file2] = await Promise.all([ensureClip(CLIP_4MBPS), ensureClip(CLIP_2MBPS)]);
  const clip4 = loadClip(file4, CLIP_4MBPS);
  const clip2 = loadClip(file2, CLIP_2MBPS);
  header([clip2, clip4]);
  for (const mode of cfg.modes) if (cfg.sections.has('latency')) await persistedLatency(clip2, mode);
  // Capacity in rounds, the modes taking turns: a machine whose speed drifts affects them alike.
  for (let round = 0; round < cfg.repeat; round++) {
    for (const mode of cfg.modes) if (cfg.sections.has('capacity')) await capacity(clip4, CLIP_4MBPS, mode);
  }
  for (const mode of cfg.modes) if (cfg.sections.has('getmedia')) await getMediaLatency(clip4, mode);
  if (cfg.modes.length > 1) comparison();
  out(`total time ${elapsedS().toFixed(0)} s`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
