/**
 * `npm run bench:bridge` — benchmark of the Node bridge (lib/pipeline.ts + native/): GStreamer
 * pipelines run in-process in Node, compared with the same pipelines under gst-launch-1.0.
 *
 *   1a. fragment-ack delivery: a pipeline making one tiny fragment per frame as fast as x264 goes
 *       (64x48, key-int-max=1, unpaced) uploads to the openkvs server (own process); the
 *       fragment-ack events JS receives per second (BUFFERING + RECEIVED + PERSISTED), bus
 *       messages dropped by the bridge; the same pipeline under `gst-launch-1.0 -e -m` for reference.
 *   1b. raw bus messages: `level` posts an element message per interval of audio, no network.
 *       Unpaced (as fast as it goes) with a JS handler that only counts, unpaced with a handler
 *       spending 20 µs per message (a slow consumer), and live at fixed offered rates.
 *       Delivered/s, dropped (p.messageStats()), and whether EOS reached JS.
 *   2.  1 and N (16) real-time paced pipelines in ONE process, ~20 s window: the Node runner
 *       (bench/bridge/runner.ts: nothing but Pipelines) against ONE gst-launch-1.0 -e -m with N
 *       branches. Live x264 (videotestsrc is-live 640x480 30 fps, 1 Mbit/s) and a pre-encoded
 *       H.264 file paced by identity sync=true (no encoder: the bridge's own cost shows).
 *       CPU % (user+sys deltas of /proc/<pid>/stat), the main thread's share, RSS; server
 *       (own process, fresh per run) reported separately. The full run adds the file case's N
 *       branches as ONE Pipeline in Node, to tell "N pipelines" apart from "Node".
 *
 * Every measured process is a child of this one: this harness only reads /proc and waits.
 *
 * Flags: --quick (~1 min), --window S (paced window, default 20), --streams N (default 16),
 *        --only 1a,1b,2
 */
import { execFileSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createStreams } from './lib/kvs.js';
import { type ServerProcess, startServerProcess } from './lib/server-process.js';
import { QuietWaiter } from './lib/proc.js';
import { fmtNum, formatTable, nowMs, repoRoot, sleep } from './lib/util.js';
import { type BridgeClip, ensureBridgeClip } from './bridge/clip.js';
import { type PacedSource, ackPipeline, floodExpected, floodPipeline, pacedBranch } from './bridge/pipelines.js';
import type { AckCounts, AcksResult, FloodResult, PacedSnapshot } from './bridge/protocol.js';
import { type WindowResult, forkRunner, openWindow, spawnGst, timedGst } from './bridge/procs.js';

// ---- options --------------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    window: { type: 'string' },
    streams: { type: 'string' },
    only: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write('usage: node dist/bench/bridge.js [--quick] [--window 20] [--streams 16] [--only 1a,1b,2]\n');
  process.exit(0);
}
const quick = flags.quick;
const cfg = {
  only: new Set((flags.only ?? '1a,1b,2').split(',').map((s) => s.trim().toLowerCase())),
  /** 1a: frames (= fragments) per run; <= 18000 (the server refuses timestamps > 10 min ahead). */
  ackFrames: quick ? 3000 : 12_000,
  ackReps: quick ? 1 : 3,
  /** 1b: audiotestsrc buffers of 4800 samples (100 ms); 100 level messages per buffer at 1 ms. */
  floodBuffers: quick ? 1000 : 3000,
  floodReps: quick ? 1 : 3,
  slowBuffers: quick ? 200 : 300,
  slowSpinUs: 50,
  slowReps: quick ? 2 : 3,
  liveSeconds: quick ? 2 : 3,
  liveRates: quick ? [48_000] : [1000, 8000, 48_000],
  /** 2: streams of the "many" case, window and warm-up. */
  streams: Number(flags.streams ?? 16),
  windowS: Number(flags.window ?? (quick ? 5 : 20)),
  warmupS: quick ? 2 : 3,
  counts: quick ? [Number(flags.streams ?? 16)] : [1, Number(flags.streams ?? 16)],
  /** Also run the file case's N branches as ONE Pipeline in Node (as gst-launch runs them). */
  onePipelineRow: !quick,
  /** Waiting for other processes to leave the CPU: per run and in all. */
  quietMaxMs: quick ? 3000 : 10_000,
  quietBudgetMs: quick ? 6000 : 20_000,
};
for (const s of cfg.only) if (!['1a', '1b', '2'].includes(s)) throw new Error(`--only: unknown part "${s}"`);
if (!(cfg.windowS >= 2) || !(cfg.streams >= 1)) throw new Error('--window must be >= 2 s and --streams >= 1');

