/**
 * toProvider: static values are checked with messages naming the field; providers' results and
 * failures become CredentialsErrors; profiles and the default chain read the real AWS shared files
 * and environment (pointed at temp files here).
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import { type Credentials, type CredentialsOption, type CredentialsProvider, toProvider } from '../../../lib/credentials/credentials.js';
import { CredentialsError } from '../../../lib/errors.js';
import { tempDir } from '../../helpers/server.js';

const KEYS = { accessKeyId: 'AKIAOPENKVSUNITTEST1', secretAccessKey: 'unit/secret+key' };

afterEach(() => {
  vi.unstubAllEnvs();
});

function thrown(fn: () => unknown): CredentialsError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(CredentialsError);
    return err as CredentialsError;
  }
  throw new Error('expected a CredentialsError');
}

/** Shared config and credentials files in a temp dir, and nothing from this machine. */
function isolateAwsEnv(credentialsFile: string, configFile = ''): void {
  const dir = tempDir('openkvs-aws-');
  const creds = path.join(dir, 'credentials');
  const config = path.join(dir, 'config');
  writeFileSync(creds, credentialsFile);
  writeFileSync(config, configFile);
  for (const name of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE', 'AWS_WEB_IDENTITY_TOKEN_FILE', 'AWS_ROLE_ARN', 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI', 'AWS_CONTAINER_CREDENTIALS_FULL_URI']) {
    vi.stubEnv(name, undefined);
  }
  vi.stubEnv('AWS_SHARED_CREDENTIALS_FILE', creds);
  vi.stubEnv('AWS_CONFIG_FILE', config);
  vi.stubEnv('AWS_EC2_METADATA_DISABLED', 'true');
}

describe('static credentials', () => {
  it('resolve to a frozen copy with only the credential fields', async () => {
    const expiration = new Date(Date.now() + 3_600_000);
    const provider = toProvider({ ...KEYS, sessionToken: 'tok', expiration, accountId: '123' } as Credentials);
    const c = await provider();
    expect(c).toEqual({ ...KEYS, sessionToken: 'tok', expiration });
    expect(Object.isFrozen(c)).toBe(true);
  });

  it.each([
    [{ secretAccessKey: 's' }, 'Invalid credentials: accessKeyId is missing (expected a non-empty string).'],
    [{ accessKeyId: 'AKID' }, 'Invalid credentials: secretAccessKey is missing (expected a non-empty string).'],
    [{ accessKeyId: '', secretAccessKey: 's' }, 'Invalid credentials: accessKeyId must be a non-empty string; received an empty string.'],
    [{ accessKeyId: 42, secretAccessKey: 's' }, 'Invalid credentials: accessKeyId must be a non-empty string; received number 42.'],
    [{ accessKeyId: 'AKID\n', secretAccessKey: 's' }, 'Invalid credentials: accessKeyId contains whitespace (a stray newline or space around the value?).'],
    [{ accessKeyId: 'AKID', secretAccessKey: 's', sessionToken: 7 }, 'Invalid credentials: sessionToken must be a string; received number 7.'],
    [{ accessKeyId: 'AKID', secretAccessKey: 's', expiration: '2030-01-01' }, 'Invalid credentials: expiration must be a valid Date; received a string.'],
    [{ accessKeyId: 'AKID', secretAccessKey: 's', expiration: new Date('nope') }, 'Invalid credentials: expiration must be a valid Date; received an invalid Date.'],
  ])('refuse %j', (value, message) => {
    const err = thrown(() => toProvider(value as unknown as Credentials));
    expect(err.code).toBe('INVALID_CREDENTIALS');
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(message);
  });

  it('refuse something that is no credentials option at all', () => {
    const err = thrown(() => toProvider('AKID:secret' as unknown as CredentialsOption));
    expect(err.code).toBe('INVALID_CREDENTIALS');
    expect(err.message).toMatch(/^Invalid credentials: expected static credentials .* received a string\.$/);
  });

  it('refuse a set that has already expired', () => {
    const err = thrown(() => toProvider({ ...KEYS, expiration: new Date(Date.now() - 1000) }));
    expect(err.code).toBe('CREDENTIALS_EXPIRED');
    expect(err.message).toMatch(/^The static credentials expired at \d{4}-/);
  });
});

