/**
 * The openkvs server under test, in its own process:
 * `node dist/lib/cli/main.js serve --port 0 --data-dir D --log-level warn`, plus the flags of a
 * security mode (security.ts) when one is asked for.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { BENCH_CREDENTIALS, type ClientSecurity, type SecurityMode, serveFlags } from './security.js';
import { repoRoot } from './util.js';

export interface ServerProcess {
  pid: number;
  url: string;
  port: number;
  dataDir: string;
  /** How clients reach it: the CA to trust and the key to sign with (security mode on). */
  security: ClientSecurity;
  /** Warnings and errors the server logged (stderr and stdout after the listening line), last lines. */
  logTail(): string;
  /** Number of log lines written after startup (the server runs at --log-level warn). */
  logLines(): number;
  /** SIGTERM, wait for exit (SIGKILL after timeoutMs), then remove the data dir. */
  stop(timeoutMs?: number): Promise<void>;
}

export interface ServerProcessOptions {
  /** Extra node flags for the server, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Keep the data dir after stop (default: removed). */
  keepData?: boolean;
  /** Append everything the server prints to this file. */
  logFile?: string;
  /** The CLI entry to run (default dist/lib/cli/main.js of this repository), e.g. a patched build to compare. */
  main?: string;
  /** `on`: HTTPS, SigV4 and encryption at rest; `off`: none of them; `at-rest`, or omitted: the server's defaults. */
  security?: SecurityMode;
}

export async function startServerProcess(opts: ServerProcessOptions = {}): Promise<ServerProcess> {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'openkvs-bench-'));
  const main = opts.main ? path.resolve(opts.main) : path.join(repoRoot(), 'dist/lib/cli/main.js');
  const child = spawn(
    process.execPath,
    [...(opts.nodeArgs ?? []), main, 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn', ...(opts.security ? serveFlags(opts.security) : [])],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const tail: string[] = [];
  let lines = 0;
  let listening = false;
  const onLine = (line: string) => {
    if (line.trim() === '' || line.startsWith('clients trust ')) return; // the start banner's second line
    if (opts.logFile) appendFileSync(opts.logFile, `${line}\n`);
    lines++;
    tail.push(line.length > 400 ? `${line.slice(0, 400)}…` : line);
    if (tail.length > 20) tail.shift();
  };
  let stderrBuf = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderrBuf += s;
    const parts = stderrBuf.split('\n');
    stderrBuf = parts.pop()!;
    parts.forEach(onLine);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`server did not start in time: ${tail.join('\n')}`)), 20_000);
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      if (listening) {
        s.split('\n').forEach(onLine);
        return;
      }
      out += s;
      const m = /listening on (https?:\/\/\S+)/.exec(out);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (!listening) reject(new Error(`server exited (${code}) before listening: ${out} ${tail.join('\n')}`));
    });
    child.on('error', reject);
  });
  lines = 0;

  return {
    pid: child.pid!,
    url,
    port: Number(new URL(url).port),
    dataDir,
    security:
      opts.security === 'on'
        ? { mode: 'on', ca: readFileSync(path.join(dataDir, 'tls', 'cert.pem'), 'utf8'), credentials: BENCH_CREDENTIALS }
        : { mode: opts.security ?? 'at-rest' },
    logTail: () => tail.join('\n'),
    logLines: () => lines,
    async stop(timeoutMs = 15_000) {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
        await exited;
        clearTimeout(timer);
      }
      if (!opts.keepData) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
