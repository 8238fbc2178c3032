/**
 * ensureStream against a real openkvs server, checked with the AWS SDK client: creation with every
 * setting, idempotence, retention up and down, tags, media type, concurrent creation, KMS key
 * mismatch, option validation, and wrong credentials against a server that checks signatures.
 */
import { DescribeStreamCommand, ListTagsForStreamCommand, TagStreamCommand } from '@aws-sdk/client-kinesis-video';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { CredentialsError, StreamConfigError } from '../../lib/errors.js';
import { ensureStream, type EnsureStreamResult } from '../../lib/streams/ensure-stream.js';
import type { EnsureStreamOptions } from '../../lib/streams/ensure-stream-options.js';
import { credentials, startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
let base: { endpoint: string; region: string; credentials: typeof credentials };

beforeAll(async () => {
  t = await startTestServer();
  base = { endpoint: t.url, region: 'us-east-1', credentials };
});
afterAll(() => t?.close());

const describeStream = async (name: string) => (await t.kv.send(new DescribeStreamCommand({ StreamName: name }))).StreamInfo!;
const tagsOf = async (name: string) => (await t.kv.send(new ListTagsForStreamCommand({ StreamName: name }))).Tags ?? {};

async function rejection(p: Promise<unknown>): Promise<StreamConfigError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StreamConfigError);
  return err as StreamConfigError;
}

describe('creation and idempotence', () => {
  it('creates a missing stream with retention, tags, media type and device name', async () => {
    const out = await ensureStream({
      ...base,
      streamName: 'cam1',
      dataRetentionInHours: 24,
      tags: { site: 'a', floor: '2' },
      mediaType: 'video/h264',
      deviceName: 'front-door',
    });
    expect(out.created).toBe(true);
    expect(out.updated).toEqual([]);
    const info = await describeStream('cam1');
    expect(out.streamARN).toBe(info.StreamARN);
    expect(info).toMatchObject({ Status: 'ACTIVE', DataRetentionInHours: 24, MediaType: 'video/h264', DeviceName: 'front-door' });
    expect(await tagsOf('cam1')).toEqual({ site: 'a', floor: '2' });
  });

  it('a second identical call changes nothing (not even the Version)', async () => {
    const before = await describeStream('cam1');
    const out = await ensureStream({ ...base, streamName: 'cam1', dataRetentionInHours: 24, tags: { site: 'a' }, mediaType: 'video/h264' });
    expect(out).toEqual({ streamARN: before.StreamARN, created: false, updated: [] });
    expect((await describeStream('cam1')).Version).toBe(before.Version);
  });

  it('the usage from the issue works as written', async () => {
    const { endpoint, region } = base;
    const out = await ensureStream({ streamName: 'cam-issue', endpoint, region, credentials, dataRetentionInHours: 24, tags: { site: 'a' } });
    expect(out.created).toBe(true);
    expect((await describeStream('cam-issue')).DataRetentionInHours).toBe(24);
  });

  it('a stream created without options keeps the service defaults', async () => {
    const out = await ensureStream({ ...base, streamName: 'plain' });
    expect(out.created).toBe(true);
    const info = await describeStream('plain');
    expect(info.DataRetentionInHours).toBe(0);
    expect(info.MediaType).toBeUndefined();
    expect(await ensureStream({ ...base, streamName: 'plain' })).toMatchObject({ created: false, updated: [] });
  });
});

