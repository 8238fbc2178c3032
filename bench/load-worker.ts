/**
 * Load-generator worker (forked by bench/server.ts). Opens one PutMedia connection per stream,
 * then, paced 1 fragment per second per stream with the streams staggered across the second,
 * writes each whole fragment at its due time: a per-stream 22-byte Cluster head (only its
 * ABSOLUTE timecode is rewritten) plus the clip's pre-built, shared fragment body — one writev,
 * no copies. Reports PERSISTED latency, measured from the moment the fragment's last byte left
 * the socket to the PERSISTED ack.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { type Clip, clusterHead, loadClip, setHeadTimecode } from './lib/media.js';
import type { FromWorker, GoMessage, PrepareMessage, ResultMessage, ToWorker, WorkerStream } from './lib/protocol.js';
import type { PutMediaAck } from '../lib/put-media-ack.js';
import { RawPutMedia } from './lib/put-media-socket.js';
import { nowMs } from './lib/util.js';

interface Sent {
  due: number;
  issued: number;
  done?: number;
  persisted?: number;
  bytes: number;
  measured: boolean;
}

interface StreamState {
  spec: WorkerStream;
  conn?: RawPutMedia;
  /** One head per clip fragment, reused when its previous write has completed. */
  heads: Buffer[];
  headBusy: boolean[];
  /** Sent fragments by cluster timecode, until acknowledged. */
  sent: Map<number, Sent>;
}

const send = (m: FromWorker): Promise<void> =>
  new Promise((resolve) => process.send!(m, undefined, {}, () => resolve()));

let clip: Clip;
let streams: StreamState[] = [];
const results: Sent[] = [];
let errorAcks = 0;
/** Measured fragments still waiting for PERSISTED (or ERROR). */
let outstanding = 0;
const errorSamples: string[] = [];
const connectionErrors: string[] = [];

async function prepare(m: PrepareMessage): Promise<void> {
  clip = loadClip(m.clipFile, m.clipSpec);
  streams = m.streams.map((spec) => ({
    spec,
    heads: clip.fragments.map((f) => clusterHead(f.body.length)),
    headBusy: clip.fragments.map(() => false),
    sent: new Map(),
  }));
  const errors: string[] = [];
  // Connect a few at a time; every connection starts with the stream header chunk.
  let next = 0;
  const opener = async () => {
    while (next < streams.length) {
      const st = streams[next++]!;
      try {
        st.conn = await RawPutMedia.open({
          host: m.host,
          port: m.port,
          security: m.security,
          streamName: st.spec.name,
          onAck: (ack, at) => onAck(st, ack, at),
        });
        st.conn.send([clip.header]);
        void st.conn.closed.then(() => {
          if (!st.conn!.ended && !stopping) connectionErrors.push(`${st.spec.name}: connection closed early ${st.conn!.error?.message ?? ''}`);
        });
      } catch (err) {
        errors.push((err as Error).message);
      }
    }
  };
  await Promise.all(Array.from({ length: 32 }, opener));
  await send({ type: 'ready', connected: streams.filter((s) => s.conn).length, errors: errors.slice(0, 5) });
}

function onAck(st: StreamState, ack: PutMediaAck, at: number): void {
  if (ack.FragmentTimecode === undefined) return;
  if (ack.EventType === 'ERROR') {
    errorAcks++;
    if (errorSamples.length < 5) errorSamples.push(`${st.spec.name}: ${ack.ErrorId} ${ack.ErrorCode}`);
    const s = st.sent.get(ack.FragmentTimecode);
    if (s?.measured) outstanding--;
    st.sent.delete(ack.FragmentTimecode);
    return;
  }
  if (ack.EventType !== 'PERSISTED') return;
  const s = st.sent.get(ack.FragmentTimecode);
  if (!s) return;
  s.persisted = at;
  if (s.measured) outstanding--;
  st.sent.delete(ack.FragmentTimecode);
}

let stopping = false;

