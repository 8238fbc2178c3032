/**
 * The processes the bridge benchmark measures: the Node runner (forked, IPC) and gst-launch-1.0
 * (spawned with -e -m; its bus messages are read from stdout), and a measurement window over
 * /proc (CPU of the process, of its main thread, of the server and of the whole machine; RSS).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { RssSampler, cpuSeconds, machineBusySeconds, threadIds } from '../lib/proc.js';
import { nowMs } from '../lib/util.js';
import type { AckCounts, ParentMessage, RunnerJob, RunnerMessage } from './protocol.js';

// ---- the Node runner --------------------------------------------------------------------------

export interface RunnerProcess {
  pid: number;
  /** The next message of this type (messages are kept until asked for). */
  next<T extends RunnerMessage['type']>(type: T, timeoutMs: number): Promise<Extract<RunnerMessage, { type: T }>>;
  send(m: ParentMessage): void;
  exited: Promise<number | null>;
  kill(): void;
  stderrTail(): string;
}

export function forkRunner(job: RunnerJob): RunnerProcess {
  const script = fileURLToPath(new URL('./runner.js', import.meta.url));
  const child: ChildProcess = fork(script, [JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'], execArgv: [] });
  const inbox: RunnerMessage[] = [];
  const waiters: Array<{ type: string; resolve: (m: RunnerMessage) => void; reject: (e: Error) => void }> = [];
  let stderr = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (stderr = (stderr + s).slice(-4000)));
  const deliver = () => {
    for (let i = 0; i < waiters.length; i++) {
      const w = waiters[i]!;
      const failed = inbox.findIndex((m) => m.type === 'failed');
      const k = failed >= 0 ? failed : inbox.findIndex((m) => m.type === w.type);
      if (k < 0) continue;
      const [m] = inbox.splice(k, 1);
      waiters.splice(i--, 1);
      if (m!.type === 'failed') w.reject(new Error(`runner failed: ${m!.message}`));
      else w.resolve(m!);
    }
  };
  child.on('message', (m: RunnerMessage) => {
    inbox.push(m);
    deliver();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      for (const w of waiters.splice(0)) w.reject(new Error(`runner exited (${code}) while waiting for '${w.type}': ${stderr.slice(-1500)}`));
      resolve(code);
    }),
  );
  return {
    pid: child.pid!,
    next(type, timeoutMs) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          const i = waiters.findIndex((w) => w.resolve === wrapped);
          if (i >= 0) waiters.splice(i, 1);
          reject(new Error(`runner: no '${type}' within ${timeoutMs} ms; stderr: ${stderr.slice(-1500)}`));
        }, timeoutMs);
        const wrapped = (m: RunnerMessage) => {
          clearTimeout(timer);
          resolve(m as never);
        };
        waiters.push({ type, resolve: wrapped, reject: (e) => (clearTimeout(timer), reject(e)) });
        deliver();
      });
    },
    send: (m) => child.send(m),
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
    stderrTail: () => stderr,
  };
}

// ---- gst-launch-1.0 ---------------------------------------------------------------------------

export interface GstProcess {
  pid: number;
  /** kvssink-fragment-ack messages read from stdout, by event type. */
  acks: AckCounts;
  /** When the first / last ack line was read (nowMs). */
  firstAckAt: number;
  lastAckAt: number;
  ready: number;
  fragmentsDropped: number;
  errors: string[];
  startedAt: number;
  /** Resolves when `n` kvssink elements posted kvssink-stream-ready. */
  waitReady(n: number, timeoutMs: number): Promise<void>;
  /** SIGINT (-e turns it into EOS); SIGKILL after timeoutMs. */
  stop(timeoutMs: number): Promise<number | null>;
  exited: Promise<number | null>;
  outputTail(): string;
}

const ACK_LINE = /kvssink-fragment-ack, .*event-type=\(string\)(\w+)/;

export function spawnGst(description: string, env: Record<string, string>): GstProcess {
  const child = spawn('gst-launch-1.0', ['-e', '-m', ...description.split(/\s+/).filter(Boolean)], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const g: GstProcess = {
    pid: child.pid!,
    acks: { BUFFERING: 0, RECEIVED: 0, PERSISTED: 0, ERROR: 0 },
    firstAckAt: NaN,
    lastAckAt: NaN,
    ready: 0,
    fragmentsDropped: 0,
    errors: [],
    startedAt: nowMs(),
    waitReady: async () => {},
    stop: async () => null,
    exited: Promise.resolve(null),
    outputTail: () => tail.join('\n'),
  };
  const tail: string[] = [];
  let buf = '';
  let readyWaiter: { n: number; resolve: () => void } | undefined;
  const onLine = (line: string) => {
    const ack = ACK_LINE.exec(line);
    if (ack) {
      const t = nowMs();
      g.acks[ack[1] as keyof AckCounts] = (g.acks[ack[1] as keyof AckCounts] ?? 0) + 1;
      if (Number.isNaN(g.firstAckAt)) g.firstAckAt = t;
      g.lastAckAt = t;
      return;
    }
    if (line.includes('kvssink-stream-ready')) {
      g.ready++;
      if (readyWaiter && g.ready >= readyWaiter.n) readyWaiter.resolve();
    } else if (line.includes('kvssink-dropped')) {
      g.fragmentsDropped++;
    } else if (/kvssink-error|^ERROR/.test(line) && g.errors.length < 5) {
      g.errors.push(line.slice(0, 300));
    }
    if (!line.includes('kvssink-stats')) {
      tail.push(line.slice(0, 300));
      if (tail.length > 15) tail.shift();
    }
  };
  const onData = (s: string) => {
    buf += s;
    const lines = buf.split('\n');
    buf = lines.pop()!;
    lines.forEach(onLine);
  };
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', onData);
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', onData);
  g.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  g.waitReady = (n, timeoutMs) =>
    new Promise((resolve, reject) => {
      if (g.ready >= n) return resolve();
      const timer = setTimeout(() => reject(new Error(`gst-launch: ${g.ready}/${n} kvssink-stream-ready within ${timeoutMs} ms:\n${g.outputTail()}`)), timeoutMs);
      readyWaiter = { n, resolve: () => (clearTimeout(timer), resolve()) };
      void g.exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`gst-launch exited before ${n} kvssink-stream-ready:\n${g.outputTail()}`));
      });
    });
  g.stop = async (timeoutMs) => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGINT');
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      const code = await g.exited;
      clearTimeout(timer);
      return code;
    }
    return child.exitCode;
  };
  return g;
}

