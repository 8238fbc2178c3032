/** CPU time and memory of a process, from /proc (Linux). */
import { readFileSync, readdirSync } from 'node:fs';
import { nowMs, sleep } from './util.js';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat (100 on every Linux architecture Node supports). */
export const CLOCK_TICKS_PER_SECOND = 100;

/** utime + stime of every thread of the process, seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // Fields after the command name (which may contain spaces) start at field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS_PER_SECOND;
}

/** Resident set size, bytes. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
  return m ? Number(m[1]) * 1024 : NaN;
}

/** CPU use of some processes between start() and stop(), as % of one core (200 % = both of 2 cores). */
export class CpuMeter {
  private startCpu = 0;
  private startWall = 0;
  constructor(private readonly pids: readonly number[]) {}

  private total(): number {
    let sum = 0;
    for (const pid of this.pids) {
      try {
        sum += cpuSeconds(pid);
      } catch {
        // the process has exited
      }
    }
    return sum;
  }

  start(): void {
    this.startCpu = this.total();
    this.startWall = performance.now();
  }

  /** Percent of one core since start(). */
  read(): number {
    const wall = (performance.now() - this.startWall) / 1000;
    return wall > 0 ? ((this.total() - this.startCpu) / wall) * 100 : NaN;
  }
}

/** Samples a process's RSS every interval, bytes; keeps the first, the peak, the latest and the mean. */
export class RssSampler {
  first = NaN;
  peak = 0;
  last = 0;
  private sum = 0;
  private count = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly pid: number) {}

  get mean(): number {
    return this.count > 0 ? this.sum / this.count : NaN;
  }

  sample(): void {
    try {
      this.last = rssBytes(this.pid);
    } catch {
      return; // exited
    }
    if (this.count === 0) this.first = this.last;
    if (this.last > this.peak) this.peak = this.last;
    this.sum += this.last;
    this.count++;
  }

  start(intervalMs = 500): void {
    this.sample();
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }
}

export interface MachineCpu {
  /** Every busy second of the machine: user, nice, system, irq, softirq, steal. */
  busy: number;
  /** Kernel work charged to no process: irq + softirq time (loopback TCP is largely softirq). */
  interrupts: number;
  /** Time the hypervisor ran something else on our vCPUs. */
  steal: number;
  /** CPU seconds of each kernel thread alive now (ksoftirqd, kworker writeback, jbd2, …), by pid: they come and go, so compare per pid. */
  kernelThreads: Map<string, number>;
}

/** CPU seconds of the whole machine so far, split as MachineCpu. */
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  const kernelThreads = new Map<string, number>();
  const t = CLOCK_TICKS_PER_SECOND;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Kernel threads are kthreadd (pid 2) and its children.
      if (name === '2' || fields[1] === '2') kernelThreads.set(name, (Number(fields[11]) + Number(fields[12])) / t);
    } catch {
      // gone
    }
  }
  return {
    busy: (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / t,
    interrupts: (irq! + softirq!) / t,
    steal: (steal ?? 0) / t,
    kernelThreads,
  };
}

/** Busy CPU time of the whole machine (all cores, including steal), seconds. */
export function machineBusySeconds(): number {
  return machineCpu().busy;
}

/** Busy CPU of the whole machine over `ms`, % of one core. */
export async function machineBusyPct(ms: number): Promise<number> {
  const b0 = machineBusySeconds();
  const t0 = nowMs();
  await sleep(ms);
  return ((machineBusySeconds() - b0) / ((nowMs() - t0) / 1000)) * 100;
}

export interface QuietOptions {
  /** Quiet: the machine is less busy than this, % of one core. */
  belowPct: number;
  /** How long each look at the machine lasts, ms. */
  sampleMs: number;
  /** How long the whole run may spend waiting, ms. */
  budgetMs: number;
  progress: (msg: string) => void;
}

/**
 * Other benchmarks may share the machine: waits, bounded per call and over the whole run, until
 * it is mostly idle before a measurement starts.
 */
export class QuietWaiter {
  private budgetMs: number;
  constructor(private readonly opts: QuietOptions) {
    this.budgetMs = opts.budgetMs;
  }

  /** Resolves once the machine is quiet, or after maxMs (and within what is left of the budget) anyway. */
  async wait(maxMs = Infinity): Promise<void> {
    const until = nowMs() + Math.min(maxMs, this.budgetMs);
    for (;;) {
      const t0 = nowMs();
      const busy = await machineBusyPct(this.opts.sampleMs);
      if (busy < this.opts.belowPct) return;
      this.budgetMs -= nowMs() - t0;
      if (nowMs() >= until || this.budgetMs <= 0) {
        this.opts.progress(`   the machine is still busy (other processes use ${busy.toFixed(0)} % of one core); going on`);
        return;
      }
      this.opts.progress(`   waiting for the machine to quiet down: other processes use ${busy.toFixed(0)} % of one core`);
    }
  }
}

/** The thread ids of a process ([] once it has exited). */
export function threadIds(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [];
  }
}

/** Machine-wide busy CPU between start() and read(), % of one core. */
export class MachineCpuMeter {
  private startBusy = 0;
  private startWall = 0;

  start(): void {
    this.startBusy = machineBusySeconds();
    this.startWall = performance.now();
  }

  read(): number {
    const wall = (performance.now() - this.startWall) / 1000;
    return wall > 0 ? ((machineBusySeconds() - this.startBusy) / wall) * 100 : NaN;
  }
}

/** CPU seconds kernel threads used between two readings; one that exited meanwhile is not counted (never negative). */
function kernelThreadsSince(start: MachineCpu, now: MachineCpu): number {
  let sum = 0;
  for (const [pid, s] of now.kernelThreads) sum += Math.max(0, s - (start.kernelThreads.get(pid) ?? 0));
  return sum;
}

/** Machine-wide CPU between start() and read(), split into all busy time and its kernel part, % of one core. */
export class MachineCpuSplitMeter {
  private startCpu: MachineCpu | undefined;
  private startWall = 0;

  start(): void {
    this.startCpu = machineCpu();
    this.startWall = performance.now();
  }

  /** Busy %, and its kernel part (interrupts + kernel threads + steal) %. */
  read(): { busy: number; kernel: number } {
    const wall = (performance.now() - this.startWall) / 1000;
    const now = machineCpu();
    const start = this.startCpu ?? now;
    const pct = (v: number) => (wall > 0 ? (v / wall) * 100 : NaN);
    return {
      busy: pct(now.busy - start.busy),
      kernel: pct(now.interrupts - start.interrupts + kernelThreadsSince(start, now) + now.steal - start.steal),
    };
  }
}
