/**
 * `npm run bench:sink` — benchmark of the kvssink GStreamer element against a local openkvs server.
 *
 * Input: a 1080p30 4 Mbit/s H.264 byte-stream file (60 s) encoded once into `.bench-cache/`.
 * Every pipeline runs in its own `gst-launch-1.0 -e -m` process (under /usr/bin/time), the server
 * in its own node process (fresh data dir per kvssink run). The same pipeline into `fakesink` is
 * the baseline for CPU and memory.
 *
 *   A  unpaced, as specified:  filesrc ! h264parse ! kvssink          (EOS reaches kvssink at once)
 *   B  unpaced, EOS held back: fdsrc fd=0 ! h264parse ! kvssink       (the file is written to stdin
 *      as fast as the pipe takes it; stdin is closed once all but the last fragment are PERSISTED)
 *   C  real-time paced:        filesrc ! h264parse ! identity sync=true ! kvssink
 *   D  16 real-time paced streams in one process: 16 × C with stream-name=s1..s16
 *
 * Unpaced runs take well under a second each: they are repeated 3 times and the medians reported.
 * A kvssink run that loses fragments is reported as incomplete (and not repeated).
 *
 * Flags: --quick (~1 min), --paced-seconds N, --streams N, --only A,B,C,D, --spool (every kvssink
 * with storage-path in a fresh temporary directory: the on-disk spool's cost)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type ServerProcess, startServerProcess } from './lib/server-process.js';
import { fmtMs, fmtNum, formatTable, nowMs, repoRoot, summarize } from './lib/util.js';
import { CLIP_1080P30_4MBPS, ensureH264Clip, type H264Clip } from './sink/clip.js';
import { QuietWaiter } from './lib/proc.js';
import { type GstRunResult, type SinkBus, TIME_BIN, haveGnuTime, mergeRuns, runGst } from './sink/gst-run.js';

// ---- options --------------------------------------------------------------------------------

const { values: flags } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    'paced-seconds': { type: 'string' },
    streams: { type: 'string' },
    only: { type: 'string' },
    spool: { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (flags.help) {
  process.stdout.write('usage: node dist/bench/sink.js [--quick] [--paced-seconds 45] [--streams 16] [--only A,B,C,D] [--spool]\n');
  process.exit(0);
}
const quick = flags.quick;
const cfg = {
  pacedSeconds: Number(flags['paced-seconds'] ?? (quick ? 12 : 45)),
  streams: Number(flags.streams ?? 16),
  only: new Set((flags.only ?? 'A,B,C,D').split(',').map((s) => s.trim().toUpperCase())),
  /** stop-stream-timeout of run A: how long kvssink may wait at EOS for its fragments to be persisted. */
  eosTimeoutA: quick ? 6 : 15,
  /** The steady window of paced runs starts this long after the process starts. */
  warmupMs: quick ? 3000 : 5000,
  quietBudgetMs: quick ? 15_000 : 60_000,
  /** Unpaced runs take well under a second: each is repeated and the medians are reported. */
  unpacedReps: 3,
  /** --spool: the storage-path root of every kvssink (one fresh directory a run). */
  spoolRoot: flags.spool ? mkdtempSync(path.join(os.tmpdir(), 'bench-spool-')) : undefined,
};
if (cfg.spoolRoot) process.on('exit', () => rmSync(cfg.spoolRoot!, { recursive: true, force: true }));
for (const s of cfg.only) if (!['A', 'B', 'C', 'D'].includes(s)) throw new Error(`--only: unknown run "${s}"`);
if (!(cfg.pacedSeconds > cfg.warmupMs / 1000 + 2)) throw new Error('--paced-seconds is too short');

const runStart = nowMs();
const progress = (msg: string) => process.stderr.write(`[${((nowMs() - runStart) / 1000).toFixed(0).padStart(4)} s] ${msg}\n`);
const out = (text = '') => process.stdout.write(`${text}\n`);

// ---- machine noise ---------------------------------------------------------------------------

