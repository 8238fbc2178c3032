/**
 * Maps what the Kinesis Video Streams control plane (AWS or the openkvs server, through the AWS SDK
 * v3 client) throws to the `StreamConfigError` family: a stable `code`, `retryable`, the
 * service's exception name as `serviceCode`, the SDK error as `cause`.
 */
import { OpenKvsError, StreamConfigError, type StreamConfigErrorCode } from '../errors.js';
import { isUntrustedCertificate, TRUST_HINT } from '../tls-trust.js';

const BY_EXCEPTION: Record<string, [StreamConfigErrorCode, boolean]> = {
  ResourceNotFoundException: ['STREAM_NOT_FOUND', false],
  InvalidArgumentException: ['INVALID_ARGUMENT', false],
  InvalidResourceFormatException: ['INVALID_ARGUMENT', false],
  InvalidDeviceException: ['INVALID_ARGUMENT', false],
  ValidationException: ['INVALID_ARGUMENT', false],
  AccessDeniedException: ['ACCESS_DENIED', false],
  NotAuthorizedException: ['ACCESS_DENIED', false],
  UnrecognizedClientException: ['ACCESS_DENIED', false],
  InvalidSignatureException: ['ACCESS_DENIED', false],
  IncompleteSignatureException: ['ACCESS_DENIED', false],
  MissingAuthenticationTokenException: ['ACCESS_DENIED', false],
  InvalidClientTokenId: ['ACCESS_DENIED', false],
  SignatureDoesNotMatch: ['ACCESS_DENIED', false],
  ExpiredTokenException: ['ACCESS_DENIED', false],
  AccountStreamLimitExceededException: ['LIMIT_EXCEEDED', false],
  TagsPerResourceExceededLimitException: ['LIMIT_EXCEEDED', false],
  ClientLimitExceededException: ['THROTTLED', true],
  ThrottlingException: ['THROTTLED', true],
  VersionMismatchException: ['CONFLICT', true],
  ResourceInUseException: ['CONFLICT', true],
  InternalFailure: ['SERVICE_ERROR', true],
  ServiceUnavailable: ['SERVICE_ERROR', true],
};

interface SdkErrorShape {
  name?: unknown;
  message?: unknown;
  code?: unknown;
  $fault?: unknown;
  $metadata?: { httpStatusCode?: number };
}

/** The exception name an SDK error carries (`ResourceNotFoundException`, …). */
export const exceptionName = (err: unknown): string | undefined =>
  typeof err === 'object' && err !== null && typeof (err as SdkErrorShape).name === 'string'
    ? ((err as SdkErrorShape).name as string)
    : undefined;

/** `action` names the call ("DescribeStream"); openkvs errors (credentials, …) pass through. */
export function toStreamConfigError(err: unknown, action: string, streamName: string): OpenKvsError {
  if (err instanceof OpenKvsError) return err;
  const e = (typeof err === 'object' && err !== null ? err : {}) as SdkErrorShape;
  const name = exceptionName(err) ?? 'Error';
  const text = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
  const status = e.$metadata?.httpStatusCode;
  const where = `${action} of stream "${streamName}" failed`;

  if (text === 'Region is missing') {
    return new StreamConfigError(
      'INVALID_ARGUMENT',
      `${where}: no region. Pass region, or set AWS_REGION (or a region in the AWS config file).`,
      { cause: err },
    );
  }
  if (isUntrustedCertificate(err)) {
    return new StreamConfigError('UNTRUSTED_CERTIFICATE', `${where}: the server certificate is not trusted (${text}): ${TRUST_HINT}`, { cause: err });
  }
  if (status === undefined) {
    // No HTTP response: the endpoint could not be reached (refused, reset, DNS, timeout).
    const code = typeof e.code === 'string' ? ` (${e.code})` : '';
    return new StreamConfigError('NETWORK_ERROR', `${where}: the control plane could not be reached${code}: ${text}`, {
      retryable: true,
      cause: err,
    });
  }
  const known = BY_EXCEPTION[name];
  const [code, retryable]: [StreamConfigErrorCode, boolean] =
    known ?? (status >= 500 || e.$fault === 'server' ? ['SERVICE_ERROR', true] : status === 401 || status === 403 ? ['ACCESS_DENIED', false] : ['SERVICE_ERROR', false]);
  const hint = code === 'ACCESS_DENIED' ? ' Check the credentials, the region they are for, and their kinesisvideo permissions.' : '';
  return new StreamConfigError(code, `${where} (${name}, HTTP ${status}): ${text}${hint}`, {
    retryable,
    cause: err,
    serviceCode: name,
  });
}
