/**
 * What a camera sends, from its RTSP DESCRIBE answer (the SDP): the video codec and whether it
 * has an AAC track. Used by `codec: auto`. Basic and Digest authentication (RFC 2617, MD5) with
 * the user and password of the URL; rtsps:// over TLS.
 */
import { createHash } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { VideoCodec } from './config.js';

export interface CameraMedia {
  video: VideoCodec | undefined;
  aac: boolean;
}

interface Response {
  status: number;
  headers: Map<string, string>;
  body: string;
}

const md5 = (s: string): string => createHash('md5').update(s).digest('hex');

function request(url: URL, headers: Record<string, string>, timeoutMs: number): Promise<Response> {
  const port = Number(url.port) || (url.protocol === 'rtsps:' ? 322 : 554);
  const socket =
    url.protocol === 'rtsps:'
      ? tls.connect({ host: url.hostname, port, servername: net.isIP(url.hostname) ? undefined : url.hostname })
      : net.connect(port, url.hostname);
  const target = `${url.protocol}//${url.host}${url.pathname}${url.search}`;
  const lines = [`DESCRIBE ${target} RTSP/1.0`, 'CSeq: 1', 'Accept: application/sdp', 'User-Agent: openkvs-relay'];
  for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
  socket.write(`${lines.join('\r\n')}\r\n\r\n`);
  return new Promise((resolve, reject) => {
    let data = Buffer.alloc(0);
    const timer = setTimeout(() => fail(new Error(`no RTSP answer within ${timeoutMs} ms`)), timeoutMs);
    const fail = (err: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the camera closed the connection')));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...rest] = data.subarray(0, end).toString('latin1').split('\r\n');
      const headers = new Map<string, string>();
      for (const line of rest) {
        const colon = line.indexOf(':');
        if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
      }
      const length = Number(headers.get('content-length') ?? 0);
      if (data.length < end + 4 + length) return;
      clearTimeout(timer);
      socket.removeAllListeners('close');
      socket.destroy();
      const status = Number(/^RTSP\/1\.0 (\d{3})/.exec(statusLine ?? '')?.[1] ?? 0);
      resolve({ status, headers, body: data.subarray(end + 4, end + 4 + length).toString('utf8') });
    });
  });
}

function authorization(url: URL, challenge: string): string {
  const user = decodeURIComponent(url.username);
  const pass = decodeURIComponent(url.password);
  if (/^basic/i.test(challenge)) return `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`;
  const field = (name: string) => new RegExp(`${name}="([^"]*)"`, 'i').exec(challenge)?.[1] ?? '';
  const realm = field('realm');
  const nonce = field('nonce');
  const uri = `${url.protocol}//${url.host}${url.pathname}${url.search}`;
  const response = md5(`${md5(`${user}:${realm}:${pass}`)}:${nonce}:${md5(`DESCRIBE:${uri}`)}`);
  return `Digest username="${user}", realm="${realm}", nonce="${nonce}", uri="${uri}", response="${response}"`;
}

/** The codecs in an SDP's `a=rtpmap` lines. */
export function mediaOfSdp(sdp: string): CameraMedia {
  const encodings = [...sdp.matchAll(/^a=rtpmap:\d+ ([\w.-]+)\//gim)].map((m) => m[1]!.toUpperCase());
  const video = encodings.includes('H264') ? 'h264' : encodings.includes('H265') ? 'h265' : undefined;
  return { video, aac: encodings.includes('MPEG4-GENERIC') };
}

/** DESCRIBEs the camera; throws when it cannot be reached or refuses. */
export async function describeCamera(cameraUrl: string, timeoutMs = 5000): Promise<CameraMedia> {
  const url = new URL(cameraUrl);
  let r = await request(url, {}, timeoutMs);
  const challenge = r.headers.get('www-authenticate');
  if (r.status === 401 && challenge && url.username) r = await request(url, { Authorization: authorization(url, challenge) }, timeoutMs);
  if (r.status === 401) {
    throw new Error(
      url.username
        ? `the camera answered DESCRIBE with 401: it refused the user "${decodeURIComponent(url.username)}" and its password`
        : 'the camera answered DESCRIBE with 401: it asks for a user and password (rtsp://USER:PASSWORD@host/…)',
    );
  }
  if (r.status !== 200) throw new Error(`the camera answered DESCRIBE with ${r.status || 'no status'}`);
  return mediaOfSdp(r.body);
}