const runStart = nowMs();
const progress = (msg: string) => process.stderr.write(`[${((nowMs() - runStart) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
const out = (text = '') => process.stdout.write(`${text}\n`);
const root = repoRoot();
const rel = (p: string) => p.split(root + path.sep).join('');
const median = (xs: number[]): number => {
  const s = xs.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  return s.length ? s[Math.floor((s.length - 1) / 2)]! : NaN;
};
const sumAcks = (a: AckCounts) => a.BUFFERING + a.RECEIVED + a.PERSISTED + a.ERROR;
const ackText = (a: AckCounts) => `${a.BUFFERING}/${a.RECEIVED}/${a.PERSISTED}${a.ERROR ? ` +${a.ERROR} ERROR` : ''}`;
const ratio = (a: number, b: number) => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(2)}x` : '-');
const signed = (v: number, d = 1) => (Number.isFinite(v) ? `${v >= 0 ? '+' : ''}${v.toFixed(d)}` : '-');

// ---- machine noise ---------------------------------------------------------------------------

/** Other benchmarks may share the machine: wait (bounded) until it is mostly idle. */
const QUIET_PCT = 35;
const quiet = new QuietWaiter({ belowPct: QUIET_PCT, sampleMs: 500, budgetMs: cfg.quietBudgetMs, progress });
const waitForQuiet = () => quiet.wait(cfg.quietMaxMs);
const noisy: string[] = [];

// ---- 1a: fragment-ack delivery ---------------------------------------------------------------

interface AckRow {
  runner: 'bridge' | 'gst-launch';
  acks: AckCounts;
  acksPerS: number;
  persistedPerS: number;
  spanS: number;
  wallS: number;
  delivered: number;
  dropped: number;
  fragmentsDropped: number;
  eos: boolean;
  errors: string[];
}

async function runAckOnce(runner: AckRow['runner'], server: ServerProcess, stream: string, env: Record<string, string>): Promise<AckRow> {
  await createStreams(server.url, [stream]);
  if (runner === 'bridge') {
    const r = forkRunner({ kind: 'acks', description: ackPipeline(cfg.ackFrames, stream), endpoint: server.url, idleMs: 5000 });
    try {
      const { result } = await r.next('result', 150_000);
      await r.exited;
      const a = result as AcksResult;
      const span = (a.lastAckMs - a.firstAckMs) / 1000;
      return {
        runner,
        acks: a.counts,
        acksPerS: sumAcks(a.counts) / span,
        persistedPerS: a.counts.PERSISTED / span,
        spanS: span,
        wallS: a.wallMs / 1000,
        delivered: a.messagesDelivered,
        dropped: a.messagesDropped,
        fragmentsDropped: a.fragmentsDropped,
        eos: a.eos,
        errors: a.errors,
      };
    } finally {
      r.kill();
    }
  }
  const g = spawnGst(ackPipeline(cfg.ackFrames, stream, server.url), env);
  const timer = setTimeout(() => void g.stop(1000), 150_000);
  const code = await g.exited;
  clearTimeout(timer);
  const span = (g.lastAckAt - g.firstAckAt) / 1000;
  return {
    runner,
    acks: g.acks,
    acksPerS: sumAcks(g.acks) / span,
    persistedPerS: g.acks.PERSISTED / span,
    spanS: span,
    wallS: (nowMs() - g.startedAt) / 1000,
    delivered: NaN,
    dropped: NaN,
    fragmentsDropped: g.fragmentsDropped,
    eos: code === 0,
    errors: code === 0 ? g.errors : [...g.errors, `exit ${code}: ${g.outputTail().split('\n').slice(-3).join(' | ')}`],
  };
}

