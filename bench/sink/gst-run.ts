/**
 * Runs one `gst-launch-1.0 -e -m PIPELINE` for the kvssink benchmark and measures it:
 *
 *  - CPU (user + sys) and peak RSS of the whole gst-launch process, from `/usr/bin/time` (exact,
 *    read after exit), or from /proc/<pid>/stat sampled until exit when `time` is missing;
 *  - CPU % over a steady window (of the process, of each thread group, of the server, of the
 *    whole machine), from /proc;
 *  - the kvssink bus messages gst-launch prints with `-m`, per element: PERSISTED latencies
 *    (`latency-ms`), connections, errors, the last `kvssink-stats`.
 */
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CLOCK_TICKS_PER_SECOND, cpuSeconds, machineBusySeconds, rssBytes, threadIds } from '../lib/proc.js';
import { nowMs, sleep } from '../lib/util.js';

export const TIME_BIN = '/usr/bin/time';
export const haveGnuTime = (): boolean => existsSync(TIME_BIN);

export interface BusMessage {
  element: string;
  name: string;
  fields: Record<string, string>;
}

/** Parses `name, key=(type)value, key=(type)"quoted value", …` as gst-launch prints structures. */
export function parseStructure(text: string): { name: string; fields: Record<string, string> } {
  const comma = text.indexOf(',');
  const name = (comma < 0 ? text : text.slice(0, comma)).trim();
  const fields: Record<string, string> = {};
  const re = /([\w-]+)=\(([\w]+)\)("(?:[^"\\]|\\.)*"|[^,;]*)/g;
  for (const m of text.slice(comma + 1).matchAll(re)) {
    let v = m[3]!.trim();
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, '$1');
    fields[m[1]!] = v;
  }
  return { name, fields };
}

const ELEMENT_MESSAGE = /Got message #\d+ from element "([^"]+)" \(element\): (.*)$/;

/** What the bus said about one kvssink element. */
export class SinkBus {
  persistedLatencyMs: number[] = [];
  persistedTimecodes = new Set<string>();
  connections = 0;
  connectionStates = new Map<string, number>();
  errors: string[] = [];
  dropped = 0;
  /** When gst-launch printed kvssink-stream-ready, s from the process start. */
  readyAtS: number | undefined;
  /** When gst-launch printed the last PERSISTED ack, s from the process start. */
  lastPersistedAtS: number | undefined;
  lastStats: Record<string, string> | undefined;

  /** `atS`: when the message was read from gst-launch's output, s from the process start. */
  add(m: BusMessage, atS: number): void {
    switch (m.name) {
      case 'kvssink-stream-ready':
        this.readyAtS = atS;
        break;
      case 'kvssink-fragment-ack':
        if (m.fields['event-type'] === 'PERSISTED') {
          const tc = m.fields.timecode ?? '';
          if (!this.persistedTimecodes.has(tc)) {
            this.persistedTimecodes.add(tc);
            this.persistedLatencyMs.push(Number(m.fields['latency-ms']));
            this.lastPersistedAtS = atS;
          }
        }
        break;
      case 'kvssink-connection': {
        const state = m.fields.state ?? '?';
        if (state === 'connecting') this.connections++;
        this.connectionStates.set(state, (this.connectionStates.get(state) ?? 0) + 1);
        break;
      }
      case 'kvssink-error':
        if (this.errors.length < 20) this.errors.push(m.fields.message ?? '?');
        break;
      case 'kvssink-dropped':
        this.dropped++;
        break;
      case 'kvssink-stats':
        this.lastStats = m.fields;
        break;
      default:
        break;
    }
  }
}

export interface ThreadCpu {
  /** Thread group, e.g. "h264parse*:sink (streaming)". */
  group: string;
  threads: number;
  /** % of one core over the window. */
  cpuPct: number;
}

export interface WindowStats {
  seconds: number;
  /** gst-launch process, % of one core. */
  cpuPct: number;
  serverCpuPct: number;
  /** Every process on the machine, % of one core. */
  machinePct: number;
  threads: ThreadCpu[];
}

