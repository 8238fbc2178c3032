/**
 * The openkvs error catalogue. Every error thrown by openkvs is an `OpenKvsError` with a stable,
 * literal-typed `code` and a `retryable` flag; families are subclasses.
 *
 * `KvsApiError` is the family of Kinesis Video Streams API exceptions the server answers with:
 * its `code` is the exception name the AWS SDK maps (`ResourceNotFoundException`, …) and
 * `status` the HTTP status the service uses for it.
 */

export interface OpenKvsErrorOptions {
  retryable?: boolean;
  cause?: unknown;
}

export class OpenKvsError<C extends string = string> extends Error {
  readonly code: C;
  readonly retryable: boolean;

  constructor(code: C, message: string, options: OpenKvsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.retryable = options.retryable ?? false;
  }
}

/** HTTP status of each Kinesis Video Streams exception the server emits (service-api.md §3.2, §5). */
export const KVS_API_ERROR_STATUS = {
  InvalidArgumentException: 400,
  ResourceNotFoundException: 404,
  ResourceInUseException: 400,
  VersionMismatchException: 400,
  TagsPerResourceExceededLimitException: 400,
  InvalidResourceFormatException: 400,
  AccountStreamLimitExceededException: 400,
  ClientLimitExceededException: 400,
  ConnectionLimitExceededException: 400,
  NoDataRetentionException: 400,
  NotAuthorizedException: 401,
  AccessDeniedException: 401,
  InvalidSignatureException: 403,
  IncompleteSignatureException: 403,
  MissingAuthenticationTokenException: 403,
  UnrecognizedClientException: 403,
  ExpiredTokenException: 403,
  UnknownOperationException: 404,
  InternalFailure: 500,
} as const;

export type KvsApiErrorCode = keyof typeof KVS_API_ERROR_STATUS;

export class KvsApiError extends OpenKvsError<KvsApiErrorCode> {
  readonly status: number;

  constructor(code: KvsApiErrorCode, message: string, options: OpenKvsErrorOptions = {}) {
    super(code, message, { retryable: options.retryable ?? code === 'InternalFailure', cause: options.cause });
    this.status = KVS_API_ERROR_STATUS[code];
  }
}

export const invalidArgument = (message: string): KvsApiError => new KvsApiError('InvalidArgumentException', message);

export const streamNotFound = (): KvsApiError =>
  new KvsApiError('ResourceNotFoundException', 'The requested stream is not found or not active.');

/**
 * Credentials that cannot be used: malformed static values (`INVALID_CREDENTIALS`), a provider
 * that failed (`CREDENTIALS_UNAVAILABLE`) or returned a set already expired
 * (`CREDENTIALS_EXPIRED`), a background refresh that failed while the previous set is kept
 * (`CREDENTIALS_REFRESH_FAILED`).
 */
export type CredentialsErrorCode =
  | 'INVALID_CREDENTIALS'
  | 'CREDENTIALS_UNAVAILABLE'
  | 'CREDENTIALS_EXPIRED'
  | 'CREDENTIALS_REFRESH_FAILED';

export class CredentialsError extends OpenKvsError<CredentialsErrorCode> {}

/**
 * Stream configuration (`ensureStream`) failures. `serviceCode` is the exception name the
 * service answered with (`AccessDeniedException`, …) when there was one.
 */
export type StreamConfigErrorCode =
  | 'INVALID_ARGUMENT'
  | 'STREAM_NOT_FOUND'
  | 'STREAM_NOT_ACTIVE'
  | 'ACCESS_DENIED'
  | 'KMS_KEY_MISMATCH'
  | 'LIMIT_EXCEEDED'
  | 'THROTTLED'
  | 'CONFLICT'
  | 'NETWORK_ERROR'
  | 'UNTRUSTED_CERTIFICATE'
  | 'SERVICE_ERROR';

export interface StreamConfigErrorOptions extends OpenKvsErrorOptions {
  serviceCode?: string;
}

export class StreamConfigError extends OpenKvsError<StreamConfigErrorCode> {
  readonly serviceCode: string | undefined;

  constructor(code: StreamConfigErrorCode, message: string, options: StreamConfigErrorOptions = {}) {
    super(code, message, options);
    this.serviceCode = options.serviceCode;
  }
}

/**
 * Pipeline failures: the upload (`KVS_*`, from the details kvssink posts), any other element
 * (`GST_ERROR`), and calls the addon refuses: `setProperty`/`getProperty` of an element or
 * property the pipeline does not have or a value the property cannot take (`NO_SUCH_ELEMENT`,
 * `NO_SUCH_PROPERTY`, `INVALID_PROPERTY_VALUE`), anything on a closed pipeline (`PIPELINE_CLOSED`).
 */
