/**
 * Runs gst-launch-1.0 pipelines with the kvssink built by `npm run build`, collecting the bus
 * messages that `-m` prints.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parseStructure } from '../../bench/sink/gst-run.js';

export const PLUGIN_DIR = path.resolve('cmake-build/release/gst-plugin');

export function hasElement(name: string): boolean {
  return spawnSync('gst-inspect-1.0', ['--exists', name]).status === 0;
}

export interface BusMessage {
  name: string;
  fields: Record<string, string>;
}

export interface GstRun {
  child: ChildProcess;
  messages: BusMessage[];
  output: () => string;
  /** Resolves with the exit code (null when killed). */
  exited: Promise<number | null>;
  /** Resolves when a message matching the predicate has been printed. */
  waitFor(pred: (m: BusMessage) => boolean, timeoutMs?: number): Promise<BusMessage>;
}

/** Runs a pipeline; `eos: false` makes Ctrl-C (SIGINT) stop it without EOS. */
export function gstLaunch(pipeline: string, env: Record<string, string> = {}, opts: { eos?: boolean } = {}): GstRun {
  const flags = opts.eos === false ? ['-m'] : ['-e', '-m'];
  const child = spawn('gst-launch-1.0', [...flags, ...pipeline.split(/\s+/).filter(Boolean)], {
    env: { ...process.env, GST_PLUGIN_PATH: PLUGIN_DIR, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const messages: BusMessage[] = [];
  const waiters: Array<{ pred: (m: BusMessage) => boolean; resolve: (m: BusMessage) => void }> = [];
  let out = '';
  let pending = '';
  const onText = (d: Buffer) => {
    const text = d.toString();
    out += text;
    pending += text;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      const m = /Got message #\d+ from element "[^"]+" \(element\): (.*)$/.exec(line);
      if (!m) continue;
      const msg = parseStructure(m[1]!.replace(/;$/, ''));
      messages.push(msg);
      for (const w of [...waiters]) {
        if (w.pred(msg)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(msg);
        }
      }
    }
  };
  child.stdout!.on('data', onText);
  child.stderr!.on('data', onText);
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    child,
    messages,
    output: () => out,
    exited,
    waitFor(pred, timeoutMs = 30_000) {
      const found = messages.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching bus message within ${timeoutMs} ms:\n${out.slice(-3000)}`)), timeoutMs);
        waiters.push({
          pred,
          resolve: (m) => {
            clearTimeout(timer);
            resolve(m);
          },
        });
      });
    },
  };
}

export const awsEnv = { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };

const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';

/**
 * Runs a Python GStreamer program (PyGObject, as applications are written) with the kvssink
 * built by `npm run build` and the AWS test environment; `args` become its sys.argv[1:].
 * Resolves with its exit code and everything it printed.
 */
export async function runPythonGst(program: string, args: string[], env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(PYTHON, ['-c', program, ...args], { env: { ...process.env, ...env, GST_PLUGIN_PATH: PLUGIN_DIR }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((r) => child.on('exit', r));
  return { code, output };
}