export interface GstRunResult {
  label: string;
  exitCode: number | null;
  wallS: number;
  userS: number;
  sysS: number;
  cpuS: number;
  peakRssMiB: number;
  /** How CPU/RSS were measured. */
  source: 'time' | 'proc';
  window: WindowStats | undefined;
  /** Server CPU seconds over the whole run (when a server pid was given). */
  serverCpuS: number;
  /** CPU of every other process on the machine over the whole run, % of one core. */
  otherCpuPct: number;
  sinks: Map<string, SinkBus>;
  /** First kvssink-stream-ready to the last PERSISTED ack, s (NaN without kvssink). */
  uploadS: number;
  /** Set when the run stopped on its own before stopAfterMs (EOS of the file). */
  endedByEos: boolean;
  stdinClosedAtS: number | undefined;
  outputTail: string;
}

export interface GstRunOptions {
  label: string;
  /** The pipeline description, split into gst-launch arguments. */
  pipeline: string[];
  env: Record<string, string>;
  /** Piped into gst-launch's stdin (for `fdsrc fd=0`); stdin stays open until `closeStdinWhen` says so. */
  stdinFile?: string;
  closeStdinWhen?: (sinks: Map<string, SinkBus>) => boolean;
  /** Close stdin anyway after this long (ms from start). */
  closeStdinAfterMs?: number;
  /** SIGINT (gst-launch -e turns it into EOS) after this long, ms from start. */
  stopAfterMs?: number;
  /** The steady window starts this long after start (ms) and ends at stopAfterMs. */
  windowStartMs?: number;
  serverPid?: number;
  /** SIGKILL after this long, ms. */
  timeoutMs: number;
  progress?: (msg: string) => void;
}

function readThreads(pid: number): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>();
  for (const tid of threadIds(pid)) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'latin1');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(tid, { comm, ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // thread exited
    }
  }
  return out;
}

/**
 * Groups threads for the report. A thread inherits its creator's name on Linux, so the threads
 * kvssink starts from a streaming thread (the uploader, and curl's) carry the streaming thread's
 * name: in each name, the lowest thread id is the original thread, the others were started from it.
 */
function groupThreads(
  pid: number,
  before: Map<number, { comm: string; ticks: number }>,
  after: Map<number, { comm: string; ticks: number }>,
  seconds: number,
): ThreadCpu[] {
  const byComm = new Map<string, number[]>();
  for (const [tid, t] of after) {
    const list = byComm.get(t.comm) ?? [];
    list.push(tid);
    byComm.set(t.comm, list);
  }
  const groups = new Map<string, { threads: number; ticks: number }>();
  for (const [comm, tids] of byComm) {
    tids.sort((a, b) => a - b);
    // "h264parse12:sin" (names are cut at 15 characters) -> "h264parse*:sink"
    const m = /^(.*?)(\d+):(.*)$/.exec(comm);
    const pad = m ? (m[3] !== '' && 'sink'.startsWith(m[3]!) ? 'sink' : m[3] !== '' && 'src'.startsWith(m[3]!) ? 'src' : m[3]) : '';
    const generic = m ? `${m[1]}*:${pad}` : comm;
    tids.forEach((tid, i) => {
      let role: string;
      if (tid === pid) role = `${generic} (main thread: bus, -m printing)`;
      else if (i === 0 || comm === 'gst-launch-1.0' || comm === 'gmain' || comm === 'pool-spawner') role = `${generic}`;
      else role = `${generic} (started from it: kvssink uploader)`;
      const ticks = after.get(tid)!.ticks - (before.get(tid)?.ticks ?? 0);
      const g = groups.get(role) ?? { threads: 0, ticks: 0 };
      g.threads++;
      g.ticks += ticks;
      groups.set(role, g);
    });
  }
  return [...groups]
    .map(([group, g]) => ({ group, threads: g.threads, cpuPct: ((g.ticks / CLOCK_TICKS_PER_SECOND) / seconds) * 100 }))
    .sort((a, b) => b.cpuPct - a.cpuPct);
}

const safeCpu = (pid: number | undefined): number => {
  if (pid === undefined) return NaN;
  try {
    return cpuSeconds(pid);
  } catch {
    return NaN;
  }
};