/** Other processes share this machine: wait (a bounded time) until the CPU is mostly idle. */
const QUIET_CPU = 30;
const quiet = new QuietWaiter({ belowPct: QUIET_CPU, sampleMs: 700, budgetMs: cfg.quietBudgetMs, progress });
const waitForQuiet = () => quiet.wait();

// ---- pipelines -------------------------------------------------------------------------------

type Sink = 'kvssink' | 'fakesink';

interface Plan {
  id: string;
  title: string;
  sink: Sink;
  streams: number;
  paced: boolean;
  source: 'filesrc' | 'fdsrc';
}

function branch(plan: Plan, clip: H264Clip, i: number, url: string): string {
  const src = plan.source === 'fdsrc' ? 'fdsrc fd=0' : `filesrc location=${clip.file}`;
  const pace = plan.paced ? ' ! identity sync=true' : '';
  const sink =
    plan.sink === 'fakesink'
      ? 'fakesink sync=false'
      : `kvssink stream-name=s${i + 1} endpoint=${url}${plan.id === 'A' ? ` stop-stream-timeout=${cfg.eosTimeoutA}` : ''}` +
        (cfg.spoolRoot ? ` storage-path=${mkdtempSync(path.join(cfg.spoolRoot, 'run-'))}` : '');
  return `${src} ! h264parse${pace} ! ${sink}`;
}

function pipeline(plan: Plan, clip: H264Clip, url: string): string {
  return Array.from({ length: plan.streams }, (_, i) => branch(plan, clip, i, url)).join('  ');
}

function commandLine(plan: Plan, clip: H264Clip, url: string, rel: (p: string) => string): string {
  const p = plan.streams > 1 ? `${branch(plan, clip, 0, url).replace('s1 ', 'sN ')}  (× ${plan.streams}, N = 1..${plan.streams})` : pipeline(plan, clip, url);
  const stdin = plan.source === 'fdsrc' ? `< ${rel(clip.file)} ` : '';
  return `gst-launch-1.0 -e -m ${rel(p)} ${stdin}`.trimEnd();
}

// ---- runs ------------------------------------------------------------------------------------

interface Outcome {
  plan: Plan;
  /** The median of the repetitions (unpaced runs are repeated). */
  result: GstRunResult;
  reps: number;
  url: string;
  /** Fragments the clip has per stream (one per key frame). */
  expectedFragments: number;
}

async function runPlan(plan: Plan, clip: H264Clip, env: Record<string, string>): Promise<Outcome> {
  const reps = plan.paced ? 1 : cfg.unpacedReps;
  const results: GstRunResult[] = [];
  let url = 'http://127.0.0.1:PORT';
  for (let rep = 1; rep <= reps; rep++) {
    const r = await runOnce(plan, clip, env, rep, reps);
    url = r.url;
    results.push(r.result);
    // A kvssink run that lost fragments is not repeated (it is a failure, not a measurement).
    const persisted = [...r.result.sinks.values()].reduce((a, b) => a + b.persistedTimecodes.size, 0);
    if (plan.sink === 'kvssink' && persisted < clip.keyFrames * plan.streams) break;
  }
  return { plan, result: mergeRuns(results), reps: results.length, url, expectedFragments: clip.keyFrames };
}