describe('provider functions', () => {
  it('pass results through, checked', async () => {
    const provider = toProvider(async () => ({ ...KEYS, sessionToken: '' }));
    expect(await provider()).toEqual(KEYS);
  });

  it('turn a failure into a retryable CREDENTIALS_UNAVAILABLE error with the cause', async () => {
    const boom = new Error('IMDS timed out');
    const err = await toProvider(() => Promise.reject(boom))().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsError);
    expect(err).toMatchObject({
      code: 'CREDENTIALS_UNAVAILABLE',
      retryable: true,
      cause: boom,
      message: 'Could not get credentials from the credentials provider: IMDS timed out',
    });
  });

  it('refuse a malformed result, naming the field', async () => {
    const err = await toProvider(async () => ({ accessKeyId: 'AKID' }) as Credentials)().catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'INVALID_CREDENTIALS',
      message: 'Invalid credentials from the credentials provider: secretAccessKey is missing (expected a non-empty string).',
    });
  });

  it('refuse an expired result as retryable', async () => {
    const err = await toProvider(async () => ({ ...KEYS, expiration: new Date(Date.now() - 1) }))().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CREDENTIALS_EXPIRED', retryable: true });
  });
});

describe('profiles and the default chain', () => {
  it('read a named profile from the shared credentials file, again on every call', async () => {
    isolateAwsEnv(`[cam]\naws_access_key_id = AKIAPROFILECAM000001\naws_secret_access_key = profile/secret\n`);
    const provider = toProvider({ profile: 'cam' });
    expect(await provider()).toEqual({ accessKeyId: 'AKIAPROFILECAM000001', secretAccessKey: 'profile/secret' });
    // Rotated keys in the file are seen by the next call (no process-wide file cache).
    writeFileSync(process.env.AWS_SHARED_CREDENTIALS_FILE!, `[cam]\naws_access_key_id = AKIAPROFILECAM000002\naws_secret_access_key = rotated\n`);
    expect(await provider()).toEqual({ accessKeyId: 'AKIAPROFILECAM000002', secretAccessKey: 'rotated' });
  });

  it('report a missing profile as CREDENTIALS_UNAVAILABLE naming it', async () => {
    isolateAwsEnv('');
    const err = await toProvider({ profile: 'nope' })().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE' });
    expect((err as Error).message).toMatch(/^Could not get credentials from profile "nope": /);
  });

  it('refuse a profile with other fields, or an empty profile name', () => {
    expect(thrown(() => toProvider({ profile: 'a', accessKeyId: 'x' } as unknown as CredentialsOption)).message).toBe(
      'Invalid credentials: { profile } takes no other fields; received accessKeyId as well.',
    );
    expect(thrown(() => toProvider({ profile: '' })).message).toBe(
      'Invalid credentials: profile must be a non-empty string; received an empty string.',
    );
  });

  it('use the AWS provider chain by default (environment variables here)', async () => {
    isolateAwsEnv('');
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFROMENVIRONMENT1');
    vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'env/secret');
    vi.stubEnv('AWS_SESSION_TOKEN', 'env-token');
    const provider = toProvider(undefined);
    expect(await provider()).toEqual({ accessKeyId: 'AKIAFROMENVIRONMENT1', secretAccessKey: 'env/secret', sessionToken: 'env-token' });
    // Not memoized: a change in the environment is seen by the next call.
    vi.stubEnv('AWS_ACCESS_KEY_ID', 'AKIAFROMENVIRONMENT2');
    expect((await provider()).accessKeyId).toBe('AKIAFROMENVIRONMENT2');
  });

  it('default chain with nothing configured: CREDENTIALS_UNAVAILABLE, retryable', async () => {
    isolateAwsEnv('');
    const err = await toProvider(undefined)().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE', retryable: true });
    expect((err as Error).message).toMatch(/^Could not get credentials from the default AWS credential provider chain: /);
  });
});

it('public types', () => {
  expectTypeOf(toProvider).parameter(0).toEqualTypeOf<CredentialsOption>();
  expectTypeOf(toProvider).returns.toEqualTypeOf<CredentialsProvider>();
  expectTypeOf<CredentialsProvider>().returns.resolves.toEqualTypeOf<Credentials>();
  expectTypeOf<{ profile: string }>().toMatchTypeOf<CredentialsOption>();
  expectTypeOf<{ accessKeyId: string; secretAccessKey: string }>().toMatchTypeOf<CredentialsOption>();
  expectTypeOf<undefined>().toMatchTypeOf<CredentialsOption>();
  expectTypeOf<CredentialsError['code']>().toEqualTypeOf<
    'INVALID_CREDENTIALS' | 'CREDENTIALS_UNAVAILABLE' | 'CREDENTIALS_EXPIRED' | 'CREDENTIALS_REFRESH_FAILED'
  >();
});
