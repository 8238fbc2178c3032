/**
 * Real RTSP cameras for tests: `test/helpers/rtsp-server.py` (GstRtspServer) in a child process
 * on 127.0.0.1, serving live H.264 at rtsp://127.0.0.1:PORT/cam. `stop()` kills it (a camera
 * outage); `start()` brings it back on the same port; `pause()` freezes it (a stalled camera).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './server.js';

/** The system Python has the GObject bindings (python3-gi); a pyenv shim may not. */
const PYTHON = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const SCRIPT = path.resolve('test/helpers/rtsp-server.py');

export interface RtspServerOptions {
  codec?: 'h264' | 'h265';
  /** Serve this pre-encoded H.264 clip (byte-stream, MKV or MP4) in a loop instead of a live test pattern. */
  file?: string;
  audio?: boolean;
  /** Ask for this user: `{ name, password }`, Basic authentication (or Digest with `digest`). */
  user?: { name: string; password: string; digest?: boolean };
}

export interface RtspServer {
  port: number;
  url: string;
  /** Starts (again) on the same port; resolves once it accepts connections. */
  start(): Promise<void>;
  /** Kills the server (SIGKILL: the camera vanishes). */
  stop(): Promise<void>;
  /** Freezes the server (SIGSTOP): connections stay open but no data flows. */
  pause(): void;
  resume(): void;
  pid(): number | undefined;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export async function startRtspServer(options: RtspServerOptions = {}): Promise<RtspServer> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const args = [
    SCRIPT,
    String(port),
    '--codec',
    options.codec ?? 'h264',
    ...(options.file ? ['--file', options.file] : []),
    ...(options.audio ? ['--audio'] : []),
    ...(options.user ? ['--user', `${options.user.name}:${options.user.password}`, ...(options.user.digest ? ['--digest'] : [])] : []),
  ];
  const server: RtspServer = {
    port,
    url: `rtsp://127.0.0.1:${port}/cam`,
    async start() {
      let stderr = '';
      const c = spawn(PYTHON, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      c.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      child = c;
      const deadline = Date.now() + 60_000;
      while (!(await accepts(port))) {
        if (c.exitCode !== null) throw new Error(`rtsp-server.py exited with ${c.exitCode}: ${stderr}`);
        if (Date.now() > deadline) throw new Error(`rtsp-server.py is not listening on ${port}: ${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      const c = child;
      child = undefined;
      if (!c || c.exitCode !== null || c.signalCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGKILL');
      await exited;
    },
    pause: () => child?.kill('SIGSTOP'),
    resume: () => child?.kill('SIGCONT'),
    pid: () => child?.pid,
  };
  await server.start();
  return server;
}
