/**
 * Which CA certificates the Node side trusts for https endpoints, such as an openkvs server with
 * its own (`--tls auto`) certificate: the `caCert` option, else `AWS_CA_BUNDLE` (the variable the
 * AWS CLI uses for the same purpose), else Node's store. Host names are always verified. kvssink
 * gets the same file as its `ca-cert` property and reads `AWS_CA_BUNDLE` itself as a fallback.
 */
import { readFileSync } from 'node:fs';
import https from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { OpenKvsError } from './errors.js';

function resolveCaCert(option: string | undefined): string | undefined {
  return option || process.env.AWS_CA_BUNDLE || undefined;
}

/**
 * AWS SDK client settings that trust the PEM file `caCert` (in place of Node's store); `{}` when
 * none is given. An unreadable file is an `OpenKvsError` `CA_CERT_UNREADABLE` naming it.
 */
export function sdkTlsSettings(caCert: string | undefined): { requestHandler?: NodeHttpHandler } {
  const file = resolveCaCert(caCert);
  if (!file) return {};
  let ca: Buffer;
  try {
    ca = readFileSync(file);
  } catch (err) {
    throw new OpenKvsError('CA_CERT_UNREADABLE', `cannot read the CA certificate ${file}: ${(err as Error).message}`, { cause: err });
  }
  return { requestHandler: new NodeHttpHandler({ httpsAgent: new https.Agent({ ca, keepAlive: true }) }) };
}

/** Node's codes for a server certificate that is not trusted or does not name the host. */
const UNTRUSTED = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** True when a request failed because the server's certificate was refused: retrying cannot help. */
export function isUntrustedCertificate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNTRUSTED.has(code);
}

/** What to do about an untrusted certificate, appended to error messages. */
export const TRUST_HINT = 'pass caCert (--ca-cert on the command line) or set AWS_CA_BUNDLE to the CA certificate that issued the server certificate';
