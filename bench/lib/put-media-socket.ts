/**
 * A minimal PutMedia client on a raw TCP socket, for the load generator: the request is written
 * as HTTP/1.1 chunked transfer encoding by hand (one HTTP chunk per write, buffers handed to one
 * writev, nothing copied), and the ACK stream (chunked JSON lines) is decoded by a small state
 * machine. `send` reports when the kernel has taken the last byte of the chunk — the moment the
 * data has left the client. With security mode on, the socket is TLS (the server's certificate
 * verified) and the request head is SigV4-signed.
 */
import net from 'node:net';
import tls from 'node:tls';
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { type ClientSecurity, requestHeaders } from './security.js';
import { nowMs } from './util.js';

export interface RawPutMediaOptions {
  host: string;
  port: number;
  streamName: string;
  /** Producer start timestamp header, epoch ms (default now). */
  producerStartMs?: number;
  /** Every ack, with the time its bytes were read. */
  onAck(ack: PutMediaAck, at: number): void;
  /** TLS and signing (default: plain, unsigned). */
  security?: ClientSecurity;
}

const CRLF = Buffer.from('\r\n');
const LAST_CHUNK = Buffer.from('0\r\n\r\n');

type BodyState = 'size' | 'data' | 'data-crlf' | 'trailer' | 'identity' | 'done';

export class RawPutMedia {
  readonly socket: net.Socket;
  /** HTTP status of the response (0 until it arrives). */
  status = 0;
  /** Non-ack text of the response (an error body). */
  errorText = '';
  error: Error | undefined;
  /** Resolves when the response has ended or the connection has closed. */
  readonly closed: Promise<void>;
  /** Largest amount of data queued in the socket's user-space buffer. */
  maxQueuedBytes = 0;

  private readonly onAck: RawPutMediaOptions['onAck'];
  private head = '';
  private state: BodyState | 'head' = 'head';
  private chunkLeft = 0;
  private identityLeft = 0;
  private crlfLeft = 0;
  private pendingSize = '';
  private text = '';
  private resolveStatus!: (status: number) => void;
  private readonly statusPromise: Promise<number>;
  private responseEnded = false;

  private constructor(opts: RawPutMediaOptions, headers: Record<string, string>) {
    this.onAck = opts.onAck;
    this.statusPromise = new Promise((r) => (this.resolveStatus = r));
    this.socket = opts.security?.mode === 'on' ? tls.connect({ host: opts.host, port: opts.port, ca: opts.security.ca }) : net.connect({ host: opts.host, port: opts.port });
    this.socket.setNoDelay(true);
    const requestHead = `POST /putMedia HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    this.socket.write(requestHead);
    this.socket.setEncoding('latin1');
    this.socket.on('data', (s: string) => this.onData(s, nowMs()));
    this.closed = new Promise<void>((resolve) => {
      this.socket.on('error', (err) => {
        this.error ??= err;
        this.resolveStatus(0);
      });
      this.socket.on('close', () => {
        this.resolveStatus(0);
        resolve();
      });
    });
  }

  /** Connects and sends the request head; resolves once the response status has arrived. */
  static async open(opts: RawPutMediaOptions, timeoutMs = 10_000): Promise<RawPutMedia> {
    const start = opts.producerStartMs ?? Math.floor(nowMs());
    const sec = opts.security ?? { mode: 'off' };
    const url = new URL(`${sec.mode === 'on' ? 'https' : 'http'}://${opts.host}:${opts.port}/putMedia`);
    const headers = await requestHeaders(
      sec,
      url,
      {
        'x-amzn-stream-name': opts.streamName,
        'x-amzn-fragment-timecode-type': 'ABSOLUTE',
        'x-amzn-producer-start-timestamp': `${Math.floor(start / 1000)}.${String(start % 1000).padStart(3, '0')}`,
        'x-amzn-fragment-acknowledgment-required': '1',
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
        connection: 'keep-alive',
      },
      '',
    );
    const c = new RawPutMedia(opts, headers);
    const timer = setTimeout(() => c.destroy(new Error('no PutMedia response status in time')), timeoutMs);
    const status = await c.statusPromise;
    clearTimeout(timer);
    if (status !== 200) {
      c.destroy();
      throw new Error(`PutMedia ${opts.streamName}: status ${status} ${c.errorText.slice(0, 200)} ${c.error?.message ?? ''}`.trim());
    }
    return c;
  }

