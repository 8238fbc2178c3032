/**
 * A live GetMedia reader on a raw `http` POST /getMedia (StartSelector NOW). The MKV response is
 * parsed by the library's GetMediaParser; every frame is reported with the time the chunk that
 * completed it was read from the socket. Over https and signed when the server asks for it.
 */
import type http from 'node:http';
import { GetMediaParser } from '../../lib/consumer/get-media-parser.js';
import { type ClientSecurity, openRequest, requestHeaders } from './security.js';
import { nowMs } from './util.js';

export interface GetMediaReader {
  /** Resolves when the response status (200) has arrived. */
  readonly ready: Promise<void>;
  frames: number;
  bytes: number;
  error: Error | undefined;
  close(): void;
}

export function openGetMediaReader(
  url: string,
  streamName: string,
  onFrame: (timecodeMs: number, at: number) => void,
  sec: ClientSecurity = { mode: 'off' },
): GetMediaReader {
  const body = JSON.stringify({ StreamName: streamName, StartSelector: { StartSelectorType: 'NOW' } });
  let chunkAt = 0;
  let closed = false;
  let req: http.ClientRequest | undefined;
  const reader: GetMediaReader = {
    ready: undefined as unknown as Promise<void>,
    frames: 0,
    bytes: 0,
    error: undefined,
    close: () => {
      closed = true;
      req?.destroy();
    },
  };
  const parser = new GetMediaParser({
    onFrame: (frame) => {
      reader.frames++;
      onFrame(frame.timecode, chunkAt);
    },
  });
  const target = new URL(`${url}/getMedia`);
  (reader as { ready: Promise<void> }).ready = requestHeaders(sec, target, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, body).then(
    (headers) =>
      new Promise<void>((resolve, reject) => {
        if (closed) return resolve();
        const r = openRequest(sec, target, headers);
        req = r;
        r.on('response', (res) => {
          if (res.statusCode !== 200) {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (s: string) => (text += s));
            res.on('end', () => reject(new Error(`GetMedia ${res.statusCode}: ${text}`)));
            return;
          }
          res.socket.setNoDelay(true);
          res.on('data', (chunk: Buffer) => {
            chunkAt = nowMs();
            reader.bytes += chunk.length;
            try {
              parser.push(chunk);
            } catch (err) {
              reader.error ??= err as Error;
              r.destroy();
            }
          });
          res.on('error', () => {});
          resolve();
        });
        r.on('error', (err) => {
          reader.error ??= err;
          reject(err);
        });
        r.end(body);
      }),
  );
  reader.ready.catch(() => {});
  return reader;
}