async function partAcks(env: Record<string, string>): Promise<{ rows: AckRow[][] }> {
  const server = await startServerProcess();
  const rows: AckRow[][] = [[], []];
  try {
    for (let rep = 1; rep <= cfg.ackReps; rep++) {
      for (const [i, runner] of (['bridge', 'gst-launch'] as const).entries()) {
        await waitForQuiet();
        progress(`1a ${runner}: ${cfg.ackFrames} fragments (${rep}/${cfg.ackReps})`);
        const row = await runAckOnce(runner, server, `acks-${runner}-${rep}`, env);
        progress(`   ${ackText(row.acks)} acks in ${row.spanS.toFixed(2)} s = ${row.acksPerS.toFixed(0)}/s`);
        rows[i]!.push(row);
      }
    }
    if (server.logLines() > 0) progress(`   server logged ${server.logLines()} lines; last:\n${server.logTail()}`);
  } finally {
    await server.stop();
  }
  return { rows };
}

// ---- 1b: raw bus messages --------------------------------------------------------------------

interface FloodCase {
  label: string;
  buffers: number;
  intervalNs: number;
  live: boolean;
  samplesPerBuffer: number;
  spinUs: number;
  /** Offered rate, messages/s (live only). */
  rate?: number;
  reps: number;
}

function floodCases(): FloodCase[] {
  const cases: FloodCase[] = [
    { label: 'unpaced, JS counts only', buffers: cfg.floodBuffers, intervalNs: 1_000_000, live: false, samplesPerBuffer: 4800, spinUs: 0, reps: cfg.floodReps },
    {
      label: `unpaced, JS spends ${cfg.slowSpinUs} us/message`,
      buffers: cfg.slowBuffers,
      intervalNs: 1_000_000,
      live: false,
      samplesPerBuffer: 4800,
      spinUs: cfg.slowSpinUs,
      reps: cfg.slowReps,
    },
  ];
  for (const rate of cfg.liveRates) {
    // 10 ms buffers of 480 samples; level posts every 48000/rate samples (every sample at 48k/s).
    const intervalNs = rate >= 48_000 ? 20_834 : Math.round(1e9 / rate);
    cases.push({ label: `live, ${rate / 1000}k msg/s offered`, buffers: cfg.liveSeconds * 100, intervalNs, live: true, samplesPerBuffer: 480, spinUs: 0, rate, reps: 1 });
  }
  return cases;
}

async function partFlood(): Promise<Array<{ c: FloodCase; runs: FloodResult[]; expected: number }>> {
  const results: Array<{ c: FloodCase; runs: FloodResult[]; expected: number }> = [];
  for (const c of floodCases()) {
    const runs: FloodResult[] = [];
    for (let rep = 1; rep <= c.reps; rep++) {
      await waitForQuiet();
      progress(`1b ${c.label}${c.reps > 1 ? ` (${rep}/${c.reps})` : ''}`);
      const runner = forkRunner({ kind: 'flood', description: floodPipeline(c), spinUs: c.spinUs, idleMs: 2000 });
      try {
        const { result } = await runner.next('result', 150_000);
        await runner.exited;
        const r = result as FloodResult;
        runs.push(r);
        progress(`   ${r.levelMessages} delivered, ${r.messagesDropped} dropped, EOS ${r.finished ? 'reached JS' : 'LOST'}`);
      } finally {
        runner.kill();
      }
    }
    results.push({ c, runs, expected: floodExpected(c) });
  }
  return results;
}