async function runOnce(
  plan: Plan,
  clip: H264Clip,
  env: Record<string, string>,
  rep: number,
  reps: number,
): Promise<{ result: GstRunResult; url: string }> {
  await waitForQuiet();
  let server: ServerProcess | undefined;
  if (plan.sink === 'kvssink') server = await startServerProcess();
  const url = server?.url ?? 'http://127.0.0.1:PORT';
  const expected = clip.keyFrames;
  const mediaMs = clip.seconds * 1000;
  progress(`${plan.id} ${plan.sink.padEnd(8)} ${plan.title}${reps > 1 ? ` (${rep}/${reps})` : ''}`);
  try {
    const result = await runGst({
      label: `${plan.id} ${plan.sink}`,
      pipeline: pipeline(plan, clip, url).split(/\s+/).filter(Boolean),
      env,
      serverPid: server?.pid,
      progress,
      ...(plan.source === 'fdsrc'
        ? {
            stdinFile: clip.file,
            // Hold EOS back until every fragment but the last (closed only by EOS) is persisted.
            closeStdinWhen:
              plan.sink === 'kvssink'
                ? (sinks: Map<string, SinkBus>) => [...sinks.values()].every((s) => s.persistedTimecodes.size >= expected - 1)
                : undefined,
            closeStdinAfterMs: quick ? 40_000 : 90_000,
          }
        : {}),
      ...(plan.paced ? { stopAfterMs: cfg.pacedSeconds * 1000, windowStartMs: cfg.warmupMs } : {}),
      timeoutMs: plan.paced ? cfg.pacedSeconds * 1000 + 60_000 : Math.max(mediaMs, 60_000) + 60_000,
    });
    if (result.exitCode !== 0) progress(`   ${plan.id} ${plan.sink}: gst-launch exited with ${result.exitCode}\n${result.outputTail}`);
    if (server && server.logLines() > 0) progress(`   server logged ${server.logLines()} lines; last:\n${server.logTail()}`);
    return { result, url };
  } finally {
    await server?.stop();
  }
}

// ---- report ----------------------------------------------------------------------------------

const ratio = (a: number, b: number): string => (Number.isFinite(a) && Number.isFinite(b) && b > 0 ? `${(a / b).toFixed(a / b >= 100 ? 0 : 1)}x` : '-');

const modeLabel = (o: Outcome): string =>
  o.plan.paced ? `paced x${o.plan.streams}` : `unpaced ${o.plan.source}${o.reps > 1 ? `, median of ${o.reps}` : ''}`;

/** Media seconds uploaded (paced: until SIGINT; unpaced: the whole clip). */
function mediaSeconds(o: Outcome, clip: H264Clip): number {
  return o.plan.paced ? Math.min(cfg.pacedSeconds, clip.seconds) : clip.seconds;
}

/** The commit the element was built from, and whether its sources had uncommitted changes. */
function sourceState(root: string): string {
  try {
    const git = (...args: string[]) => execFileSync('git', ['-C', root, ...args], { encoding: 'utf8' }).trim();
    const dirty = git('status', '--porcelain', '--', 'gst-plugin').split('\n').filter(Boolean).length;
    return `git ${git('rev-parse', '--short', 'HEAD')}${dirty ? `, gst-plugin/ with ${dirty} uncommitted change(s) (the build uses the working tree)` : ', gst-plugin/ clean'}`;
  } catch {
    return 'unknown (not a git checkout)';
  }
}

function main(): Promise<void> {
  return run();
}