export async function runGst(opts: GstRunOptions): Promise<GstRunResult> {
  const useTime = haveGnuTime();
  const timeFile = path.join(os.tmpdir(), `openkvs-sinkbench-time-${process.pid}-${Math.random().toString(36).slice(2)}.txt`);
  const gstArgs = ['-e', '-m', ...opts.pipeline];
  const cmd = useTime ? TIME_BIN : 'gst-launch-1.0';
  const args = useTime ? ['-f', '%e %U %S %M', '-o', timeFile, 'gst-launch-1.0', ...gstArgs] : gstArgs;
  const t0 = nowMs();
  const serverCpu0 = safeCpu(opts.serverPid);
  const machine0 = machineBusySeconds();
  const child = spawn(cmd, args, {
    env: { ...process.env, ...opts.env },
    stdio: [opts.stdinFile ? 'pipe' : 'ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? -1 : null))));
  let done = false;
  void exited.then(() => {
    done = true;
  });

  const sinks = new Map<string, SinkBus>();
  const tail: string[] = [];
  let pending = '';
  let stdinClosedAtS: number | undefined;
  let stdinOpen = false;
  let fileWritten = false;
  let closeWanted = false;
  /** Ends stdin (EOS for fdsrc) once the whole file has been written into it. */
  const closeStdin = () => {
    closeWanted = true;
    if (!stdinOpen || !fileWritten) return;
    stdinOpen = false;
    stdinClosedAtS = (nowMs() - t0) / 1000;
    child.stdin?.end();
  };
  const onText = (d: Buffer) => {
    pending += d.toString('latin1');
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const m = ELEMENT_MESSAGE.exec(line);
      if (!m) {
        if (!line.startsWith('Got message') && line.trim() !== '') {
          tail.push(line.length > 300 ? `${line.slice(0, 300)}…` : line);
          if (tail.length > 40) tail.shift();
        }
        continue;
      }
      const s = parseStructure(m[2]!.replace(/;$/, ''));
      if (!s.name.startsWith('kvssink-')) continue;
      let bus = sinks.get(m[1]!);
      if (!bus) {
        bus = new SinkBus();
        sinks.set(m[1]!, bus);
      }
      bus.add({ element: m[1]!, ...s }, (nowMs() - t0) / 1000);
      if (stdinOpen && opts.closeStdinWhen?.(sinks)) closeStdin();
    }
  };
  child.stdout!.on('data', onText);
  child.stderr!.on('data', onText);

  if (opts.stdinFile) {
    stdinOpen = true;
    child.stdin!.on('error', () => {}); // EPIPE when gst-launch exits first
    const rs = createReadStream(opts.stdinFile);
    rs.on('end', () => {
      fileWritten = true;
      if (closeWanted || !opts.closeStdinWhen) closeStdin();
    });
    rs.pipe(child.stdin!, { end: false });
  }

  // The gst-launch process: `time`'s child.
  let gstPid: number | undefined = useTime ? undefined : child.pid;
  while (gstPid === undefined && !done) {
    try {
      const kids = readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'latin1').trim();
      if (kids !== '') gstPid = Number(kids.split(' ')[0]);
    } catch {
      // not yet
    }
    if (gstPid === undefined) await sleep(2);
  }

  // Sampling (the /proc fallback for CPU and RSS), the window, SIGINT, stdin, the timeout.
  let lastCpu = 0;
  let peakRss = 0;
  let w0: { t: number; cpu: number; server: number; machine: number; threads: Map<number, { comm: string; ticks: number }> } | undefined;
  let window: WindowStats | undefined;
  let endedByEos = false;
  const sample = () => {
    if (gstPid === undefined) return;
    const c = safeCpu(gstPid);
    if (Number.isFinite(c)) lastCpu = c;
    try {
      peakRss = Math.max(peakRss, rssBytes(gstPid));
    } catch {
      // exited
    }
  };
  const closeWindow = () => {
    if (!w0 || gstPid === undefined) return;
    const t = nowMs();
    const seconds = (t - w0.t) / 1000;
    const threads = readThreads(gstPid);
    window = {
      seconds,
      cpuPct: ((safeCpu(gstPid) - w0.cpu) / seconds) * 100,
      serverCpuPct: ((safeCpu(opts.serverPid) - w0.server) / seconds) * 100,
      machinePct: ((machineBusySeconds() - w0.machine) / seconds) * 100,
      threads: groupThreads(gstPid, w0.threads, threads, seconds),
    };
  };
  let sigintSent = false;
  while (!done) {
    const elapsed = nowMs() - t0;
    sample();
    if (!w0 && opts.windowStartMs !== undefined && elapsed >= opts.windowStartMs && gstPid !== undefined) {
      w0 = { t: nowMs(), cpu: safeCpu(gstPid), server: safeCpu(opts.serverPid), machine: machineBusySeconds(), threads: readThreads(gstPid) };
    }
    if (stdinOpen && !closeWanted && opts.closeStdinAfterMs !== undefined && elapsed >= opts.closeStdinAfterMs) {
      opts.progress?.(`   ${opts.label}: closing stdin after ${(elapsed / 1000).toFixed(0)} s (not every fragment was persisted yet)`);
      closeStdin();
    }
    if (!sigintSent && opts.stopAfterMs !== undefined && elapsed >= opts.stopAfterMs) {
      closeWindow();
      sigintSent = true;
      if (gstPid !== undefined) process.kill(gstPid, 'SIGINT');
    }
    if (elapsed >= opts.timeoutMs) {
      opts.progress?.(`   ${opts.label}: timed out after ${(elapsed / 1000).toFixed(0)} s; killing it`);
      if (gstPid !== undefined) process.kill(gstPid, 'SIGKILL');
      break;
    }
    await Promise.race([exited, sleep(100)]);
  }
  if (w0 && !window) {
    // Ended before the planned stop (EOS of the file): the window ends at the last sample.
    endedByEos = true;
  }
  const exitCode = await exited;
  const wallS = (nowMs() - t0) / 1000;
  fileWritten = true;
  closeStdin();
  const serverCpuS = safeCpu(opts.serverPid) - serverCpu0;
  const machineS = machineBusySeconds() - machine0;

  let userS = NaN;
  let sysS = NaN;
  let peakRssMiB = peakRss / 2 ** 20;
  let source: 'time' | 'proc' = 'proc';
  if (useTime) {
    try {
      const lines = readFileSync(timeFile, 'latin1').trim().split('\n');
      const [, u, s, m] = lines[lines.length - 1]!.trim().split(/\s+/).map(Number);
      userS = u!;
      sysS = s!;
      peakRssMiB = m! / 1024;
      source = 'time';
    } catch {
      // fall back to the samples
    }
    rmSync(timeFile, { force: true });
  }
  const cpuS = source === 'time' ? userS + sysS : lastCpu;
  const otherCpuPct = ((machineS - cpuS - (Number.isFinite(serverCpuS) ? serverCpuS : 0)) / wallS) * 100;
  const ready = [...sinks.values()].map((b) => b.readyAtS ?? NaN);
  const persisted = [...sinks.values()].map((b) => b.lastPersistedAtS ?? NaN);
  const uploadS = sinks.size ? Math.max(...persisted) - Math.min(...ready) : NaN;
  return {
    label: opts.label,
    uploadS,
    exitCode,
    wallS,
    userS,
    sysS,
    cpuS,
    peakRssMiB,
    source,
    window,
    serverCpuS,
    otherCpuPct,
    sinks,
    endedByEos,
    stdinClosedAtS,
    outputTail: tail.join('\n'),
  };
}

const median = (values: number[]): number => {
  const v = values.filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
};

/** Repetitions of one run as one result: medians of the numbers, every repetition's bus messages. */
export function mergeRuns(runs: GstRunResult[]): GstRunResult {
  if (runs.length === 1) return runs[0]!;
  const m = (f: (r: GstRunResult) => number | undefined) => median(runs.map((r) => f(r) ?? NaN));
  const sinks = new Map<string, SinkBus>();
  runs.forEach((r, i) => {
    for (const [k, v] of r.sinks) sinks.set(`${i + 1}:${k}`, v);
  });
  return {
    ...runs[0]!,
    exitCode: runs.find((r) => r.exitCode !== 0)?.exitCode ?? 0,
    wallS: m((r) => r.wallS),
    userS: m((r) => r.userS),
    sysS: m((r) => r.sysS),
    cpuS: m((r) => r.cpuS),
    peakRssMiB: m((r) => r.peakRssMiB),
    serverCpuS: m((r) => r.serverCpuS),
    otherCpuPct: m((r) => r.otherCpuPct),
    uploadS: m((r) => r.uploadS),
    stdinClosedAtS: runs.some((r) => r.stdinClosedAtS !== undefined) ? m((r) => r.stdinClosedAtS) : undefined,
    endedByEos: runs.some((r) => r.endedByEos),
    sinks,
  };
}
