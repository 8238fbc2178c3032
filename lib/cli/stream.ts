/**
 * `openkvs stream`: uploads a camera, file or test pattern to a stream through kvssink in this
 * process, with a live progress line. Ctrl-C drains (the last fragment is persisted); a second
 * Ctrl-C stops at once.
 */
import { ensureStream } from '../streams/ensure-stream.js';
import { Pipeline } from '../pipeline.js';
import type { UploadStats } from '../pipeline-events.js';
import { sourceDescription } from './sources.js';

export interface StreamCommandOptions {
  source: string;
  streamName: string;
  endpoint?: string;
  region?: string;
  caCert?: string;
  retentionHours: number;
  create: boolean;
}

const fmt = (n: number, unit: string) => `${n.toFixed(n < 10 ? 1 : 0)} ${unit}`;

export function progressLine(s: UploadStats): string {
  return [
    `persisted ${s.fragmentsPersisted}`,
    `bitrate ${fmt(s.bitrateBps / 1000, 'kbit/s')}`,
    `buffered ${fmt(s.bufferedDurationMs / 1000, 's')} (${fmt(s.bufferedBytes / 1024, 'KiB')})`,
    `last ack latency ${s.lastAckLatencyMs} ms`,
    ...(s.fragmentsDropped > 0 ? [`dropped ${s.fragmentsDropped}`] : []),
  ].join(' | ');
}

export async function runStream(o: StreamCommandOptions): Promise<number> {
  const description = `${sourceDescription(o.source)} ! kvssink name=sink stream-name=${o.streamName}`;
  if (o.create) {
    await ensureStream({
      streamName: o.streamName,
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      ...(o.region ? { region: o.region } : {}),
      ...(o.caCert ? { caCert: o.caCert } : {}),
      dataRetentionInHours: o.retentionHours,
      mediaType: 'video/h264',
    });
  }
  const p = new Pipeline(description, {
    ...(o.endpoint ? { endpoint: o.endpoint } : {}),
    ...(o.region ? { region: o.region } : {}),
    ...(o.caCert ? { caCert: o.caCert } : {}),
  });
  const tty = process.stdout.isTTY;
  p.on('stats', (s) => process.stdout.write(tty ? `\r${progressLine(s)}\x1b[K` : `${progressLine(s)}\n`));
  p.on('error', (e) => process.stderr.write(`\n${e.fatal ? 'error' : 'warning'}: ${e.message} (${e.code})\n`));
  let interrupted = 0;
  const onSignal = () => {
    interrupted++;
    if (interrupted === 1) {
      process.stderr.write('\ndraining: waiting for the last fragment to be persisted (Ctrl-C again to stop now)\n');
      void p.stop();
    } else {
      void p.stop({ drain: false });
    }
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  await p.start();
  process.stderr.write(`streaming ${o.source} to ${o.streamName}${o.endpoint ? ` at ${o.endpoint}` : ''}; Ctrl-C to stop\n`);
  const failed = await p.finished.then(() => false, (e: unknown) => {
    process.stderr.write(`\n${(e as Error).message}\n`);
    return true;
  });
  await p.stop();
  process.stdout.write('\n');
  return failed ? 1 : 0;
}