// ---- the measurement window ------------------------------------------------------------------

/**
 * CPU time of one thread, seconds, from /proc/<pid>/task/<tid>/schedstat (ns on the CPU): per-thread
 * utime/stime are whole 10-ms ticks, too coarse for threads that run a few ms a second.
 */
function threadCpuSeconds(pid: number, tid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1').split(' ')[0]) / 1e9;
}

/** CPU seconds of a process's live threads, split: the main thread, threads named like it (started by it and never renamed), the rest. */
function threadGroups(pid: number): { main: number; sameName: number; named: number } {
  const out = { main: 0, sameName: 0, named: 0 };
  let mainComm = '';
  const rows: Array<{ tid: number; comm: string; s: number }> = [];
  for (const tid of threadIds(pid)) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'latin1').trim();
      const sec = threadCpuSeconds(pid, tid);
      if (tid === pid) mainComm = comm;
      rows.push({ tid, comm, s: sec });
    } catch {
      // exited
    }
  }
  for (const r of rows) {
    if (r.tid === pid) out.main += r.s;
    else if (r.comm === mainComm) out.sameName += r.s;
    else out.named += r.s;
  }
  return out;
}

function threadCount(pid: number): number {
  const m = /^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return m ? Number(m[1]) : NaN;
}

export interface WindowResult {
  seconds: number;
  /** The measured process, % of one core (user + sys of all its threads). */
  cpuPct: number;
  /** Its main thread (for Node: the JS thread), % of one core. */
  mainThreadPct: number;
  /**
   * Threads still named like the process (Linux threads inherit their creator's name): for node,
   * the addon's GLib loop thread and V8/libuv helpers; for gst-launch, GLib helper threads.
   */
  sameNamePct: number;
  /** Threads with names of their own: GStreamer streaming threads (named after their pad) and the kvssink/curl threads they start. */
  namedPct: number;
  serverPct: number;
  /** Every other process on the machine (busy machine time minus the process and the server). */
  othersPct: number;
  rssStartMiB: number;
  rssEndMiB: number;
  rssMeanMiB: number;
  rssPeakMiB: number;
  threads: number;
}

const MiB = 2 ** 20;

/** Measures `pid` (and the server) from now until `end()`; RSS sampled every 250 ms. */
export function openWindow(pid: number, serverPid: number | undefined): { end(): WindowResult } {
  const t0 = nowMs();
  const cpu0 = cpuSeconds(pid);
  const main0 = threadCpuSeconds(pid, pid);
  const groups0 = threadGroups(pid);
  const srv0 = serverPid ? cpuSeconds(serverPid) : 0;
  const mach0 = machineBusySeconds();
  const rss = new RssSampler(pid);
  rss.start(250);
  return {
    end() {
      rss.stop();
      const seconds = (nowMs() - t0) / 1000;
      const pct = (v: number) => (v / seconds) * 100;
      const cpu = pct(cpuSeconds(pid) - cpu0);
      const groups1 = threadGroups(pid);
      const srv = serverPid ? pct(cpuSeconds(serverPid) - srv0) : 0;
      const mach = pct(machineBusySeconds() - mach0);
      return {
        seconds,
        cpuPct: cpu,
        mainThreadPct: pct(threadCpuSeconds(pid, pid) - main0),
        // Threads that exited during the window are missing from both groups (their time is in cpuPct only).
        sameNamePct: pct(groups1.sameName - groups0.sameName),
        namedPct: pct(groups1.named - groups0.named),
        serverPct: srv,
        othersPct: Math.max(0, mach - cpu - srv),
        rssStartMiB: rss.first / MiB,
        rssEndMiB: rss.last / MiB,
        rssMeanMiB: rss.mean / MiB,
        rssPeakMiB: rss.peak / MiB,
        threads: threadCount(pid),
      };
    },
  };
}

/** gst-launch-1.0 -q under /usr/bin/time: wall, CPU and peak RSS after exit (undefined without /usr/bin/time). */
export async function timedGst(description: string): Promise<{ wallS: number; cpuS: number; maxRssMiB: number; code: number | null } | undefined> {
  if (!existsSync('/usr/bin/time')) return undefined;
  const child = spawn('/usr/bin/time', ['-f', 'TIME %e %U %S %M', 'gst-launch-1.0', '-q', ...description.split(/\s+/).filter(Boolean)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => (err = (err + s).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(err);
  if (!m) return undefined;
  return { wallS: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]), maxRssMiB: Number(m[4]) / 1024, code };
}