describe('updates of an existing stream', () => {
  beforeAll(() => t.createStream('upd', 24));

  it('raises retention, then lowers it, each by the difference', async () => {
    const up = await ensureStream({ ...base, streamName: 'upd', dataRetentionInHours: 72 });
    expect(up).toMatchObject({ created: false, updated: ['dataRetentionInHours'] });
    expect((await describeStream('upd')).DataRetentionInHours).toBe(72);

    const down = await ensureStream({ ...base, streamName: 'upd', dataRetentionInHours: 2 });
    expect(down.updated).toEqual(['dataRetentionInHours']);
    expect((await describeStream('upd')).DataRetentionInHours).toBe(2);

    const off = await ensureStream({ ...base, streamName: 'upd', dataRetentionInHours: 0 });
    expect(off.updated).toEqual(['dataRetentionInHours']);
    expect((await describeStream('upd')).DataRetentionInHours).toBe(0);
  });

  it('adds missing tags and changes different ones, leaving others alone', async () => {
    await t.kv.send(new TagStreamCommand({ StreamName: 'upd', Tags: { site: 'a', owner: 'ops' } }));
    const out = await ensureStream({ ...base, streamName: 'upd', tags: { site: 'b', zone: 'north' } });
    expect(out.updated).toEqual(['tags']);
    expect(await tagsOf('upd')).toEqual({ site: 'b', owner: 'ops', zone: 'north' });
    expect((await ensureStream({ ...base, streamName: 'upd', tags: { site: 'b' } })).updated).toEqual([]);
  });

  it('updates the media type and device name, keeping the other', async () => {
    const first = await ensureStream({ ...base, streamName: 'upd', mediaType: 'video/h264', deviceName: 'cam-a' });
    expect(first.updated).toEqual(['mediaType', 'deviceName']);
    const second = await ensureStream({ ...base, streamName: 'upd', mediaType: 'video/h265' });
    expect(second.updated).toEqual(['mediaType']);
    expect(await describeStream('upd')).toMatchObject({ MediaType: 'video/h265', DeviceName: 'cam-a' });
  });

  it('changes several things in one call, with a fresh Version for each versioned update', async () => {
    const out = await ensureStream({
      ...base,
      streamName: 'upd',
      dataRetentionInHours: 48,
      mediaType: 'video/h264,audio/aac',
      tags: { site: 'c' },
    });
    expect(out.updated).toEqual(['dataRetentionInHours', 'mediaType', 'tags']);
    expect(await describeStream('upd')).toMatchObject({ DataRetentionInHours: 48, MediaType: 'video/h264,audio/aac' });
    expect((await tagsOf('upd')).site).toBe('c');
  });

  it('concurrent calls for one new stream both succeed with one creation', async () => {
    const opts = { ...base, streamName: 'race', dataRetentionInHours: 12, tags: { site: 'r' } };
    const results = await Promise.all([ensureStream(opts), ensureStream(opts), ensureStream(opts)]);
    expect(results.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(results.map((r) => r.streamARN)).size).toBe(1);
    for (const r of results) expect(r.updated).toEqual([]);
    expect((await describeStream('race')).DataRetentionInHours).toBe(12);
  });

  it('concurrent updates of one stream both end with the wanted retention (Version mismatch retried)', async () => {
    await t.createStream('race-upd', 10);
    const results = await Promise.all([
      ensureStream({ ...base, streamName: 'race-upd', dataRetentionInHours: 20 }),
      ensureStream({ ...base, streamName: 'race-upd', dataRetentionInHours: 20 }),
    ]);
    expect(results.flatMap((r) => r.updated)).toEqual(['dataRetentionInHours']);
    expect((await describeStream('race-upd')).DataRetentionInHours).toBe(20);
  });
});

describe('KMS keys', () => {
  it('a new stream gets the key; the same key again (as ARN, alias or key id) is fine', async () => {
    const key = 'arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    await ensureStream({ ...base, streamName: 'kms', kmsKeyId: key });
    expect((await describeStream('kms')).KmsKeyId).toBe(key);
    expect((await ensureStream({ ...base, streamName: 'kms', kmsKeyId: key })).updated).toEqual([]);
    expect((await ensureStream({ ...base, streamName: 'kms', kmsKeyId: '1234abcd-12ab-34cd-56ef-1234567890ab' })).updated).toEqual([]);
    // The default key is reported as the aws/kinesisvideo alias ARN.
    expect((await ensureStream({ ...base, streamName: 'plain', kmsKeyId: 'alias/aws/kinesisvideo' })).updated).toEqual([]);
  });

  it('a different key for an existing stream is refused before anything changes', async () => {
    const before = await describeStream('kms');
    const err = await rejection(
      ensureStream({ ...base, streamName: 'kms', kmsKeyId: 'alias/other', dataRetentionInHours: 99 }),
    );
    expect(err.code).toBe('KMS_KEY_MISMATCH');
    expect(err.retryable).toBe(false);
    expect(err.message).toBe(
      `Stream "kms" is encrypted with KMS key ${before.KmsKeyId}, not alias/other. The KMS key of an existing stream ` +
        'cannot be changed through the Kinesis Video Streams API: leave kmsKeyId out, pass the key as DescribeStream ' +
        'reports it, or delete and recreate the stream.',
    );
    expect((await describeStream('kms')).DataRetentionInHours).toBe(before.DataRetentionInHours);
  });
});