  /**
   * Writes the buffers as one HTTP chunk (one writev). `done` runs once the socket has handed the
   * last byte to the kernel, with that time.
   */
  send(buffers: readonly Buffer[], done?: (at: number, err?: Error | null) => void): void {
    const s = this.socket;
    if (s.destroyed) {
      done?.(nowMs(), new Error('socket closed'));
      return;
    }
    let length = 0;
    for (const b of buffers) length += b.length;
    s.cork();
    s.write(Buffer.from(`${length.toString(16)}\r\n`, 'latin1'));
    for (const b of buffers) s.write(b);
    s.write(CRLF, done ? (err?: Error | null) => done(nowMs(), err) : undefined);
    s.uncork();
    if (s.writableLength > this.maxQueuedBytes) this.maxQueuedBytes = s.writableLength;
  }

  /** Ends the body and waits (up to timeoutMs) for the server to end the ACK stream, then closes. */
  async finish(timeoutMs = 10_000): Promise<void> {
    if (!this.socket.destroyed) this.socket.write(LAST_CHUNK);
    const timer = setTimeout(() => this.destroy(), timeoutMs);
    await this.closed;
    clearTimeout(timer);
  }

  get ended(): boolean {
    return this.responseEnded;
  }

  destroy(err?: Error): void {
    if (err) this.error ??= err;
    this.socket.destroy();
  }

  // ---- response decoding ----------------------------------------------------------------------

  private onData(s: string, at: number): void {
    let i = 0;
    if (this.state === 'head') {
      this.head += s;
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = this.head.slice(0, end);
      const rest = this.head.slice(end + 4);
      this.head = '';
      const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
      const lower = head.toLowerCase();
      if (/\r\ntransfer-encoding:\s*chunked/.test(lower)) this.state = 'size';
      else {
        const cl = /\r\ncontent-length:\s*(\d+)/.exec(lower);
        this.identityLeft = cl ? Number(cl[1]) : Number.MAX_SAFE_INTEGER;
        this.state = 'identity';
      }
      this.status = m ? Number(m[1]) : 0;
      this.resolveStatus(this.status);
      s = rest;
    }
    while (i < s.length) {
      switch (this.state) {
        case 'size': {
          const nl = s.indexOf('\r\n', i);
          if (nl < 0) {
            this.pendingSize += s.slice(i); // the rest of the size line comes in the next packet
            return;
          }
          const line = this.pendingSize + s.slice(i, nl);
          this.pendingSize = '';
          i = nl + 2;
          this.chunkLeft = parseInt(line, 16);
          if (!Number.isFinite(this.chunkLeft)) return this.destroy(new Error(`bad chunk size "${line}"`));
          this.state = this.chunkLeft === 0 ? 'trailer' : 'data';
          break;
        }
        case 'data': {
          const n = Math.min(this.chunkLeft, s.length - i);
          this.text += s.slice(i, i + n);
          i += n;
          this.chunkLeft -= n;
          if (this.chunkLeft === 0) {
            this.state = 'data-crlf';
            this.crlfLeft = 2;
          }
          this.lines(at);
          break;
        }
        case 'data-crlf': {
          const n = Math.min(this.crlfLeft, s.length - i);
          i += n;
          this.crlfLeft -= n;
          if (this.crlfLeft === 0) this.state = 'size';
          break;
        }
        case 'identity': {
          const n = Math.min(this.identityLeft, s.length - i);
          this.errorText += s.slice(i, i + n);
          i += n;
          this.identityLeft -= n;
          if (this.identityLeft === 0) this.endResponse();
          break;
        }
        case 'trailer':
          // "0\r\n" was read; the response ends at the blank line (we send no trailers' worth reading).
          this.endResponse();
          return;
        default:
          return;
      }
    }
  }

  private lines(at: number): void {
    let nl: number;
    while ((nl = this.text.indexOf('\n')) >= 0) {
      const line = this.text.slice(0, nl).trim();
      this.text = this.text.slice(nl + 1);
      if (line === '') continue;
      let ack: PutMediaAck;
      try {
        ack = JSON.parse(line) as PutMediaAck;
      } catch {
        this.errorText += line;
        continue;
      }
      if (ack.EventType === undefined) this.errorText += line;
      else this.onAck(ack, at);
    }
  }

  private endResponse(): void {
    this.state = 'done';
    this.responseEnded = true;
    this.socket.end();
  }
}
