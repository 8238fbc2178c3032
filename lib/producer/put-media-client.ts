/**
 * A small PutMedia client: streams an MKV body to `{endpoint}/putMedia` with the headers kvssink
 * sends (producer-protocol.md §3.1) and reads the ACK stream as it arrives. Used by the demo,
 * the tests and the benchmarks; requests are not signed (the openkvs server does not require it).
 */
import http from 'node:http';
import { once } from 'node:events';
import type { PutMediaAck } from '../put-media-ack.js';


export interface PutMediaOptions {
  endpoint: string;
  streamName: string;
  timecodeType?: 'ABSOLUTE' | 'RELATIVE';
  /** Producer start timestamp for RELATIVE mode, ms (default now). */
  producerStartMs?: number;
  /** Extra or replacement request headers. */
  headers?: Record<string, string>;
  /** Called for every ack as it arrives. */
  onAck?: (ack: PutMediaAck, receivedAt: number) => void;
}

export interface PutMediaSession {
  /** Writes body bytes; resolves when the socket can take more. */
  write(chunk: Buffer): Promise<void>;
  /** Ends the body; resolves with every ack once the server ends the response. */
  end(): Promise<PutMediaAck[]>;
  /** Drops the connection without ending the body. */
  destroy(): void;
  /** HTTP status and acks received so far. */
  readonly status: Promise<number>;
  readonly acks: PutMediaAck[];
  /** Resolves when the response ends (or the connection fails). */
  readonly done: Promise<PutMediaAck[]>;
}

export function putMedia(opts: PutMediaOptions): PutMediaSession {
  const url = new URL(`${opts.endpoint.replace(/\/$/, '')}/putMedia`);
  const start = opts.producerStartMs ?? Date.now();
  const req = http.request(url, {
    method: 'POST',
    headers: {
      'x-amzn-stream-name': opts.streamName,
      'x-amzn-fragment-timecode-type': opts.timecodeType ?? 'ABSOLUTE',
      'x-amzn-producer-start-timestamp': `${Math.floor(start / 1000)}.${String(start % 1000).padStart(3, '0')}`,
      'x-amzn-fragment-acknowledgment-required': '1',
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      connection: 'keep-alive',
      ...opts.headers,
    },
  });
  req.setNoDelay(true);
  req.flushHeaders();
  const acks: PutMediaAck[] = [];
  let resolveStatus!: (s: number) => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const done = new Promise<PutMediaAck[]>((resolve, reject) => {
    req.on('error', (err) => {
      resolveStatus(0);
      if (acks.length > 0 || (err as NodeJS.ErrnoException).code === 'ECONNRESET') resolve(acks);
      else reject(err);
    });
    req.on('response', (res) => {
      resolveStatus(res.statusCode ?? 0);
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        pending += text;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (line === '') continue;
          let ack: PutMediaAck;
          try {
            ack = JSON.parse(line) as PutMediaAck;
          } catch {
            continue; // not an ack line (an error body is JSON without EventType)
          }
          if (ack.EventType !== undefined) {
            acks.push(ack);
            opts.onAck?.(ack, Date.now());
          }
        }
      });
      res.on('end', () => resolve(acks));
      res.on('error', () => resolve(acks));
      res.on('close', () => resolve(acks));
    });
  });
  done.catch(() => {});
  return {
    acks,
    status,
    done,
    async write(chunk) {
      if (req.destroyed || req.writableEnded) return;
      if (!req.write(chunk)) await Promise.race([once(req, 'drain'), done.catch(() => {})]);
    },
    async end() {
      if (!req.writableEnded) req.end();
      return done;
    },
    destroy() {
      req.destroy();
    },
  };
}
