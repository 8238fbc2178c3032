/**
 * `POST /putMedia`: the full-duplex ingest request (producer-protocol.md §3, §4, §13.2).
 *
 * The stream is named by `x-amzn-stream-name` (or `x-amzn-stream-arn`). The server answers 200
 * at once and keeps the response open as the ACK stream: one JSON object per line, each written
 * (and so flushed, the socket has no Nagle delay) on its own, well under 1 KiB. IDLE acks keep
 * the connection alive while no media arrives; after `putMediaIdleTimeoutMs` without body bytes
 * the response ends. When the body ends, outstanding acks are flushed and the response ends.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { KvsApiError, invalidArgument } from '../../errors.js';
import type { PutMediaAck } from '../../put-media-ack.js';
import type { ServiceContext } from '../context.js';
import { IngestSession } from './ingest-session.js';

/** Pause reading the body while this many of its fragments wait for storage. */
const MAX_FRAGMENTS_IN_FLIGHT = 4;

const header = (req: IncomingMessage, name: string): string | undefined => {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
};

/**
 * `x-amzn-producer-start-timestamp`: `secs[.frac]`. The AWS SDK prints the milliseconds without
 * zero padding (`%u.%u`: 5 ms -> "1700000000.5"), so a fraction of fewer than three digits is
 * read as a count of milliseconds; three digits read the same either way.
 */
export function parseProducerStartTimestamp(value: string | undefined): number {
  if (value === undefined || value === '') return Date.now();
  const m = /^(\d+)(?:\.(\d+))?$/.exec(value.trim());
  if (!m) throw invalidArgument(`x-amzn-producer-start-timestamp must be epoch seconds, got "${value}".`);
  const frac = m[2] ?? '';
  const millis = frac.length <= 3 ? Number(frac || '0') : Math.floor(Number(`0.${frac}`) * 1000);
  return Number(m[1]) * 1000 + millis;
}

export async function handlePutMedia(ctx: ServiceContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  let session: IngestSession;
  let streamName: string;
  let accessKeyId: string | undefined;
  try {
    const name = header(req, 'x-amzn-stream-name');
    const arn = header(req, 'x-amzn-stream-arn');
    const signer = ctx.auth.check(
      { method: req.method ?? 'POST', url: req.url ?? '/', headers: req.headers, remoteAddress: req.socket.remoteAddress },
      'PutMedia',
      { StreamName: name, StreamARN: arn },
    );
    accessKeyId = signer?.accessKeyId;
    if (name || arn) ctx.rateLimiter.take('putMedia', (name || arn)!);
    if (!name && !arn) throw invalidArgument('x-amzn-stream-name or x-amzn-stream-arn is required.');
    const stream = ctx.streams.resolve({ StreamName: name, StreamARN: arn });
    streamName = stream.name;
    const type = (header(req, 'x-amzn-fragment-timecode-type') ?? 'ABSOLUTE').toUpperCase();
    if (type !== 'ABSOLUTE' && type !== 'RELATIVE') {
      throw invalidArgument(`x-amzn-fragment-timecode-type must be ABSOLUTE or RELATIVE, got "${type}".`);
    }
    const producerStartMs = parseProducerStartTimestamp(header(req, 'x-amzn-producer-start-timestamp'));
    const acksWanted = header(req, 'x-amzn-fragment-acknowledgment-required') !== '0';
    session = new IngestSession(ctx, {
      stream,
      timecodeType: type,
      producerStartMs,
      sendAck: (ack: PutMediaAck) => {
        if (res.writableEnded || res.destroyed) return;
        if (!acksWanted && ack.EventType !== 'ERROR') return;
        res.write(`${JSON.stringify(ack)}\n`);
      },
    });
  } catch (err) {
    // Refused before any body byte was read: answer, and do not keep reading the body.
    res.setHeader('connection', 'close');
    req.resume();
    throw err instanceof KvsApiError ? err : new KvsApiError('InternalFailure', String(err));
  }

  res.writeHead(200, { 'content-type': 'application/json' });
  res.flushHeaders();
  const log = ctx.log.child({ stream: streamName });
  log.info({ accessKeyId }, 'PutMedia started');

  let lastData = Date.now();
  let finished = false;
  const limits = ctx.config.limits;
  const idleTimer = setInterval(() => {
    const idleMs = Date.now() - lastData;
    if (idleMs >= limits.putMediaIdleTimeoutMs) {
      log.info({ idleMs }, 'PutMedia idle: closing');
      finish('idle');
    } else if (idleMs >= limits.idleAckIntervalMs && !res.writableEnded) {
      res.write('{"EventType":"IDLE"}\n');
    }
  }, limits.idleAckIntervalMs);
  idleTimer.unref();

  const finish = (why: 'end' | 'error' | 'idle' | 'aborted') => {
    if (finished) return;
    finished = true;
    clearInterval(idleTimer);
    req.off('data', onData);
    if (why === 'aborted' || why === 'idle') session.abort();
    const ending = why === 'end' ? session.end() : session.settle();
    void ending.then(() => {
      log.debug({ why, ...session.stats }, 'PutMedia finished');
      if (!res.writableEnded) res.end();
      // Whatever the client still sends is not read; close the connection after the response.
      // After an ERROR ack the connection is closed too, even when the body had ended.
      if (why !== 'end' || session.error) req.socket?.destroySoon?.();
    });
  };

  const onData = (chunk: Buffer) => {
    lastData = Date.now();
    if (!session.push(chunk)) return finish('error');
    if ((session.pendingFragments >= MAX_FRAGMENTS_IN_FLIGHT || ctx.ingestBudget.exhausted) && !req.isPaused()) {
      // Storage is behind: stop reading (TCP back-pressure) until this connection's fragments
      // and the server-wide queue are below their limits.
      req.pause();
      void (async () => {
        while (!finished) {
          if (session.pendingFragments >= MAX_FRAGMENTS_IN_FLIGHT) await session.settle();
          else if (ctx.ingestBudget.exhausted) await ctx.ingestBudget.available();
          else break;
        }
        if (!finished) req.resume();
      })();
    }
  };
  req.on('data', onData);
  req.on('end', () => finish('end'));
  req.on('close', () => {
    if (!req.complete) finish('aborted');
  });
  res.on('close', () => {
    if (!res.writableFinished) finish('aborted');
  });
}