async function run(): Promise<void> {
  const root = repoRoot();
  const rel = (p: string) => p.split(root + path.sep).join('');
  const clip = await ensureH264Clip(CLIP_1080P30_4MBPS, progress);
  const pluginPath = execFileSync(process.execPath, [path.join(root, 'dist/lib/cli/main.js'), 'plugin-path'], { encoding: 'utf8' }).trim();
  const env = { GST_PLUGIN_PATH: pluginPath, AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b' };
  const gstVersion = execFileSync('gst-launch-1.0', ['--version'], { encoding: 'utf8' }).split('\n')[1]?.trim() ?? '?';

  const n = cfg.streams;
  const plans: Plan[] = [];
  const add = (id: string, title: string, streams: number, paced: boolean, source: 'filesrc' | 'fdsrc') => {
    if (!cfg.only.has(id)) return;
    plans.push({ id, title, sink: 'fakesink', streams, paced, source }, { id, title, sink: 'kvssink', streams, paced, source });
  };
  add('A', 'unpaced, filesrc (as specified: EOS reaches kvssink at once)', 1, false, 'filesrc');
  add('B', 'unpaced, fdsrc from stdin; EOS held back until all but the last fragment are PERSISTED', 1, false, 'fdsrc');
  add('C', `real-time paced (identity sync=true), 1 stream, ${cfg.pacedSeconds} s`, 1, true, 'filesrc');
  add('D', `real-time paced, ${n} streams in one gst-launch process, ${cfg.pacedSeconds} s`, n, true, 'filesrc');

  const outcomes: Outcome[] = [];
  for (const plan of plans) outcomes.push(await runPlan(plan, clip, env));

  // ---- header
  const cpus = os.cpus();
  out('openkvs kvssink benchmark');
  out(`machine:   ${cpus.length} cores, ${cpus[0]?.model.trim() ?? 'unknown CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Linux ${os.release()}`);
  out(`software:  ${gstVersion}, node ${process.version}, kvssink ${rel(path.join(pluginPath, 'libgstkvssink.so'))}`);
  out(`source:    ${sourceState(root)}`);
  out(`command:   node ${rel(process.argv[1]!)} ${process.argv.slice(2).join(' ')}`.trimEnd());
  out(`date:      ${new Date().toISOString()}`);
  out(`media:     ${rel(clip.file)}: ${clip.spec.width}x${clip.spec.height} ${clip.spec.fps} fps, ${clip.frames} frames = ${clip.seconds.toFixed(1)} s, ${clip.keyFrames} key frames (1 fragment each), ${(clip.bytes / 2 ** 20).toFixed(1)} MiB = ${clip.mbps.toFixed(2)} Mbit/s`);
  out(`encoded:   gst-launch-1.0 ${rel(clip.encodeArgs.join(' '))}`);
  out('server:    node dist/lib/cli/main.js serve --port 0 --data-dir <fresh tmp dir> --log-level warn (own process, one per kvssink run)');
  if (cfg.spoolRoot) out(`spool:     every kvssink with storage-path=<fresh dir under ${cfg.spoolRoot}> (fdatasync per fragment)`);
  out(`env:       GST_PLUGIN_PATH=$(node dist/lib/cli/main.js plugin-path) AWS_ACCESS_KEY_ID=a AWS_SECRET_ACCESS_KEY=b`);
  out(
    `measured:  ${haveGnuTime() ? `${TIME_BIN} -f '%e %U %S %M' wraps each gst-launch: CPU = user+sys of the process, peak RSS = its max RSS` : 'CPU and RSS sampled from /proc/<pid>/stat and status every 100 ms until exit'}; ` +
      `paced runs: CPU % over the window ${cfg.warmupMs / 1000} s .. ${cfg.pacedSeconds} s from /proc, then SIGINT (-e: EOS)`,
  );
  out('commands:');
  const seen = new Set<string>();
  for (const o of outcomes) {
    const key = `${o.plan.id}-${o.plan.sink}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const url = o.plan.sink === 'kvssink' ? 'http://127.0.0.1:PORT' : o.url;
    out(`  ${o.plan.id} ${o.plan.sink.padEnd(8)} ${commandLine(o.plan, clip, url, rel)}`);
  }
  out('  A: kvssink also has stop-stream-timeout=' + cfg.eosTimeoutA + '; B: the file is piped to stdin, which is closed once ' + `${clip.keyFrames - 1} fragments are PERSISTED.`);
  out();

  // ---- table 1: cost
  const byKey = new Map(outcomes.map((o) => [`${o.plan.id}-${o.plan.sink}`, o]));
  const base = (o: Outcome) => byKey.get(`${o.plan.id}-fakesink`);
  const cpuPct = (o: Outcome) => (o.plan.paced ? (o.result.window?.cpuPct ?? NaN) : (o.result.cpuS / o.result.wallS) * 100);
  const rows1 = outcomes.map((o) => {
    const b = base(o);
    const isBase = o.plan.sink === 'fakesink';
    const r = o.result;
    const perStreamRss = o.plan.streams > 1 && b && !isBase ? (r.peakRssMiB - b.result.peakRssMiB) / o.plan.streams : NaN;
    return [
      `${o.plan.id}`,
      modeLabel(o),
      o.plan.sink,
      fmtNum(r.wallS, 2),
      fmtNum(r.cpuS, 2),
      o.plan.streams > 1 ? fmtNum(r.cpuS / o.plan.streams, 2) : '-',
      fmtNum(cpuPct(o), 1),
      isBase || !b ? '-' : o.plan.paced ? ratio(cpuPct(o), cpuPct(b)) : ratio(r.cpuS, b.result.cpuS),
      fmtNum(r.peakRssMiB, 1),
      isBase || !b ? '-' : ratio(r.peakRssMiB, b.result.peakRssMiB),
      fmtNum(perStreamRss, 1),
      isBase ? '-' : fmtNum(r.serverCpuS, 2),
      isBase ? '-' : fmtNum(o.plan.paced ? (r.window?.serverCpuPct ?? NaN) : (r.serverCpuS / r.wallS) * 100, 1),
    ];
  });
  out('1. Cost of the gst-launch process (kvssink vs the same pipeline into fakesink)');
  out(
    formatTable(
      ['run', 'mode', 'sink', 'wall s', 'CPU s', 'CPU s/stream', 'CPU %', 'CPU vs fakesink', 'peak RSS MiB', 'RSS vs fakesink', 'extra RSS MiB/stream', 'server CPU s', 'server CPU %'],
      rows1,
    ),
  );
  out('   CPU % = % of one core: unpaced = CPU s / wall s; paced = over the steady window. "CPU vs fakesink": unpaced compares CPU s, paced compares CPU %.');
  out('   server CPU: the openkvs server process over the whole run (unpaced) or the window (paced, %).');
  out();

  // ---- table 2: upload
  const rows2 = outcomes
    .filter((o) => o.plan.sink === 'kvssink')
    .map((o) => {
      const sinks = [...o.result.sinks.values()];
      const lat = summarize(sinks.flatMap((s) => s.persistedLatencyMs));
      const persisted = sinks.reduce((a, s) => a + s.persistedTimecodes.size, 0);
      const expected = o.plan.paced ? NaN : o.expectedFragments * o.plan.streams * o.reps;
      const conns = sinks.reduce((a, s) => a + s.connections, 0);
      const dropped = sinks.reduce((a, s) => a + s.dropped, 0);
      const errors = sinks.reduce((a, s) => a + s.errors.length, 0);
      const complete = o.plan.paced || persisted >= expected;
      return [
        o.plan.id,
        modeLabel(o),
        fmtNum(mediaSeconds(o, clip) * o.plan.streams, 0),
        fmtNum(o.result.wallS, 2),
        complete ? fmtNum(mediaSeconds(o, clip) / o.result.wallS, 1) : 'incomplete',
        o.plan.paced ? '-' : fmtNum(o.result.uploadS, 2),
        o.plan.paced || !complete ? '-' : fmtNum(mediaSeconds(o, clip) / o.result.uploadS, 0),
        o.plan.paced ? `${persisted}` : `${persisted}/${expected}`,
        `${conns}`,
        `${lat.n}`,
        fmtMs(lat.p50, 0),
        fmtMs(lat.p99, 0),
        fmtMs(lat.max, 0),
        `${dropped}`,
        `${errors}`,
      ];
    });
  out('2. Upload (kvssink runs): throughput, fragments, fragment end -> PERSISTED latency (latency-ms of the PERSISTED acks on the bus)');
  out(
    formatTable(
      ['run', 'mode', 'media s', 'wall s', 'x real time', 'upload s', 'x real time (upload)', 'fragments persisted', 'connections', 'acks', 'PERSISTED p50 ms', 'p99 ms', 'max ms', 'dropped', 'errors'],
      rows2,
    ),
  );
  out('   x real time = media duration / wall time of the whole gst-launch process (start-up, upload, EOS wait for the last PERSISTED);');
  out('   upload s = kvssink-stream-ready -> last PERSISTED ack (as read from gst-launch output): the upload without process and stream start-up.');
  out('   Unpaced latency mostly measures queueing (the whole file is buffered at once); the paced rows are the real-time latency.');
  out();

  // ---- table 3: threads
  const withThreads = outcomes.filter((o) => o.result.window && o.plan.paced);
  if (withThreads.length > 0) {
    out(`3. Where the CPU goes: threads of the gst-launch process over the paced window, % of one core (thread names are inherited;`);
    out(`   in each name the first thread is the original, later ones were started from it — for kvssink, its uploader thread)`);
    const rows3: string[][] = [];
    for (const o of withThreads) {
      const w = o.result.window!;
      rows3.push([`${o.plan.id}`, o.plan.sink, 'whole process', '', fmtNum(w.cpuPct, 1)]);
      for (const t of w.threads.filter((t) => t.cpuPct >= 0.05).slice(0, 6)) rows3.push(['', '', t.group, `${t.threads}`, fmtNum(t.cpuPct, 1)]);
      const others = w.machinePct - w.cpuPct - (o.plan.sink === 'kvssink' ? w.serverCpuPct : 0);
      if (o.plan.sink === 'kvssink') rows3.push(['', '', 'openkvs server process', '', fmtNum(w.serverCpuPct, 1)]);
      rows3.push(['', '', 'other processes on the machine', '', fmtNum(others, 1)]);
    }
    out(formatTable(['run', 'sink', 'threads', 'n', 'CPU %'], rows3));
    out();
  }

  // ---- notes
  const notes: string[] = [];
  for (const o of outcomes) {
    if (o.plan.sink !== 'kvssink') continue;
    const sinks = [...o.result.sinks.values()];
    const persisted = sinks.reduce((a, s) => a + s.persistedTimecodes.size, 0);
    const conns = sinks.reduce((a, s) => a + s.connections, 0);
    if (!o.plan.paced && persisted < o.expectedFragments * o.plan.streams * o.reps) {
      notes.push(
        `! ${o.plan.id}: kvssink reached EOS with ${persisted}/${o.expectedFragments * o.plan.streams * o.reps} fragments persisted after opening ${conns} PutMedia connections ` +
          `(states: ${[...sinks[0]?.connectionStates ?? []].map(([k, v]) => `${k} ${v}`).join(', ')}); the rest of the file was not uploaded.`,
      );
    } else if (conns > o.plan.streams * o.reps * 2) {
      notes.push(`! ${o.plan.id}: ${conns} PutMedia connections for ${o.plan.streams * o.reps} stream run(s).`);
    }
    const errs = sinks.flatMap((s) => s.errors);
    if (errs.length > 0) notes.push(`! ${o.plan.id}: kvssink-error messages: ${[...new Set(errs)].slice(0, 3).join(' | ')}`);
    if (o.plan.paced && o.result.endedByEos) notes.push(`! ${o.plan.id}: the process ended before the window closed`);
  }
  for (const o of outcomes) {
    const others = o.plan.paced && o.result.window ? o.result.window.machinePct - o.result.window.cpuPct - (o.plan.sink === 'kvssink' ? o.result.window.serverCpuPct : 0) : o.result.otherCpuPct;
    if (others > QUIET_CPU) notes.push(`! ${o.plan.id} ${o.plan.sink}: other processes used ${others.toFixed(0)} % of one core during the run; its numbers are noisy.`);
    if (o.result.exitCode !== 0) notes.push(`! ${o.plan.id} ${o.plan.sink}: gst-launch exited with ${o.result.exitCode}`);
    if (o.result.stdinClosedAtS !== undefined && o.plan.sink === 'kvssink') notes.push(`  ${o.plan.id}: stdin closed (EOS) ${o.result.stdinClosedAtS.toFixed(2)} s after start (median).`);
  }
  for (const n of notes) out(n);
  if (notes.length) out();
  progress(`done in ${((nowMs() - runStart) / 1000).toFixed(0)} s`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
