/**
 * A live GetMedia reader on a raw `http` POST /getMedia (StartSelector NOW). The MKV response is
 * parsed by the library's GetMediaParser; every frame is reported with the time the chunk that
 * completed it was read from the socket.
 */
import http from 'node:http';
import { GetMediaParser } from '../../lib/consumer/get-media-parser.js';
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
): GetMediaReader {
  const body = JSON.stringify({ StreamName: streamName, StartSelector: { StartSelectorType: 'NOW' } });
  let chunkAt = 0;
  const reader: GetMediaReader = {
    ready: undefined as unknown as Promise<void>,
    frames: 0,
    bytes: 0,
    error: undefined,
    close: () => req.destroy(),
  };
  const parser = new GetMediaParser({
    onFrame: (frame) => {
      reader.frames++;
      onFrame(frame.timecode, chunkAt);
    },
  });
  const req = http.request(`${url}/getMedia`, {
    method: 'POST',
    agent: false,
    headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
  });
  (reader as { ready: Promise<void> }).ready = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
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
          req.destroy();
        }
      });
      res.on('error', () => {});
      resolve();
    });
    req.on('error', (err) => {
      reader.error ??= err;
      reject(err);
    });
  });
  reader.ready.catch(() => {});
  req.end(body);
  return reader;
}
