/**
 * The Node process under test in the bridge benchmark: it runs Pipelines through the native
 * addon and nothing else (the harness measures it from outside through /proc). Forked by
 * bench/bridge.ts with an IPC channel; the job is the JSON in argv[2].
 *
 *   acks   one kvssink pipeline to EOS; counts fragment-ack events and their arrival times
 *   flood  a `level` pipeline to EOS; counts `message` events (optionally spending time in each)
 *   paced  N pipelines started together; reports 'ready' once every kvssink posted
 *          kvssink-stream-ready, answers 'snapshot', and stops (with EOS) on 'stop'
 */
import { Pipeline, type PipelineOptions } from '../../lib/index.js';
import type { AckCounts, FloodResult, AcksResult, ParentMessage, PacedSnapshot, RunnerJob, RunnerMessage } from './protocol.js';

const job = JSON.parse(process.argv[2] ?? '{}') as RunnerJob;
const send = (m: RunnerMessage): Promise<void> => new Promise((resolve) => process.send!(m, () => resolve()));
const now = () => performance.now();
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Waits for `finished`, giving up when the message counters stop moving for `idleMs` (a lost EOS). */
async function waitFinished(p: Pipeline, idleMs: number, capMs: number): Promise<boolean> {
  let done = false;
  p.finished.then(
    () => (done = true),
    () => (done = true),
  );
  const start = now();
  let last = -1;
  lastProgress = { t: now(), cpu: cpuMs() };
  while (!done && now() - start < capMs) {
    await sleep(50);
    const s = p.messageStats();
    const seen = s.messagesDelivered + s.messagesDropped;
    if (seen !== last) {
      last = seen;
      lastProgress = { t: now(), cpu: cpuMs() };
    } else if (now() - lastProgress.t > idleMs) {
      break;
    }
  }
  return done;
}

/** When the message counters last moved (and the CPU then): the end of a run whose EOS never came. */
let lastProgress = { t: 0, cpu: 0 };

async function runAcks(description: string, endpoint: string, idleMs: number): Promise<AcksResult> {
  const p = new Pipeline(description, { endpoint, credentials });
  const counts: AckCounts = { BUFFERING: 0, RECEIVED: 0, PERSISTED: 0, ERROR: 0 };
  let first = NaN;
  let last = NaN;
  let dropped = 0;
  const errors: string[] = [];
  p.on('fragment-ack', (a) => {
    counts[a.eventType] = (counts[a.eventType] ?? 0) + 1;
    const t = now();
    if (Number.isNaN(first)) first = t;
    last = t;
  });
  p.on('dropped', () => dropped++);
  p.on('error', (e) => errors.length < 5 && errors.push(e.message));
  p.on('message', () => {});
  const cpu0 = cpuMs();
  const t0 = now();
  await p.start();
  const eos = await waitFinished(p, idleMs, 120_000);
  const t1 = now();
  const cpu1 = cpuMs();
  const stats = p.messageStats();
  await p.stop({ drain: false });
  return {
    kind: 'acks',
    counts,
    firstAckMs: first - t0,
    lastAckMs: last - t0,
    wallMs: t1 - t0,
    cpuMs: cpu1 - cpu0,
    eos,
    fragmentsDropped: dropped,
    errors,
    ...stats,
    maxRssKiB: process.resourceUsage().maxRSS,
  };
}