export type PipelineErrorCode =
  | 'KVS_ACCESS_DENIED'
  | 'KVS_STREAM_NOT_FOUND'
  | 'KVS_ACK_ERROR'
  | 'KVS_SERVICE_ERROR'
  | 'GST_ERROR'
  | 'NO_SUCH_ELEMENT'
  | 'NO_SUCH_PROPERTY'
  | 'INVALID_PROPERTY_VALUE'
  | 'PIPELINE_CLOSED';

export interface PipelineErrorInfo {
  /** Element that posted the error. */
  source?: string;
  /** GStreamer error domain (e.g. gst-resource-error-quark) and code. */
  domain?: string;
  domainCode?: number;
  httpStatus?: number;
  serviceCode?: string;
  /** PutMedia ERROR ack id (4xxx/5xxx), when the error came from one. */
  errorId?: number;
  fragmentTimecode?: number;
  debug?: string;
}

/** An error of a pipeline: kvssink's upload, any other element, or a call the pipeline refused. */
export class PipelineError extends OpenKvsError<PipelineErrorCode> {
  readonly info: PipelineErrorInfo;
  /**
   * True (the default) when the pipeline has stopped: the error that rejects `finished`, a pipeline
   * that refused to start, a call on a closed pipeline. False when it goes on: an upload problem
   * kvssink retries on its own, a failed credentials refresh (the previous credentials stay in
   * use), a refused `setProperty`/`getProperty`.
   */
  readonly fatal: boolean;

  constructor(code: PipelineErrorCode, message: string, info: PipelineErrorInfo, options: OpenKvsErrorOptions & { fatal?: boolean } = {}) {
    super(code, message, options);
    this.info = info;
    this.fatal = options.fatal ?? true;
  }
}

/**
 * A relay configuration that cannot be used: a file that cannot be read or parsed
 * (`CONFIG_UNREADABLE`) or a value that does not fit the schema (`INVALID_CONFIG`; the message
 * names the field, e.g. `cameras[1].url: expected an rtsp:// or rtsps:// URL`).
 */
export type RelayConfigErrorCode = 'INVALID_CONFIG' | 'CONFIG_UNREADABLE';

export class RelayConfigError extends OpenKvsError<RelayConfigErrorCode> {}

/**
 * Consumer failures (`lib/consumer/`). `serviceCode` is the exception name the service answered
 * with, or the in-stream `AWS_KINESISVIDEO_ERROR_CODE` for `CONSUMER_STREAM_ERROR`.
 * - `CONSUMER_INVALID_OPTIONS`: an option that does not fit (the message names it).
 * - `CONSUMER_STREAM_NOT_FOUND`: the stream does not exist (ResourceNotFoundException).
 * - `CONSUMER_NOT_AUTHORIZED`: credentials refused, expired or missing.
 * - `CONSUMER_BAD_CHECKPOINT`: a stored checkpoint or continuation token the service refuses.
 * - `CONSUMER_MALFORMED_MEDIA`: the media is not the Matroska the service sends.
 * - `CONSUMER_STREAM_ERROR`: the service stopped the stream with an error tag.
 * - `CONSUMER_UNTRUSTED_CERTIFICATE`: the https endpoint's certificate is not trusted (`caCert`).
 * - `CONSUMER_REQUEST_FAILED`: any other failed request (retryable when the service says so).
 * - `CONSUMER_DECODE_FAILED`, `CONSUMER_UNSUPPORTED_CODEC`: the video decoder.
 * - `CONSUMER_CHECKPOINT_STORE`: the checkpoint store could not be read or written.
 */
export type ConsumerErrorCode =
  | 'CONSUMER_INVALID_OPTIONS'
  | 'CONSUMER_STREAM_NOT_FOUND'
  | 'CONSUMER_NOT_AUTHORIZED'
  | 'CONSUMER_BAD_CHECKPOINT'
  | 'CONSUMER_MALFORMED_MEDIA'
  | 'CONSUMER_STREAM_ERROR'
  | 'CONSUMER_UNTRUSTED_CERTIFICATE'
  | 'CONSUMER_REQUEST_FAILED'
  | 'CONSUMER_DECODE_FAILED'
  | 'CONSUMER_UNSUPPORTED_CODEC'
  | 'CONSUMER_CHECKPOINT_STORE';

export interface ConsumerErrorOptions extends OpenKvsErrorOptions {
  serviceCode?: string;
}

export class ConsumerError extends OpenKvsError<ConsumerErrorCode> {
  readonly serviceCode: string | undefined;

  constructor(code: ConsumerErrorCode, message: string, options: ConsumerErrorOptions = {}) {
    super(code, message, options);
    this.serviceCode = options.serviceCode;
  }
}