describe('option validation', () => {
  const invalid = async (options: unknown) => {
    const err = await rejection(ensureStream(options as EnsureStreamOptions));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.retryable).toBe(false);
    return err.message;
  };

  it('refuses unknown options, naming them', async () => {
    expect(await invalid({ ...base, streamName: 'x', retentionHours: 5 })).toBe(
      'Unknown ensureStream option: retentionHours (known options: streamName, endpoint, region, credentials, caCert, ' +
        'dataRetentionInHours, tags, kmsKeyId, mediaType, deviceName).',
    );
  });

  it.each([
    [{ dataRetentionInHours: -1 }, 'Invalid ensureStream option dataRetentionInHours: expected an integer number of hours from 0 to 87600; received -1.'],
    [{ dataRetentionInHours: 1.5 }, 'Invalid ensureStream option dataRetentionInHours: expected an integer number of hours from 0 to 87600; received 1.5.'],
    [{ dataRetentionInHours: '24' }, 'Invalid ensureStream option dataRetentionInHours: expected an integer number of hours from 0 to 87600; received "24".'],
    [{ streamName: 'bad name!' }, 'Invalid ensureStream option streamName: expected a string of 1-256 characters [a-zA-Z0-9_.-]; received "bad name!".'],
    [{ streamName: '' }, 'Invalid ensureStream option streamName: expected a string of 1-256 characters [a-zA-Z0-9_.-]; received "".'],
    [{ streamName: undefined }, 'Missing ensureStream option streamName: expected a string of 1-256 characters [a-zA-Z0-9_.-].'],
    [{ endpoint: 'localhost:4567' }, 'Invalid ensureStream option endpoint: expected an http:// or https:// URL; received "localhost:4567".'],
    [{ mediaType: 'h264' }, 'Invalid ensureStream option mediaType: expected a MIME type such as video/h264, or a comma-separated list of them (at most 128 characters); received "h264".'],
    [{ tags: { 'bad#key': 'v' } }, 'Invalid ensureStream option tags: key "bad#key" is not a valid tag key; expected 1-128 characters of letters, digits, spaces and _.:/=+-@.'],
    [{ tags: { k: 'x'.repeat(300) } }, `Invalid ensureStream option tags["k"]: expected a string of 0-256 characters of letters, digits, spaces and _.:/=+-@; received "${'x'.repeat(61)}..." (300 characters).`],
    [{ tags: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v'])) }, 'Invalid ensureStream option tags: expected an object of at most 50 tags, string to string; received 51 tags.'],
    [{ deviceName: 'a/b' }, 'Invalid ensureStream option deviceName: expected a string of 1-128 characters [a-zA-Z0-9_.-]; received "a/b".'],
  ])('refuses %j', async (override, message) => {
    expect(await invalid({ ...base, streamName: 'valid', ...override })).toBe(message);
  });

  it('refuses a non-object', async () => {
    expect(await invalid('cam1')).toBe('ensureStream options: expected an object with at least streamName; received "cam1".');
  });

  it('refuses malformed credentials with a CredentialsError naming the field', async () => {
    const err = await ensureStream({ ...base, streamName: 'x', credentials: { accessKeyId: 'AKID' } as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsError);
    expect(err).toMatchObject({
      code: 'INVALID_CREDENTIALS',
      message: 'Invalid credentials: secretAccessKey is missing (expected a non-empty string).',
    });
  });

  it('makes no request when options are invalid', async () => {
    await invalid({ ...base, streamName: 'never-created', dataRetentionInHours: -5 });
    await expect(describeStream('never-created')).rejects.toMatchObject({ name: 'ResourceNotFoundException' });
  });
});

describe('credentials and service errors', () => {
  const KEY = { accessKeyId: 'AKIAENSURESTREAMTEST', secretAccessKey: 'ensure/stream+secret' };
  let secured: TestServer;
  beforeAll(async () => {
    secured = await startTestServer({ accessKeys: { [KEY.accessKeyId]: KEY.secretAccessKey } });
  });
  afterAll(() => secured?.close());

  it('the right keys get through (static values and a provider function)', async () => {
    expect((await ensureStream({ streamName: 'sec', endpoint: secured.url, region: 'us-east-1', credentials: KEY })).created).toBe(true);
    const viaProvider = await ensureStream({
      streamName: 'sec',
      endpoint: secured.url,
      region: 'us-east-1',
      credentials: async () => ({ ...KEY, expiration: new Date(Date.now() + 3_600_000) }),
      dataRetentionInHours: 1,
    });
    expect(viaProvider).toMatchObject({ created: false, updated: ['dataRetentionInHours'] });
  });

  it('a wrong secret is ACCESS_DENIED, not retryable, with the service code', async () => {
    const err = await rejection(
      ensureStream({ streamName: 'sec', endpoint: secured.url, region: 'us-east-1', credentials: { ...KEY, secretAccessKey: 'wrong' } }),
    );
    expect(err.code).toBe('ACCESS_DENIED');
    expect(err.retryable).toBe(false);
    expect(err.serviceCode).toBe('InvalidSignatureException');
    expect(err.message).toMatch(/^DescribeStream of stream "sec" failed \(InvalidSignatureException, HTTP 403\): .*signature.* Check the credentials/);
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('an unknown access key is ACCESS_DENIED too', async () => {
    const err = await rejection(
      ensureStream({ streamName: 'sec', endpoint: secured.url, region: 'us-east-1', credentials: { accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'x' } }),
    );
    expect(err).toMatchObject({ code: 'ACCESS_DENIED', retryable: false, serviceCode: 'UnrecognizedClientException' });
  });

  it('a credentials provider that fails surfaces as a retryable CredentialsError', async () => {
    const err = await ensureStream({
      streamName: 'sec',
      endpoint: secured.url,
      region: 'us-east-1',
      credentials: () => Promise.reject(new Error('vault sealed')),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CredentialsError);
    expect(err).toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE', retryable: true });
    expect((err as Error).message).toContain('vault sealed');
  });

  it('an endpoint nobody listens on is a retryable NETWORK_ERROR', async () => {
    const err = await rejection(ensureStream({ ...base, streamName: 'x', endpoint: 'http://127.0.0.1:1' }));
    expect(err.code).toBe('NETWORK_ERROR');
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/^DescribeStream of stream "x" failed: the control plane could not be reached \(ECONNREFUSED\)/);
  });
});

it('public types', () => {
  expectTypeOf(ensureStream).parameter(0).toEqualTypeOf<EnsureStreamOptions>();
  expectTypeOf(ensureStream).returns.resolves.toEqualTypeOf<EnsureStreamResult>();
  expectTypeOf<EnsureStreamResult>().toEqualTypeOf<{ streamARN: string; created: boolean; updated: string[] }>();
  expectTypeOf<StreamConfigError['code']>().toEqualTypeOf<
    | 'INVALID_ARGUMENT'
    | 'STREAM_NOT_FOUND'
    | 'STREAM_NOT_ACTIVE'
    | 'UNTRUSTED_CERTIFICATE'
    | 'ACCESS_DENIED'
    | 'KMS_KEY_MISMATCH'
    | 'LIMIT_EXCEEDED'
    | 'THROTTLED'
    | 'CONFLICT'
    | 'NETWORK_ERROR'
    | 'SERVICE_ERROR'
  >();
});
