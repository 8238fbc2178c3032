/**
 * The options of `ensureStream`, checked at the boundary: unknown keys are refused and every
 * message names the option, what was expected and what was received. Formats and limits are the
 * Kinesis Video Streams ones (service-api.md §2), so a bad value fails here rather than half-way
 * through the calls. Credentials are checked by `toProvider`.
 */
import { z } from 'zod';
import type { CredentialsOption } from '../credentials/credentials.js';
import { StreamConfigError } from '../errors.js';

export interface EnsureStreamOptions {
  /** 1-256 characters [a-zA-Z0-9_.-]. */
  streamName: string;
  /** Control-plane endpoint, e.g. the openkvs server URL; by default the AWS regional endpoint. */
  endpoint?: string;
  /** By default AWS_REGION, AWS_DEFAULT_REGION, the shared config file, or us-east-1 with an endpoint. */
  region?: string;
  /** By default the AWS provider chain. */
  credentials?: CredentialsOption;
  /** CA certificate (PEM file) to trust for an https endpoint; default AWS_CA_BUNDLE, else Node's store. */
  caCert?: string;
  /** 0-87 600 hours; 0 keeps no data. Left as it is on an existing stream when omitted. */
  dataRetentionInHours?: number;
  /** Added or overwritten; tags not named here are left alone. */
  tags?: Record<string, string>;
  /** KMS key for a new stream; for an existing stream it must match the stream's key. */
  kmsKeyId?: string;
  /** MIME type(s) of the stream's content, e.g. `video/h264`. */
  mediaType?: string;
  /** 1-128 characters [a-zA-Z0-9_.-]. */
  deviceName?: string;
}

export const MAX_RETENTION_HOURS = 87_600;
export const MAX_TAGS = 50;

const NAME = /^[a-zA-Z0-9_.-]+$/;
const MEDIA_TYPE = /^[\w.+-]+\/[\w.+-]+(,[\w.+-]+\/[\w.+-]+)*$/;
const TAG_CHARSET = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;
const REGION = /^[a-z0-9-]+$/;

const isHttpUrl = (value: string): boolean => {
  try {
    const url = new URL(value);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
};

const schema = z.strictObject({
  streamName: z.string().min(1).max(256).regex(NAME),
  endpoint: z.string().refine(isHttpUrl).optional(),
  region: z.string().min(1).max(64).regex(REGION).optional(),
  credentials: z.unknown().optional(),
  caCert: z.string().min(1).optional(),
  dataRetentionInHours: z.number().int().min(0).max(MAX_RETENTION_HOURS).optional(),
  tags: z
    .record(z.string().min(1).max(128).regex(TAG_CHARSET), z.string().max(256).regex(TAG_CHARSET))
    .refine((tags) => Object.keys(tags).length <= MAX_TAGS)
    .optional(),
  kmsKeyId: z.string().min(1).max(2048).optional(),
  mediaType: z.string().min(1).max(128).regex(MEDIA_TYPE).optional(),
  deviceName: z.string().min(1).max(128).regex(NAME).optional(),
});

const OPTION_NAMES = Object.keys(schema.shape);

/** What each option must be, as messages say it. */
const EXPECTED: Record<string, string> = {
  streamName: 'a string of 1-256 characters [a-zA-Z0-9_.-]',
  endpoint: 'an http:// or https:// URL',
  caCert: 'the path of a PEM file',
  region: 'a region name such as us-east-1 (1-64 characters [a-z0-9-])',
  dataRetentionInHours: `an integer number of hours from 0 to ${MAX_RETENTION_HOURS}`,
  tags: `an object of at most ${MAX_TAGS} tags, string to string`,
  tagKey: '1-128 characters of letters, digits, spaces and _.:/=+-@',
  tagValue: 'a string of 0-256 characters of letters, digits, spaces and _.:/=+-@',
  kmsKeyId: 'a KMS key id, alias or ARN (1-2048 characters)',
  mediaType: 'a MIME type such as video/h264, or a comma-separated list of them (at most 128 characters)',
  deviceName: 'a string of 1-128 characters [a-zA-Z0-9_.-]',
};

/** A short, secret-free rendering of a received value. */
function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') {
    const shown = value.length > 64 ? `${value.slice(0, 61)}...` : value;
    return `${JSON.stringify(shown)}${value.length > 64 ? ` (${value.length} characters)` : ''}`;
  }
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'object') return 'an object';
  return typeof value;
}

const invalid = (message: string): StreamConfigError => new StreamConfigError('INVALID_ARGUMENT', message);

/** Returns the options with their checked types, or throws StreamConfigError INVALID_ARGUMENT. */
export function parseEnsureStreamOptions(options: unknown): EnsureStreamOptions {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw invalid(`ensureStream options: expected an object with at least streamName; received ${describe(options)}.`);
  }
  const result = schema.safeParse(options);
  if (result.success) return result.data as EnsureStreamOptions;
  const issue = result.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    const s = issue.keys.length > 1 ? 's' : '';
    throw invalid(`Unknown ensureStream option${s}: ${issue.keys.join(', ')} (known options: ${OPTION_NAMES.join(', ')}).`);
  }
  const input = options as Record<string, unknown>;
  const [field, key] = issue.path.map(String);
  if (field === undefined) throw invalid(`Invalid ensureStream options: ${issue.message}.`);
  if (field === 'tags' && key !== undefined) {
    const tags = input.tags as Record<string, unknown>;
    if (issue.code === 'invalid_key') {
      throw invalid(`Invalid ensureStream option tags: key ${JSON.stringify(key)} is not a valid tag key; expected ${EXPECTED.tagKey}.`);
    }
    throw invalid(`Invalid ensureStream option tags[${JSON.stringify(key)}]: expected ${EXPECTED.tagValue}; received ${describe(tags[key])}.`);
  }
  const value = input[field];
  if (value === undefined) throw invalid(`Missing ensureStream option ${field}: expected ${EXPECTED[field] ?? 'a value'}.`);
  if (field === 'tags' && typeof value === 'object' && !Array.isArray(value) && value !== null) {
    throw invalid(`Invalid ensureStream option tags: expected ${EXPECTED.tags}; received ${Object.keys(value).length} tags.`);
  }
  throw invalid(`Invalid ensureStream option ${field}: expected ${EXPECTED[field] ?? 'a valid value'}; received ${describe(value)}.`);
}
