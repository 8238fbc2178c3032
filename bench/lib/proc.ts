/** CPU time and memory of a process, from /proc (Linux). */
import { readFileSync } from 'node:fs';

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

/** Samples a process's RSS every interval; keeps the peak and the latest. */
export class RssSampler {
  peak = 0;
  last = 0;
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly pid: number) {}

  sample(): void {
    try {
      this.last = rssBytes(this.pid);
      if (this.last > this.peak) this.peak = this.last;
    } catch {
      // exited
    }
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

/** Busy CPU time of the whole machine (all cores, including steal), seconds. */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / CLOCK_TICKS_PER_SECOND;
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
