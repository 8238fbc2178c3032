/**
 * The SDK clients a consumer reads with, against AWS or the openkvs server alike: the data
 * endpoint of each API comes from GetDataEndpoint (as the service requires), credentials are any
 * `CredentialsOption` (the AWS provider chain by default). Also maps the SDK's errors to
 * `ConsumerError`s.
 */
import { GetDataEndpointCommand, KinesisVideoClient, type APIName } from '@aws-sdk/client-kinesis-video';
import { KinesisVideoArchivedMediaClient } from '@aws-sdk/client-kinesis-video-archived-media';
import { KinesisVideoMediaClient } from '@aws-sdk/client-kinesis-video-media';
import { z } from 'zod';
import { type CredentialsOption, type CredentialsProvider, toProvider } from '../credentials/credentials.js';
import { ConsumerError, OpenKvsError } from '../errors.js';
import { isUntrustedCertificate, sdkTlsSettings, TRUST_HINT } from '../tls-trust.js';

/** Which stream, where, and as whom. */
export interface StreamSource {
  streamName?: string;
  streamArn?: string;
  /** Control-plane endpoint: the openkvs server's URL, or none for AWS in `region`. */
  endpoint?: string;
  /** Default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1. */
  region?: string;
  /** Static values, a provider, a `{ profile }`, or (default) the AWS provider chain. */
  credentials?: CredentialsOption;
  /** CA certificate (PEM file) to trust for an https endpoint; default AWS_CA_BUNDLE, else Node's store. */
  caCert?: string;
}

export const streamSourceShape = {
  streamName: z.string().min(1).max(256).regex(/^[a-zA-Z0-9_.-]+$/, 'expected 1-256 of a-z A-Z 0-9 _ . -').optional(),
  streamArn: z.string().min(1).max(1024).optional(),
  endpoint: z.url().optional(),
  region: z.string().min(1).optional(),
  credentials: z.custom<CredentialsOption>(() => true).optional(),
  caCert: z.string().min(1).optional(),
};

export const hasStream = [(o: { streamName?: string; streamArn?: string }) => !!(o.streamName || o.streamArn), { message: 'expected streamName or streamArn' }] as const;

/** Checks options against a zod schema; the message names the first wrong option. */
export function parseOptions<T>(schema: z.ZodType<T>, options: unknown, what: string): T {
  const r = schema.safeParse(options);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  throw new ConsumerError('CONSUMER_INVALID_OPTIONS', `${what}: ${issue.path.join('.') || 'options'}: ${issue.message}`);
}

export function streamRef(s: StreamSource): { StreamName?: string; StreamARN?: string } {
  return s.streamArn ? { StreamARN: s.streamArn } : { StreamName: s.streamName! };
}

export function streamLabel(s: StreamSource): string {
  return s.streamName ?? s.streamArn ?? '?';
}

export class MediaClients {
  private readonly source: StreamSource;
  private readonly region: string;
  private readonly credentials: CredentialsProvider;
  private readonly control: KinesisVideoClient;
  private readonly tls: ReturnType<typeof sdkTlsSettings>;

  constructor(source: StreamSource) {
    this.source = source;
    this.region = source.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
    try {
      this.credentials = toProvider(source.credentials);
    } catch (err) {
      throw toConsumerError(err, `credentials for ${streamLabel(source)}`);
    }
    try {
      this.tls = sdkTlsSettings(source.caCert);
    } catch (err) {
      throw new ConsumerError('CONSUMER_INVALID_OPTIONS', `caCert: ${(err as Error).message}`, { cause: err });
    }
    this.control = new KinesisVideoClient(this.config(source.endpoint));
  }

  private config(endpoint: string | undefined) {
    return { region: this.region, credentials: this.credentials, maxAttempts: 1, ...this.tls, ...(endpoint ? { endpoint } : {}) };
  }

  /** The data endpoint for one API, asked afresh (it may move; AWS asks callers to refresh it). */
  async dataEndpoint(api: APIName): Promise<string> {
    try {
      const out = await this.control.send(new GetDataEndpointCommand({ ...streamRef(this.source), APIName: api }));
      if (!out.DataEndpoint) throw new ConsumerError('CONSUMER_REQUEST_FAILED', `GetDataEndpoint(${api}) answered no endpoint`, { retryable: true });
      return out.DataEndpoint;
    } catch (err) {
      throw toConsumerError(err, `GetDataEndpoint for ${streamLabel(this.source)}`);
    }
  }

  /** A GetMedia client on the given data endpoint (from `dataEndpoint('GET_MEDIA')`). */
  media(endpoint: string): KinesisVideoMediaClient {
    return new KinesisVideoMediaClient(this.config(endpoint));
  }

  async archived(api: APIName): Promise<KinesisVideoArchivedMediaClient> {
    return new KinesisVideoArchivedMediaClient(this.config(await this.dataEndpoint(api)));
  }

  destroy(): void {
    this.control.destroy();
  }
}

const AUTH_ERRORS = new Set([
  'NotAuthorizedException',
  'AccessDeniedException',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'IncompleteSignatureException',
  'MissingAuthenticationTokenException',
  'ExpiredTokenException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
]);
const RETRYABLE_ERRORS = new Set(['ClientLimitExceededException', 'ConnectionLimitExceededException', 'InternalFailure', 'ServiceUnavailable', 'ThrottlingException']);

/** An SDK, network or parser failure as a `ConsumerError` saying what was being done. */
export function toConsumerError(err: unknown, doing: string): ConsumerError {
  if (err instanceof ConsumerError) return err;
  if (isUntrustedCertificate(err)) {
    return new ConsumerError('CONSUMER_UNTRUSTED_CERTIFICATE', `${doing}: the server certificate is not trusted (${(err as Error).message}): ${TRUST_HINT}`, { cause: err });
  }
  const e = err as { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number }; $fault?: string };
  const name = e?.name ?? 'Error';
  const message = `${doing}: ${name === 'Error' ? '' : `${name}: `}${e?.message ?? String(err)}`;
  if (err instanceof OpenKvsError) {
    // Expired or malformed credentials are not retried: the reader would wait forever in silence.
    if (err.code === 'CREDENTIALS_EXPIRED' || err.code === 'INVALID_CREDENTIALS') return new ConsumerError('CONSUMER_NOT_AUTHORIZED', message, { cause: err });
    return new ConsumerError('CONSUMER_REQUEST_FAILED', message, { cause: err, retryable: err.retryable });
  }
  if (name === 'ResourceNotFoundException') return new ConsumerError('CONSUMER_STREAM_NOT_FOUND', message, { cause: err, serviceCode: name });
  if (AUTH_ERRORS.has(name)) return new ConsumerError('CONSUMER_NOT_AUTHORIZED', message, { cause: err, serviceCode: name });
  if (name === 'MkvError') return new ConsumerError('CONSUMER_MALFORMED_MEDIA', message, { cause: err });
  const status = e?.$metadata?.httpStatusCode;
  const serviceCode = status === undefined ? undefined : name;
  // No HTTP status: the request never got an answer (refused, reset, timed out) — worth retrying.
  const retryable = RETRYABLE_ERRORS.has(name) || status === undefined || status >= 500 || e?.$fault === 'server';
  return new ConsumerError('CONSUMER_REQUEST_FAILED', message, { cause: err, retryable, serviceCode });
}