/** The unpaced flood under gst-launch-1.0 -q (no -m: its bus watch drops element messages at once): GStreamer alone. */
async function floodGstReference(): Promise<Awaited<ReturnType<typeof timedGst>>> {
  await waitForQuiet();
  const c = floodCases()[0]!;
  progress('1b gst-launch-1.0 -q reference (unpaced, same pipeline)');
  return timedGst(floodPipeline(c));
}

// ---- 2: paced pipelines ----------------------------------------------------------------------

interface PacedRow {
  source: PacedSource;
  streams: number;
  /** bridge-1p: the gst-launch description (N branches) as ONE Pipeline in the Node runner. */
  runner: 'bridge' | 'bridge-1p' | 'gst-launch';
  w: WindowResult;
  persistedPerS: number;
  ackTotal: AckCounts;
  delivered: number;
  dropped: number;
  fragmentsDropped: number;
  errors: string[];
  stopS: number;
  exitCode: number | null;
}

async function runPaced(source: PacedSource, n: number, runner: PacedRow['runner'], clip: BridgeClip, env: Record<string, string>): Promise<PacedRow> {
  await waitForQuiet();
  progress(`2  ${source} x${n} ${runner}: ${cfg.warmupS} s warm-up + ${cfg.windowS} s window`);
  const server = await startServerProcess();
  const names = Array.from({ length: n }, (_, i) => `${source}-${runner}-${n}-${i + 1}`);
  try {
    await createStreams(server.url, names);
    if (runner !== 'gst-launch') {
      const branches = names.map((s) => pacedBranch(source, s, clip.file));
      const r = forkRunner({ kind: 'paced', descriptions: runner === 'bridge' ? branches : [branches.join(' ')], endpoint: server.url });
      try {
        await r.next('ready', 60_000);
        await sleep(cfg.warmupS * 1000);
        r.send({ cmd: 'snapshot' });
        const s0 = (await r.next('snapshot', 10_000)).snapshot;
        const win = openWindow(r.pid, server.pid);
        await sleep(cfg.windowS * 1000);
        const w = win.end();
        r.send({ cmd: 'snapshot' });
        const s1 = (await r.next('snapshot', 10_000)).snapshot;
        const t0 = nowMs();
        r.send({ cmd: 'stop' });
        const stopped = await r.next('stopped', 60_000);
        const code = await r.exited;
        const fin: PacedSnapshot = stopped.snapshot;
        return {
          source,
          streams: n,
          runner,
          w,
          persistedPerS: (s1.acks.PERSISTED - s0.acks.PERSISTED) / w.seconds,
          ackTotal: fin.acks,
          delivered: fin.messagesDelivered,
          dropped: fin.messagesDropped,
          fragmentsDropped: fin.fragmentsDropped,
          errors: stopped.errors,
          stopS: (nowMs() - t0) / 1000,
          exitCode: code,
        };
      } finally {
        r.kill();
      }
    }
    const g = spawnGst(names.map((s) => pacedBranch(source, s, clip.file, server.url)).join(' '), env);
    try {
      await g.waitReady(n, 60_000);
      await sleep(cfg.warmupS * 1000);
      const p0 = g.acks.PERSISTED;
      const win = openWindow(g.pid, server.pid);
      await sleep(cfg.windowS * 1000);
      const w = win.end();
      const p1 = g.acks.PERSISTED;
      const t0 = nowMs();
      const code = await g.stop(60_000);
      return {
        source,
        streams: n,
        runner,
        w,
        persistedPerS: (p1 - p0) / w.seconds,
        ackTotal: g.acks,
        delivered: NaN,
        dropped: NaN,
        fragmentsDropped: g.fragmentsDropped,
        errors: g.errors,
        stopS: (nowMs() - t0) / 1000,
        exitCode: code,
      };
    } finally {
      await g.stop(1000);
    }
  } finally {
    if (server.logLines() > 0) progress(`   server logged ${server.logLines()} lines; last:\n${server.logTail()}`);
    await server.stop();
  }
}

