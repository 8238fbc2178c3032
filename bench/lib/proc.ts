/** CPU time and memory of a process, from /proc (Linux). */
import { readFileSync, readdirSync } from 'node:fs';

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

export interface MachineCpu {
  /** Every busy second of the machine: user, nice, system, irq, softirq, steal. */
  busy: number;
  /** Kernel work charged to no process: irq + softirq time (loopback TCP is largely softirq). */
  interrupts: number;
  /** Time the hypervisor ran something else on our vCPUs. */
  steal: number;
  /** CPU of kernel threads (ksoftirqd, kworker writeback, jbd2, …). */
  kernelThreads: number;
}

/** CPU seconds of the whole machine so far, split as MachineCpu. */
export function machineCpu(): MachineCpu {
  const line = readFileSync('/proc/stat', 'latin1').split('\n', 1)[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  let kernelThreads = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Kernel threads are kthreadd (pid 2) and its children.
      if (name === '2' || fields[1] === '2') kernelThreads += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  const t = CLOCK_TICKS_PER_SECOND;
  return {
    busy: (user! + nice! + system! + irq! + softirq! + (steal ?? 0)) / t,
    interrupts: (irq! + softirq!) / t,
    steal: (steal ?? 0) / t,
    kernelThreads: kernelThreads / t,
  };
}

/** Busy CPU time of the whole machine (all cores, including steal), seconds. */
export function machineBusySeconds(): number {
  return machineCpu().busy;
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
      kernel: pct(now.interrupts - start.interrupts + now.kernelThreads - start.kernelThreads + now.steal - start.steal),
    };
  }
}
