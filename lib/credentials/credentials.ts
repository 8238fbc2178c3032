/**
 * AWS credentials as openkvs takes them: static values, a named profile, any
 * `() => Promise<Credentials>`, or (by default) the AWS SDK's Node provider chain from
 * `@aws-sdk/credential-providers` (environment, SSO, shared files, process, web identity,
 * container and instance metadata).
 *
 * `toProvider` turns any of these into one `CredentialsProvider` whose results are checked: a
 * malformed set is an `INVALID_CREDENTIALS` error naming the field, a provider that throws is a
 * retryable `CREDENTIALS_UNAVAILABLE` error, a set already expired is `CREDENTIALS_EXPIRED`.
 * Providers from `toProvider` are not memoized (each call resolves afresh); `CredentialsRefresher`
 * memoizes them and refreshes before expiry.
 */
import { fromIni, fromNodeProviderChain } from '@aws-sdk/credential-providers';
import { CredentialsError } from '../errors.js';

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  /** When the set stops being valid; none means it never expires. */
  expiration?: Date;
}

export type CredentialsProvider = () => Promise<Credentials>;

/** A profile of the shared AWS config/credentials files (`~/.aws/credentials`, `~/.aws/config`). */
export interface CredentialsProfile {
  profile: string;
}

/** Static credentials, a provider, a profile, or `undefined` for the default AWS provider chain. */
export type CredentialsOption = Credentials | CredentialsProvider | CredentialsProfile | undefined;

const received = (value: unknown): string => {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? 'an invalid Date' : `Date ${value.toISOString()}`;
  if (typeof value === 'string') return value === '' ? 'an empty string' : 'a string';
  return typeof value === 'object' ? 'an object' : `${typeof value}${typeof value === 'number' ? ` ${String(value)}` : ''}`;
};

const invalid = (message: string): CredentialsError => new CredentialsError('INVALID_CREDENTIALS', message);

function requiredString(value: Record<string, unknown>, field: string, context: string): string {
  const v = value[field];
  if (v === undefined) throw invalid(`${context}: ${field} is missing (expected a non-empty string).`);
  if (typeof v !== 'string' || v === '') throw invalid(`${context}: ${field} must be a non-empty string; received ${received(v)}.`);
  if (/\s/.test(v)) throw invalid(`${context}: ${field} contains whitespace (a stray newline or space around the value?).`);
  return v;
}

/**
 * Checks a credentials set and returns a frozen copy holding only the four fields (AWS SDK
 * providers add `credentialScope`, `accountId`, … which are ignored). `context` starts messages.
 */
export function validateCredentials(value: unknown, context = 'Invalid credentials'): Credentials {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`${context}: expected an object { accessKeyId, secretAccessKey, sessionToken?, expiration? }; received ${received(value)}.`);
  }
  const record = value as Record<string, unknown>;
  const accessKeyId = requiredString(record, 'accessKeyId', context);
  const secretAccessKey = requiredString(record, 'secretAccessKey', context);
  const out: Credentials = { accessKeyId, secretAccessKey };
  const token = record.sessionToken;
  if (token !== undefined && token !== null && token !== '') {
    if (typeof token !== 'string') throw invalid(`${context}: sessionToken must be a string; received ${received(token)}.`);
    if (/\s/.test(token)) throw invalid(`${context}: sessionToken contains whitespace (a stray newline or space around the value?).`);
    out.sessionToken = token;
  }
  const expiration = record.expiration;
  if (expiration !== undefined && expiration !== null) {
    if (!(expiration instanceof Date) || Number.isNaN(expiration.getTime())) {
      throw invalid(`${context}: expiration must be a valid Date; received ${received(expiration)}.`);
    }
    out.expiration = new Date(expiration.getTime());
  }
  return Object.freeze(out);
}

const messageOf = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Wraps a source of credentials: failures and malformed or expired results become CredentialsErrors. */
function checked(source: string, fetch: () => Promise<unknown>): CredentialsProvider {
  return async () => {
    let value: unknown;
    try {
      value = await fetch();
    } catch (err) {
      if (err instanceof CredentialsError) throw err;
      throw new CredentialsError('CREDENTIALS_UNAVAILABLE', `Could not get credentials from ${source}: ${messageOf(err)}`, {
        retryable: true,
        cause: err,
      });
    }
    const credentials = validateCredentials(value, `Invalid credentials from ${source}`);
    if (credentials.expiration !== undefined && credentials.expiration.getTime() <= Date.now()) {
      throw new CredentialsError(
        'CREDENTIALS_EXPIRED',
        `Credentials from ${source} expired at ${credentials.expiration.toISOString()}.`,
        { retryable: true },
      );
    }
    return credentials;
  };
}

const isProfile = (value: object): value is CredentialsProfile => 'profile' in value;

/** Turns any `CredentialsOption` into a provider; static values and profiles are checked now. */
export function toProvider(option: CredentialsOption): CredentialsProvider {
  if (option === undefined) {
    // The chain memoizes internally and would hand back a set about to expire while it refreshes
    // in the background; forceRefresh makes every call a real resolution (the caller memoizes).
    const chain = fromNodeProviderChain({ ignoreCache: true });
    return checked('the default AWS credential provider chain', () => chain({ forceRefresh: true }));
  }
  if (typeof option === 'function') return checked('the credentials provider', option);
  if (typeof option !== 'object' || option === null || Array.isArray(option)) {
    throw invalid(
      'Invalid credentials: expected static credentials { accessKeyId, secretAccessKey, sessionToken?, expiration? }, ' +
        `{ profile }, a function returning credentials, or undefined for the default chain; received ${received(option)}.`,
    );
  }
  if (isProfile(option)) {
    const extra = Object.keys(option).filter((k) => k !== 'profile');
    if (extra.length > 0) {
      throw invalid(`Invalid credentials: { profile } takes no other fields; received ${extra.join(', ')} as well.`);
    }
    const profile = requiredString(option as unknown as Record<string, unknown>, 'profile', 'Invalid credentials');
    const fromProfile = fromIni({ profile, ignoreCache: true });
    return checked(`profile "${profile}"`, () => fromProfile());
  }
  const credentials = validateCredentials(option);
  if (credentials.expiration !== undefined && credentials.expiration.getTime() <= Date.now()) {
    throw new CredentialsError('CREDENTIALS_EXPIRED', `The static credentials expired at ${credentials.expiration.toISOString()}.`);
  }
  return checked('the static values', () => Promise.resolve(credentials));
}
