/**
 * AWS Signature Version 4 verification of a request against the secret of the access key it names
 * (authorizer.ts decides whether requests must be signed and what the signer may do).
 *
 * The canonical request is rebuilt from the request as received: the path as sent, the sorted
 * query, the signed headers (lower-cased names, trimmed values), and the payload hash — the
 * `x-amz-content-sha256` header when present (the AWS SDK sends it), else the SHA-256 of the
 * body for JSON operations, and of the empty string for PutMedia (what kvssink signs).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { KvsApiError } from '../../errors.js';

export type AccessKeys = Readonly<Record<string, string>>;

/** How far a request's X-Amz-Date may be from the server clock (AWS: 5 minutes). */
export const MAX_SKEW_MS = 5 * 60_000;

/** What the verifier needs of a key: its secret. */
export interface SigningKey {
  secretAccessKey: string;
}

export interface VerifiedSignature<K> {
  key: K;
  signature: string;
  signedAtMs: number;
}

export const EMPTY_SHA256 = createHash('sha256').update('').digest('hex');

export interface SignedRequest {
  method: string;
  /** Path and query as sent (`req.url`). */
  url: string;
  headers: IncomingHttpHeaders;
  /** Hex SHA-256 of the body, or undefined to use the empty-string hash (streamed bodies). */
  bodySha256?: string;
}

const AUTH_RE = /^AWS4-HMAC-SHA256\s+Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

const denied = (message: string) => new KvsApiError('InvalidSignatureException', message);

const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data).digest();

function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (v === undefined) return undefined;
  return (Array.isArray(v) ? v : [v]).map((x) => x.trim()).join(',');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((kv) => {
      const [k = '', v = ''] = kv.split('=', 2);
      return [k, v] as const;
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

/**
 * Checks the request's signature with the key `lookup` finds for its access key id; returns the
 * key and the signature, or throws the KvsApiError the AWS SDK names (403).
 */
export function verifySignature<K extends SigningKey>(req: SignedRequest, lookup: (accessKeyId: string) => K | undefined, now = Date.now()): VerifiedSignature<K> {
  const auth = headerValue(req.headers, 'authorization');
  if (!auth) throw new KvsApiError('MissingAuthenticationTokenException', 'Missing Authentication Token.');
  const m = AUTH_RE.exec(auth);
  if (!m) throw new KvsApiError('IncompleteSignatureException', 'The Authorization header is not a valid AWS4-HMAC-SHA256 signature.');
  const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as [string, string, string, string, string, string, string];
  const found = lookup(accessKeyId);
  if (found === undefined) {
    throw new KvsApiError('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const amzDate = headerValue(req.headers, 'x-amz-date');
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || !amzDate.startsWith(date)) {
    throw denied('X-Amz-Date is missing or does not match the credential scope.');
  }
  const signedAt = Date.UTC(+amzDate.slice(0, 4), +amzDate.slice(4, 6) - 1, +amzDate.slice(6, 8), +amzDate.slice(9, 11), +amzDate.slice(11, 13), +amzDate.slice(13, 15));
  if (Math.abs(now - signedAt) > MAX_SKEW_MS) {
    throw denied(`Signature expired: ${amzDate} is now earlier or later than ${new Date(now - MAX_SKEW_MS).toISOString()} .. ${new Date(now + MAX_SKEW_MS).toISOString()} (5 minutes of the server time; check the clock).`);
  }

  const names = signedHeaders.split(';');
  if (!names.includes('host')) throw denied('The host header must be signed.');
  const canonicalHeaders = names.map((n) => `${n}:${headerValue(req.headers, n) ?? ''}\n`).join('');
  const q = req.url.indexOf('?');
  const path = q < 0 ? req.url : req.url.slice(0, q);
  const claimed = headerValue(req.headers, 'x-amz-content-sha256');
  if (claimed !== undefined && req.bodySha256 !== undefined && claimed !== 'UNSIGNED-PAYLOAD' && claimed !== req.bodySha256) {
    throw denied('The x-amz-content-sha256 header does not match the body received.');
  }
  const payload = claimed ?? req.bodySha256 ?? EMPTY_SHA256;
  const canonicalRequest = [req.method, path || '/', canonicalQuery(q < 0 ? '' : req.url.slice(q + 1)), canonicalHeaders, signedHeaders, payload].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${found.secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = hmac(key, stringToSign);
  if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
    throw denied('The request signature we calculated does not match the signature you provided.');
  }
  return { key: found, signature, signedAtMs: signedAt };
}