/** RSS of a Node process with the addon loaded and GStreamer initialised, no pipeline. */
async function idleNodeRss(): Promise<number> {
  const r = forkRunner({ kind: 'idle' });
  try {
    await r.next('started', 30_000);
    await sleep(1000);
    const w = openWindow(r.pid, undefined);
    await sleep(500);
    return w.end().rssMeanMiB;
  } finally {
    r.kill();
  }
}

// ---- main ------------------------------------------------------------------------------------

function gitState(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--', 'native', 'gst-plugin', 'lib').split('\n').filter(Boolean).length;
    return `git ${git('rev-parse', '--short', 'HEAD')}${dirty ? ` + ${dirty} uncommitted change(s) in native/ gst-plugin/ lib/ (the build uses the working tree)` : ', native/ gst-plugin/ lib/ clean'}`;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<void> {
  const pluginPath = execFileSync(process.execPath, [path.join(root, 'dist/lib/cli/main.js'), 'plugin-path'], { encoding: 'utf8' }).trim();
  const env = { GST_PLUGIN_PATH: pluginPath, AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' };
  const gstVersion = execFileSync('gst-launch-1.0', ['--version'], { encoding: 'utf8' }).split('\n')[1]?.trim() ?? '?';
  const loadBefore = os.loadavg();
  const clip = await ensureBridgeClip(Math.max(40, Math.ceil(cfg.warmupS + cfg.windowS + 15)), progress);

  const acks = cfg.only.has('1a') ? await partAcks(env) : undefined;
  const flood = cfg.only.has('1b') ? await partFlood() : undefined;
  const floodRef = cfg.only.has('1b') ? await floodGstReference() : undefined;
  const paced: PacedRow[] = [];
  let idleRss = NaN;
  if (cfg.only.has('2')) {
    idleRss = await idleNodeRss();
    for (const source of ['x264', 'file'] as const) {
      for (const n of cfg.counts) {
        for (const runner of ['gst-launch', 'bridge'] as const) paced.push(await runPaced(source, n, runner, clip, env));
        // Where the difference comes from: the same N branches as one Pipeline in Node (full run only).
        if (cfg.onePipelineRow && source === 'file' && n > 1) paced.push(await runPaced(source, n, 'bridge-1p', clip, env));
      }
    }
  }
  const loadAfter = os.loadavg();

  // ---- header
  const cpus = os.cpus();
  out('openkvs Node-bridge benchmark');
  out(`machine:   ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}`);
  out(`software:  ${gstVersion}, node ${process.version}, addon ${rel(path.join(root, 'build/Release/openkvs.node'))} (kvssink built in); ${gitState()}`);
  out(`load:      1-min load average ${loadBefore[0]!.toFixed(2)} at start, ${loadAfter[0]!.toFixed(2)} at the end (other benchmarks may share the machine; "others %" columns)`);
  out(`command:   node ${rel(process.argv[1]!)} ${process.argv.slice(2).join(' ')}`.trimEnd());
  out(`date:      ${new Date().toISOString()}`);
  out('server:    node dist/lib/cli/main.js serve --port 0 --data-dir <fresh tmp dir> --log-level warn  (own process; streams created beforehand)');
  out('bridge:    node dist/bench/bridge/runner.js <job>  (forked; only new Pipeline(description, { endpoint, credentials: {a, b} }), start, events, stop)');
  out('gst:       GST_PLUGIN_PATH=$(node dist/lib/cli/main.js plugin-path) AWS_ACCESS_KEY_ID=a AWS_SECRET_ACCESS_KEY=b gst-launch-1.0 -e -m <description>  (+ endpoint=URL on each kvssink)');
  out('pipelines:');
  out(`  1a  ${ackPipeline(cfg.ackFrames, 'S')}`);
  for (const c of floodCases()) out(`  1b  ${floodPipeline(c)}   (${c.label})`);
  out(`  2   x264: ${pacedBranch('x264', 'S', clip.file)}`);
  out(`      file: ${rel(pacedBranch('file', 'S', clip.file))}`);
  out(`      N streams: N such pipelines in one Node process, or N branches in one gst-launch description; clip made by: ${clip.command}`);
  out();

  // ---- 1a
  if (acks) {
    out(`1a. fragment-ack delivery: ${cfg.ackFrames} fragments (1 per frame, 3 acks each), unpaced, to the server; median of ${cfg.ackReps} run(s) by acks/s`);
    const rows = acks.rows.map((list) => {
      const m = median(list.map((r) => r.acksPerS));
      const r = list.find((x) => x.acksPerS === m) ?? list[0]!;
      return [
        r.runner === 'bridge' ? 'bridge: fragment-ack events in JS' : 'gst-launch -m: ack lines on stdout',
        ackText(r.acks),
        fmtNum(r.acksPerS, 0),
        fmtNum(r.persistedPerS, 0),
        fmtNum(r.spanS, 2),
        fmtNum(r.wallS, 2),
        Number.isNaN(r.delivered) ? '-' : `${r.delivered}`,
        Number.isNaN(r.dropped) ? '-' : `${list.reduce((a, x) => a + x.dropped, 0)}`,
        `${list.reduce((a, x) => a + x.fragmentsDropped, 0)}`,
        list.every((x) => x.eos) ? 'yes' : `${list.filter((x) => !x.eos).length} of ${list.length} NOT`,
        list.map((x) => fmtNum(x.acksPerS, 0)).join(' '),
      ];
    });
    out(
      formatTable(
        ['measured', 'acks B/R/P', 'acks/s', 'PERSISTED/s', 'first->last ack s', 'start->EOS s', 'msgs to JS', 'msgs dropped (all runs)', 'kvssink-dropped', 'EOS', 'acks/s of each run'],
        rows,
      ),
    );
    out('   acks/s = all fragment-ack events / (last ack - first ack); the bridge counts in the JS handler, gst-launch counts the -m lines as this process reads them.');
    out('   msgs to JS / dropped: p.messageStats() (every bus message crosses the bridge, not only acks). start->EOS: bridge start() -> finished; gst-launch spawn -> exit.');
    for (const r of acks.rows.flat()) {
      if (r.errors.length) out(`   ! ${r.runner}: ${r.errors.slice(0, 2).join(' | ')}`);
      if (r.acks.PERSISTED < cfg.ackFrames) out(`   ! ${r.runner}: ${r.acks.PERSISTED} of ${cfg.ackFrames} fragments PERSISTED`);
    }
    out();
  }

  // ---- 1b
  if (flood) {
    out('1b. raw bus messages through the bridge (level element messages, no network): one Node process per case');
    const rows = flood.map(({ c, runs, expected }) => {
      const rate = (r: FloodResult) => r.levelMessages / ((r.lastMs - r.firstMs) / 1000);
      const dropPct = (r: FloodResult) => (r.messagesDropped / Math.max(1, r.levelMessages + r.messagesDropped)) * 100;
      const lost = runs.filter((r) => !r.finished).length;
      return [
        `${c.label}${runs.length > 1 ? ` (${runs.length} runs)` : ''}`,
        c.rate ? `${c.rate}` : 'max',
        `${expected}`,
        `${median(runs.map((r) => r.levelMessages))}`,
        fmtNum(median(runs.map(rate)), 0),
        runs.map((r) => `${r.messagesDropped}`).join(' '),
        fmtNum(median(runs.map(dropPct)), 1),
        lost === 0 ? (runs.length > 1 ? `yes, ${runs.length} of ${runs.length}` : 'yes') : `NO in ${lost} of ${runs.length}`,
        runs.every((r) => r.stopped) ? fmtNum(Math.max(...runs.map((r) => r.stopMs)), 0) : 'hung',
        fmtNum(median(runs.map((r) => (r.cpuMs / r.wallMs) * 100)), 0),
        fmtNum(Math.max(...runs.map((r) => r.maxRssKiB)) / 1024, 0),
      ];
    });
    out(
      formatTable(
        ['case', 'offered/s', 'level msgs expected', 'delivered to JS', 'delivered/s', 'dropped (each run)', 'dropped %', 'EOS reached JS', 'stop() ms', 'node CPU %', 'peak RSS MiB'],
        rows,
      ),
    );
    out('   delivered to JS, delivered/s, dropped %, node CPU %: median of the runs. delivered/s = level messages the JS handler saw / (last - first);');
    out('   dropped = messageStats().messagesDropped (the bridge queue holds 4096 messages; every message type shares it);');
    out('   "EOS reached JS" = p.finished settled; NO = every level message was accounted for (delivered + dropped) but EOS never came: it was dropped too.');
    out('   node CPU % = process.cpuUsage() over start() -> finished (without EOS: until the message counters last moved), % of one core; peak RSS = resourceUsage().maxRSS.');
    if (floodRef) {
      out(
        `   reference, the first pipeline under gst-launch-1.0 -q (GStreamer alone, messages not printed): ${fmtNum(floodRef.wallS, 2)} s, ` +
          `CPU ${fmtNum((floodRef.cpuS / floodRef.wallS) * 100, 0)} %, peak RSS ${fmtNum(floodRef.maxRssMiB, 0)} MiB (/usr/bin/time)${floodRef.code === 0 ? '' : `, exit ${floodRef.code}`}`,
      );
    }
    out();
  }

  // ---- 2
  if (paced.length > 0) {
    out(`2. Real-time paced pipelines: ${cfg.windowS} s window after all kvssink elements posted kvssink-stream-ready + ${cfg.warmupS} s; one process per row, fresh server per row`);
    const rows = paced.map((p) => [
      p.source,
      `${p.streams}`,
      p.runner === 'bridge' ? 'node (bridge)' : p.runner === 'bridge-1p' ? 'node, 1 Pipeline' : 'gst-launch-1.0',
      fmtNum(p.w.cpuPct, 1),
      fmtNum(p.w.mainThreadPct, 1),
      fmtNum(p.w.sameNamePct, 1),
      fmtNum(p.w.namedPct, 1),
      fmtNum(p.w.rssMeanMiB, 1),
      fmtNum(p.w.rssPeakMiB, 1),
      signed(p.w.rssEndMiB - p.w.rssStartMiB),
      `${p.w.threads}`,
      fmtNum(p.persistedPerS, 2),
      Number.isNaN(p.dropped) ? '-' : `${p.dropped}`,
      `${p.fragmentsDropped}`,
      fmtNum(p.w.serverPct, 1),
      fmtNum(p.w.othersPct, 0),
    ]);
    out(
      formatTable(
        ['source', 'streams', 'process', 'CPU %', 'main thread %', 'same-name threads %', 'streaming threads %', 'RSS MiB', 'peak RSS MiB', 'RSS growth MiB', 'threads', 'PERSISTED/s', 'msgs dropped', 'kvssink-dropped', 'server CPU %', 'others %'],
        rows,
      ),
    );
    out('   CPU % = user+sys of the whole process over the window, % of one core (200 % = both cores); main thread = the JS thread for node, the GLib main loop for gst-launch;');
    out('   same-name threads = threads still named "node" / "gst-launch-1.0" (node: the addon\'s GLib loop thread that converts bus messages, V8 and libuv helpers);');
    out('   streaming threads = the rest: GStreamer streaming threads (named after their pad) and the kvssink uploader/curl threads they start.');
    out('   (thread columns from /proc/<pid>/task/<tid>/schedstat; threads that exited during the window count in CPU % only.)');
    if (paced.some((p) => p.runner === 'bridge-1p')) {
      out('   node, 1 Pipeline = the gst-launch description (N branches, one pipeline, one bus) as a single Pipeline in Node: separates "N pipelines" from "Node".');
    }
    out('   RSS = mean of /proc/<pid>/status VmRSS sampled every 250 ms; growth = last sample - first sample of the window. others % = machine busy - process - server.');
    out();
    out('   bridge vs gst-launch');
    const cmp: string[][] = [];
    for (const source of ['x264', 'file'] as const) {
      for (const n of cfg.counts) {
        const g = paced.find((p) => p.source === source && p.streams === n && p.runner === 'gst-launch');
        const b = paced.find((p) => p.source === source && p.streams === n && p.runner === 'bridge');
        if (!g || !b) continue;
        cmp.push([
          source,
          `${n}`,
          fmtNum(g.w.cpuPct, 1),
          fmtNum(b.w.cpuPct, 1),
          signed(b.w.cpuPct - g.w.cpuPct),
          ratio(b.w.cpuPct, g.w.cpuPct),
          fmtNum(g.w.rssMeanMiB, 1),
          fmtNum(b.w.rssMeanMiB, 1),
          signed(b.w.rssMeanMiB - g.w.rssMeanMiB),
          ratio(b.w.rssMeanMiB, g.w.rssMeanMiB),
          fmtNum(g.w.serverPct, 1),
          fmtNum(b.w.serverPct, 1),
        ]);
      }
    }
    out(
      formatTable(
        ['source', 'streams', 'gst CPU %', 'bridge CPU %', 'bridge - gst', 'CPU bridge/gst', 'gst RSS MiB', 'bridge RSS MiB', 'bridge - gst', 'RSS bridge/gst', 'server CPU % (gst run)', 'server CPU % (bridge run)'],
        cmp,
      ),
    );
    const perStream: string[] = [];
    if (cfg.counts.length > 1) {
      const [lo, hi] = [cfg.counts[0]!, cfg.counts[cfg.counts.length - 1]!];
      for (const source of ['x264', 'file'] as const) {
        for (const runner of ['gst-launch', 'bridge'] as const) {
          const a = paced.find((p) => p.source === source && p.streams === lo && p.runner === runner);
          const b = paced.find((p) => p.source === source && p.streams === hi && p.runner === runner);
          if (a && b) {
            perStream.push(
              `${source} ${runner}: ${fmtNum((b.w.cpuPct - a.w.cpuPct) / (hi - lo), 2)} % CPU and ${fmtNum((b.w.rssMeanMiB - a.w.rssMeanMiB) / (hi - lo), 2)} MiB per extra stream`,
            );
          }
        }
      }
    }
    out(`   node idle baseline (addon loaded, GStreamer initialised, no pipeline): RSS ${fmtNum(idleRss, 1)} MiB`);
    if (perStream.length) out(`   per extra stream (${cfg.counts[0]} -> ${cfg.counts[cfg.counts.length - 1]}): ${perStream.join('; ')}`);
    for (const p of paced) {
      const label = `${p.source} x${p.streams} ${p.runner}`;
      if (p.errors.length) out(`   ! ${label}: errors: ${p.errors.slice(0, 2).join(' | ')}`);
      if (p.exitCode !== 0) out(`   ! ${label}: the process exited with ${p.exitCode}`);
      if (p.persistedPerS < p.streams * 0.8) out(`   ! ${label}: ${fmtNum(p.persistedPerS, 2)} PERSISTED/s for ${p.streams} stream(s) of 1-s fragments`);
      if (p.w.othersPct > QUIET_PCT) noisy.push(`${label} (others ${p.w.othersPct.toFixed(0)} %)`);
    }
    if (noisy.length) out(`   ! other processes were busy during: ${noisy.join(', ')}; those rows are noisy.`);
    out();
  }
  progress(`done in ${((nowMs() - runStart) / 1000).toFixed(0)} s`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