async function runFlood(description: string, spinUs: number, idleMs: number): Promise<FloodResult> {
  const p = new Pipeline(description, { credentials: false });
  let level = 0;
  let other = 0;
  let first = NaN;
  let last = NaN;
  let eosEvent = false;
  p.on('message', (m) => {
    if (m.name === 'level') {
      const t = now();
      if (Number.isNaN(first)) first = t;
      last = t;
      level++;
      if (spinUs > 0) {
        const until = now() + spinUs / 1000;
        while (now() < until);
      }
    } else {
      other++;
    }
  });
  p.on('eos', () => (eosEvent = true));
  p.on('error', () => {});
  const cpu0 = cpuMs();
  const t0 = now();
  await p.start();
  const finished = await waitFinished(p, idleMs, 120_000);
  // Without EOS the run ended when the counters last moved, not when this process gave up waiting.
  const t1 = finished ? now() : lastProgress.t;
  const cpu1 = finished ? cpuMs() : lastProgress.cpu;
  const stats = p.messageStats();
  const stopT0 = now();
  const stopped = await Promise.race([p.stop({ drain: false }).then(() => true), sleep(5000).then(() => false)]);
  return {
    kind: 'flood',
    levelMessages: level,
    otherMessages: other,
    firstMs: first - t0,
    lastMs: last - t0,
    wallMs: t1 - t0,
    cpuMs: cpu1 - cpu0,
    finished,
    eosEvent,
    stopped,
    stopMs: now() - stopT0,
    ...stats,
    maxRssKiB: process.resourceUsage().maxRSS,
  };
}

async function runPaced(descriptions: string[], endpoint: string): Promise<void> {
  const options: PipelineOptions = { endpoint, credentials, stopTimeoutSeconds: 10 };
  const pipelines = descriptions.map((d) => new Pipeline(d, options));
  const snap: PacedSnapshot = { acks: { BUFFERING: 0, RECEIVED: 0, PERSISTED: 0, ERROR: 0 }, fragmentsDropped: 0, errors: 0, messagesDelivered: 0, messagesDropped: 0, ready: 0 };
  const errors: string[] = [];
  const expectedReady = pipelines.reduce((a, p) => a + p.sinks.length, 0);
  for (const p of pipelines) {
    p.on('fragment-ack', (a) => (snap.acks[a.eventType] = (snap.acks[a.eventType] ?? 0) + 1));
    p.on('stats', () => {});
    p.on('dropped', () => snap.fragmentsDropped++);
    p.on('error', (e) => {
      snap.errors++;
      if (errors.length < 5) errors.push(e.message);
    });
    p.on('message', (m) => {
      if (m.name === 'kvssink-stream-ready' && ++snap.ready === expectedReady) void send({ type: 'ready' });
    });
  }
  const snapshot = (): PacedSnapshot => {
    let delivered = 0;
    let dropped = 0;
    for (const p of pipelines) {
      const s = p.messageStats();
      delivered += s.messagesDelivered;
      dropped += s.messagesDropped;
    }
    return { ...snap, acks: { ...snap.acks }, messagesDelivered: delivered, messagesDropped: dropped };
  };
  process.on('message', (m: ParentMessage) => {
    if (m.cmd === 'snapshot') void send({ type: 'snapshot', snapshot: snapshot() });
    if (m.cmd === 'stop') {
      void (async () => {
        const t0 = now();
        await Promise.all(pipelines.map((p) => p.stop({ timeoutMs: 15_000 })));
        await send({ type: 'stopped', snapshot: snapshot(), stopMs: now() - t0, errors, memory: process.memoryUsage() });
        process.exit(0);
      })();
    }
  });
  await Promise.all(pipelines.map((p) => p.start()));
  await send({ type: 'started' });
}

async function main(): Promise<void> {
  switch (job.kind) {
    case 'idle': {
      // The addon loaded and GStreamer initialised, no pipeline: the RSS baseline of a bridge process.
      const p = new Pipeline('fakesrc num-buffers=1 ! fakesink', { credentials: false });
      await p.start();
      await p.finished;
      await p.stop();
      await send({ type: 'started' });
      process.on('message', (m: ParentMessage) => m.cmd === 'stop' && process.exit(0));
      return;
    }
    case 'acks':
      await send({ type: 'result', result: await runAcks(job.description, job.endpoint, job.idleMs) });
      process.exit(0);
      return;
    case 'flood':
      await send({ type: 'result', result: await runFlood(job.description, job.spinUs, job.idleMs) });
      process.exit(0);
      return;
    case 'paced':
      await runPaced(job.descriptions, job.endpoint);
      return;
  }
}

main().catch(async (err) => {
  await send({ type: 'failed', message: String((err as Error).stack ?? err) });
  process.exit(1);
});
