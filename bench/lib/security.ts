/**
 * The two server set-ups the benchmarks compare, and the client side of each: `off` is plain
 * HTTP, anonymous, fragments stored unencrypted; `on` is HTTPS (the server's own `--tls auto`
 * certificate, verified), every request SigV4-signed by a user's access key, and encryption at
 * rest; `at-rest` is plain and anonymous with encryption at rest only (the server's default), to
 * split the cost. Requests are signed with @smithy/signature-v4, as the AWS SDK signs them.
 */
import { createHash, createHmac, randomUUID, type Hash, type Hmac } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { SignatureV4 } from '@smithy/signature-v4';
import type { SourceData } from '@smithy/types';

export type SecurityMode = 'off' | 'at-rest' | 'on';

export const BENCH_CREDENTIALS = { accessKeyId: 'AKIABENCHMARK0000001', secretAccessKey: 'bench-secret-0000000000000000000000000' };

/** What a client needs to talk to a server: serializable, so it can go to the load workers. */
export interface ClientSecurity {
  mode: SecurityMode;
  /** PEM of the CA to trust (mode on). */
  ca?: string;
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** `openkvs serve` flags of a mode. */
export function serveFlags(mode: SecurityMode): string[] {
  if (mode === 'on') return ['--tls', 'auto', '--access-key', `${BENCH_CREDENTIALS.accessKeyId}:${BENCH_CREDENTIALS.secretAccessKey}`];
  return mode === 'off' ? ['--no-encryption'] : [];
}

const bytes = (d: SourceData): string | Uint8Array => (typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d));

/** The hash @smithy/signature-v4 asks for, on node:crypto. */
export class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(this.h.digest());
  }
}

/**
 * The headers of a POST to `url` with `body`, signed when the mode asks for it. PutMedia's body
 * is streamed: it is signed as the empty string, as kvssink does.
 */
export async function requestHeaders(sec: ClientSecurity, url: URL, headers: Record<string, string>, body: string): Promise<Record<string, string>> {
  if (!sec.credentials) return { host: url.host, ...headers };
  // Like the SDK's: makes every signature unique, so identical requests are not taken for replays.
  const all = { host: url.host, 'amz-sdk-invocation-id': randomUUID(), ...headers };
  const signer = new SignatureV4({ credentials: sec.credentials, region: 'us-east-1', service: 'kinesisvideo', sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: url.protocol,
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    query: {},
    headers: all,
    body,
  });
  return signed.headers as Record<string, string>;
}

/** http.request or https.request (trusting the mode's CA) for `url`. */
export function openRequest(sec: ClientSecurity, url: URL, headers: Record<string, string>): http.ClientRequest {
  const options = { method: 'POST', agent: false as const, headers };
  return url.protocol === 'https:' ? https.request(url, { ...options, ...(sec.ca ? { ca: sec.ca } : {}) }) : http.request(url, options);
}

/** A small JSON POST; resolves with the status and body text. */
export async function postJson(sec: ClientSecurity, baseUrl: string, operation: string, body: object): Promise<{ status: number; text: string }> {
  const url = new URL(`${baseUrl}/${operation}`);
  const payload = JSON.stringify(body);
  const headers = await requestHeaders(sec, url, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) }, payload);
  return new Promise((resolve, reject) => {
    const req = openRequest(sec, url, headers);
    req.on('error', reject);
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (text += s));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.end(payload);
  });
}