async function go(m: GoMessage): Promise<void> {
  const order = [...streams].filter((s) => s.conn).sort((a, b) => a.spec.offsetMs - b.spec.offsetMs);
  const measureFrom = m.t0 + m.warmupMs;
  const measureTo = measureFrom + m.measureMs;
  const loop = monitorEventLoopDelay({ resolution: 5 });
  let loopStarted = false;
  let maxQueuedBytes = 0;
  const F = clip.fragments.length;

  const fire = (st: StreamState, cycle: number, due: number) => {
    const slot = (st.spec.clipStart + cycle) % F;
    const f = clip.fragments[slot]!;
    let head = st.heads[slot]!;
    if (st.headBusy[slot]) head = clusterHead(f.body.length); // previous write of this slot still queued
    else st.headBusy[slot] = true;
    // The fragment covers the second before it is sent.
    const tc = Math.round(due) - 1000;
    setHeadTimecode(head, tc);
    const rec: Sent = { due, issued: nowMs(), bytes: head.length + f.body.length, measured: due >= measureFrom && due < measureTo };
    st.sent.set(tc, rec);
    if (rec.measured) {
      results.push(rec);
      outstanding++;
    }
    const usedShared = head === st.heads[slot];
    st.conn!.send([head, f.body], (at) => {
      rec.done = at;
      if (usedShared) st.headBusy[slot] = false;
    });
  };

  // Fragments keep flowing after the window until every measured one is acknowledged (or the
  // drain time is up), so the last measured fragments see the same load as the first.
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let cpuInWindow: NodeJS.CpuUsage | undefined;
  await new Promise<void>((resolve) => {
    let idx = 0;
    let cycle = 0;
    const dueOf = () => m.t0 + cycle * 1000 + order[idx]!.spec.offsetMs;
    const tick = () => {
      const now = nowMs();
      if (!loopStarted && now >= measureFrom) {
        loop.enable();
        loopStarted = true;
        cpuAtStart = process.cpuUsage();
      }
      if (cpuAtStart && !cpuInWindow && now >= measureTo) {
        cpuInWindow = process.cpuUsage(cpuAtStart);
        loop.disable();
      }
      for (;;) {
        const due = dueOf();
        if (due >= measureTo && (outstanding === 0 || now >= measureTo + m.drainMs)) return resolve();
        if (due > now + 0.25) break;
        fire(order[idx]!, cycle, due);
        if (++idx === order.length) {
          idx = 0;
          cycle++;
        }
      }
      setTimeout(tick, Math.max(0, dueOf() - nowMs()));
    };
    if (order.length === 0) return resolve();
    setTimeout(tick, Math.max(0, m.t0 - nowMs()));
  });

  for (const st of streams) if (st.conn && st.conn.maxQueuedBytes > maxQueuedBytes) maxQueuedBytes = st.conn.maxQueuedBytes;
  stopping = true;

  const persisted = results.filter((r) => r.persisted !== undefined);
  const out: ResultMessage = {
    type: 'result',
    streams: order.length,
    measured: results.length,
    persisted: persisted.length,
    lost: results.length - persisted.length,
    errorAcks,
    errorSamples,
    slowest: persisted
      .map((r): [number, number] => [r.due - m.t0, r.persisted! - (r.done ?? r.persisted!)])
      .sort((a, b) => b[1] - a[1])
      .slice(0, 20),
    latencies: persisted.map((r) => Math.max(0, r.persisted! - (r.done ?? r.persisted!))),
    endToEnd: persisted.map((r) => r.persisted! - r.due),
    writeMs: results.filter((r) => r.done !== undefined).map((r) => r.done! - r.issued),
    lateness: results.map((r) => r.issued - r.due),
    persistedBytes: persisted.reduce((n, r) => n + r.bytes, 0),
    offeredBytes: results.reduce((n, r) => n + r.bytes, 0),
    cpuPercent: cpuInWindow ? ((cpuInWindow.user + cpuInWindow.system) / 1000 / m.measureMs) * 100 : NaN,
    loopDelayP99Ms: Math.max(0, loop.percentile(99) / 1e6 - 5), // the histogram includes the 5 ms resolution
    maxQueuedBytes,
    connectionErrors: connectionErrors.slice(0, 5),
  };
  await send(out);
  // End the bodies; the server ends the ACK streams. Then exit.
  await Promise.all(streams.map((s) => s.conn?.finish(5_000)));
  process.exit(0);
}

process.on('message', (m: ToWorker) => {
  const handle = m.type === 'prepare' ? prepare(m) : go(m);
  handle.catch((err: unknown) => {
    process.stderr.write(`load worker: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
});
process.on('disconnect', () => process.exit(0));
