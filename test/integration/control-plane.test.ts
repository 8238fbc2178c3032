/**
 * The control plane driven by the real AWS SDK v3 client against a real openkvs server on
 * 127.0.0.1 with a real SQLite file: every operation's success path as the SDK decodes it, the
 * validation and service errors, and persistence across a restart.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CreateStreamCommand,
  DeleteStreamCommand,
  DescribeSignalingChannelCommand,
  DescribeStreamCommand,
  GetDataEndpointCommand,
  KinesisVideoClient,
  ListStreamsCommand,
  ListTagsForResourceCommand,
  ListTagsForStreamCommand,
  TagResourceCommand,
  TagStreamCommand,
  UntagResourceCommand,
  UntagStreamCommand,
  UpdateDataRetentionCommand,
  UpdateStreamCommand,
  paginateListStreams,
  type APIName,
  type StreamInfo,
} from '@aws-sdk/client-kinesis-video';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StreamCatalog } from '../../lib/service/control-plane/stream-catalog.js';
import { startServer, type OpenKvsServer } from '../../lib/service/server.js';
import { openDatabase } from '../../lib/service/storage/database.js';

const REGION = 'us-east-1';
const ACCOUNT = '000000000000';
const NOT_FOUND = 'The requested stream is not found or not active.';
const ARN_PATTERN = /^arn:aws:kinesisvideo:us-east-1:000000000000:stream\/([a-zA-Z0-9_.-]+)\/(\d+)$/;

let dataDir: string;
let server: OpenKvsServer;
let kv: KinesisVideoClient;

const clientFor = (endpoint: string) =>
  new KinesisVideoClient({
    endpoint,
    region: REGION,
    credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
    maxAttempts: 1,
  });

/**
 * A client whose next request goes out with `body` as its JSON body instead of the serialized
 * input: the SDK only serializes modelled members, so this is how unknown members, wrong types
 * and a StreamName on DeleteStream reach the server — still signed and decoded by the SDK.
 */
function clientWithBody(body: object): KinesisVideoClient {
  const client = clientFor(server.url);
  client.middlewareStack.add(
    (next) => async (args) => {
      const request = args.request as { body?: unknown; headers: Record<string, string> };
      request.body = JSON.stringify(body);
      request.headers['content-length'] = String(Buffer.byteLength(request.body as string));
      return next(args);
    },
    { step: 'build', priority: 'high' },
  );
  return client;
}

/** A POST without the SDK, for what the SDK cannot send. */
async function post(operation: string, body: string) {
  const res = await fetch(`${server.url}/${operation}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  return { status: res.status, errorType: res.headers.get('x-amzn-errortype'), body: (await res.json()) as unknown };
}

const describeStream = async (name: string): Promise<StreamInfo> =>
  (await kv.send(new DescribeStreamCommand({ StreamName: name }))).StreamInfo!;

const createStream = async (name: string, retention = 0): Promise<string> =>
  (await kv.send(new CreateStreamCommand({ StreamName: name, DataRetentionInHours: retention }))).StreamARN!;

/** Asserts a rejection with this exception name and a message containing `text`. */
const rejects = (promise: Promise<unknown>, name: string, text: string | RegExp) =>
  expect(promise).rejects.toMatchObject({
    name,
    message: typeof text === 'string' ? expect.stringContaining(text) : expect.stringMatching(text),
  });

beforeAll(async () => {
  dataDir = mkdtempSync(path.join(tmpdir(), 'openkvs-control-plane-'));
  server = await startServer({ port: 0, dataDir, logLevel: 'silent' });
  kv = clientFor(server.url);
});

afterAll(async () => {
  kv?.destroy();
  await server?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('CreateStream and DescribeStream', () => {
  it('creates a stream with every member and describes it by name and by ARN', async () => {
    const before = Date.now();
    const { StreamARN } = await kv.send(
      new CreateStreamCommand({
        StreamName: 'full-stream',
        DeviceName: 'camera-1',
        MediaType: 'video/h264,audio/aac',
        DataRetentionInHours: 24,
        Tags: { env: 'test', 'team:owner': 'video ops' },
        StreamStorageConfiguration: { DefaultStorageTier: 'WARM' },
      }),
    );
    const match = ARN_PATTERN.exec(StreamARN!);
    expect(match?.[1]).toBe('full-stream');
    const creationMs = Number(match![2]);
    expect(creationMs).toBeGreaterThanOrEqual(before);
    expect(creationMs).toBeLessThanOrEqual(Date.now());

    const info = await describeStream('full-stream');
    expect(info).toEqual({
      DeviceName: 'camera-1',
      StreamName: 'full-stream',
      StreamARN,
      MediaType: 'video/h264,audio/aac',
      KmsKeyId: `arn:aws:kms:${REGION}:${ACCOUNT}:alias/aws/kinesisvideo`,
      Version: expect.stringMatching(/^[a-zA-Z0-9]{20}$/),
      Status: 'ACTIVE',
      CreationTime: new Date(creationMs),
      DataRetentionInHours: 24,
    });
    expect(info.CreationTime).toBeInstanceOf(Date);

    const byArn = await kv.send(new DescribeStreamCommand({ StreamARN }));
    expect(byArn.StreamInfo).toEqual(info);
    const both = await kv.send(new DescribeStreamCommand({ StreamARN, StreamName: 'full-stream' }));
    expect(both.StreamInfo).toEqual(info);
    const tags = await kv.send(new ListTagsForStreamCommand({ StreamName: 'full-stream' }));
    expect(tags.Tags).toEqual({ env: 'test', 'team:owner': 'video ops' });
  });

  it('defaults retention to 0, omits unset members and keeps a given KMS key', async () => {
    await kv.send(new CreateStreamCommand({ StreamName: 'minimal-stream' }));
    const info = await describeStream('minimal-stream');
    expect(info.DataRetentionInHours).toBe(0);
    expect(info).not.toHaveProperty('DeviceName');
    expect(info).not.toHaveProperty('MediaType');

    const kmsKeyId = 'arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab';
    await kv.send(new CreateStreamCommand({ StreamName: 'kms-stream', KmsKeyId: kmsKeyId }));
    expect((await describeStream('kms-stream')).KmsKeyId).toBe(kmsKeyId);
  });

  it('puts timestamps on the wire as epoch-seconds numbers and leaves out absent members', async () => {
    const res = await post('describeStream', JSON.stringify({ StreamName: 'minimal-stream' }));
    expect(res.status).toBe(200);
    const info = (res.body as { StreamInfo: Record<string, unknown> }).StreamInfo;
    expect(typeof info.CreationTime).toBe('number');
    expect(Object.keys(info).sort()).toEqual(
      ['CreationTime', 'DataRetentionInHours', 'KmsKeyId', 'Status', 'StreamARN', 'StreamName', 'Version'].sort(),
    );
  });

  it('refuses a duplicate name with ResourceInUseException', async () => {
    await createStream('dup-stream');
    await rejects(createStream('dup-stream'), 'ResourceInUseException', 'dup-stream');
  });

  it('lets exactly one of several concurrent creates of a name succeed', async () => {
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => createStream('race-stream')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    for (const r of results.filter((r) => r.status === 'rejected')) {
      expect((r as PromiseRejectedResult).reason).toMatchObject({ name: 'ResourceInUseException' });
    }
  });

  it('answers a missing stream with 404 ResourceNotFoundException and the service message', async () => {
    const err = await kv.send(new DescribeStreamCommand({ StreamName: 'no-such-stream' })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ResourceNotFoundException', message: NOT_FOUND, $fault: 'client' });
    expect((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(404);
    await rejects(
      kv.send(new DescribeStreamCommand({ StreamARN: `arn:aws:kinesisvideo:${REGION}:${ACCOUNT}:stream/no-such-stream/1` })),
      'ResourceNotFoundException',
      NOT_FOUND,
    );
  });

  it('requires a stream reference, and name and ARN must agree', async () => {
    await rejects(kv.send(new DescribeStreamCommand({})), 'InvalidArgumentException', 'StreamName or StreamARN');
    const arn = (await describeStream('full-stream')).StreamARN!;
    await rejects(
      kv.send(new DescribeStreamCommand({ StreamARN: arn, StreamName: 'minimal-stream' })),
      'InvalidArgumentException',
      'StreamARN',
    );
  });

  it('validates every CreateStream member and names the field', async () => {
    const cases: Array<[object, string]> = [
      [{}, 'StreamName'],
      [{ StreamName: '' }, 'StreamName'],
      [{ StreamName: 'bad name!' }, 'StreamName'],
      [{ StreamName: 'x'.repeat(257) }, 'StreamName'],
      [{ StreamName: 42 }, 'StreamName'],
      [{ StreamName: 'ok', DeviceName: 'bad device' }, 'DeviceName'],
      [{ StreamName: 'ok', MediaType: 'h264' }, 'MediaType'],
      [{ StreamName: 'ok', KmsKeyId: '' }, 'KmsKeyId'],
      [{ StreamName: 'ok', DataRetentionInHours: -1 }, 'DataRetentionInHours'],
      [{ StreamName: 'ok', DataRetentionInHours: 87_601 }, 'DataRetentionInHours'],
      [{ StreamName: 'ok', DataRetentionInHours: 1.5 }, 'DataRetentionInHours'],
      [{ StreamName: 'ok', DataRetentionInHours: '24' }, 'DataRetentionInHours'],
      [{ StreamName: 'ok', Tags: { 'bad#key': 'v' } }, 'Tags'],
      [{ StreamName: 'ok', Tags: { k: 'v'.repeat(257) } }, 'Tags.k'],
      [{ StreamName: 'ok', StreamStorageConfiguration: { DefaultStorageTier: 'COLD' } }, 'StreamStorageConfiguration.DefaultStorageTier'],
      [{ StreamName: 'ok', StreamStorageConfiguration: {} }, 'StreamStorageConfiguration.DefaultStorageTier'],
      [{ StreamName: 'ok', Shards: 1 }, 'Shards'],
      [{ StreamName: 'ok', StreamStorageConfiguration: { DefaultStorageTier: 'HOT', Extra: 1 } }, 'Extra'],
    ];
    for (const [body, field] of cases) {
      await rejects(
        clientWithBody(body).send(new CreateStreamCommand({ StreamName: 'ignored' })),
        'InvalidArgumentException',
        field,
      );
    }
    await rejects(describeStream('ok'), 'ResourceNotFoundException', NOT_FOUND);
  });

  it('rejects more than 50 tags at creation', async () => {
    const Tags = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, `v${i}`]));
    await rejects(
      kv.send(new CreateStreamCommand({ StreamName: 'too-many-tags', Tags })),
      'TagsPerResourceExceededLimitException',
      '50',
    );
    await rejects(describeStream('too-many-tags'), 'ResourceNotFoundException', NOT_FOUND);
  });
});

describe('ListStreams', () => {
  const names = ['page-a', 'page-b', 'page-c', 'page-d', 'page-e'];

  beforeAll(async () => {
    for (const name of [...names].reverse()) await createStream(name);
  });

  it('filters by name prefix, sorted by name, without a NextToken when complete', async () => {
    const out = await kv.send(
      new ListStreamsCommand({ StreamNameCondition: { ComparisonOperator: 'BEGINS_WITH', ComparisonValue: 'page-' } }),
    );
    expect(out.StreamInfoList!.map((s) => s.StreamName)).toEqual(names);
    expect(out.NextToken).toBeUndefined();
    expect(out.StreamInfoList![0]!.CreationTime).toBeInstanceOf(Date);
    expect(out.StreamInfoList![0]).toEqual(await describeStream('page-a'));
  });

  it('lists everything by default', async () => {
    const out = await kv.send(new ListStreamsCommand({}));
    const listed = out.StreamInfoList!.map((s) => s.StreamName!);
    expect(listed).toEqual([...listed].sort());
    expect(listed).toEqual(expect.arrayContaining([...names, 'full-stream', 'minimal-stream']));
    expect(out.NextToken).toBeUndefined();
  });

  it('returns a NextToken only when truncated and pages with paginateListStreams', async () => {
    const first = await kv.send(
      new ListStreamsCommand({ MaxResults: 2, StreamNameCondition: { ComparisonValue: 'page-' } }),
    );
    expect(first.StreamInfoList!.map((s) => s.StreamName)).toEqual(['page-a', 'page-b']);
    expect(first.NextToken).toMatch(/^[a-zA-Z0-9+/=]+$/);

    const pages: string[][] = [];
    const tokens: Array<string | undefined> = [];
    for await (const page of paginateListStreams(
      { client: kv, pageSize: 2 },
      { StreamNameCondition: { ComparisonOperator: 'BEGINS_WITH', ComparisonValue: 'page-' } },
    )) {
      pages.push(page.StreamInfoList!.map((s) => s.StreamName!));
      tokens.push(page.NextToken);
    }
    expect(pages).toEqual([['page-a', 'page-b'], ['page-c', 'page-d'], ['page-e']]);
    expect(tokens[2]).toBeUndefined();

    // Exactly a full last page: no NextToken either.
    const exact = await kv.send(
      new ListStreamsCommand({ MaxResults: 5, StreamNameCondition: { ComparisonValue: 'page-' } }),
    );
    expect(exact.StreamInfoList).toHaveLength(5);
    expect(exact.NextToken).toBeUndefined();
  });

  it('validates its members', async () => {
    await rejects(kv.send(new ListStreamsCommand({ MaxResults: 0 })), 'InvalidArgumentException', 'MaxResults');
    await rejects(kv.send(new ListStreamsCommand({ MaxResults: 10_001 })), 'InvalidArgumentException', 'MaxResults');
    await rejects(kv.send(new ListStreamsCommand({ NextToken: 'not a token!' })), 'InvalidArgumentException', 'NextToken');
    await rejects(kv.send(new ListStreamsCommand({ NextToken: 'AAAA' })), 'InvalidArgumentException', 'NextToken');
    await rejects(
      clientWithBody({ StreamNameCondition: { ComparisonOperator: 'CONTAINS', ComparisonValue: 'a' } }).send(
        new ListStreamsCommand({}),
      ),
      'InvalidArgumentException',
      'StreamNameCondition.ComparisonOperator',
    );
    await rejects(
      clientWithBody({ Limit: 3 }).send(new ListStreamsCommand({})),
      'InvalidArgumentException',
      'Limit',
    );
  });
});

describe('UpdateStream and UpdateDataRetention', () => {
  it('updates device name and media type and gives a new version', async () => {
    await kv.send(new CreateStreamCommand({ StreamName: 'upd-stream', DeviceName: 'dev1', MediaType: 'video/h264' }));
    const before = await describeStream('upd-stream');
    await kv.send(
      new UpdateStreamCommand({ StreamName: 'upd-stream', CurrentVersion: before.Version, DeviceName: 'dev2', MediaType: 'video/h265' }),
    );
    const after = await describeStream('upd-stream');
    expect(after).toMatchObject({ DeviceName: 'dev2', MediaType: 'video/h265', Status: 'ACTIVE' });
    expect(after.Version).toMatch(/^[a-zA-Z0-9]{20}$/);
    expect(after.Version).not.toBe(before.Version);
    expect(after.CreationTime).toEqual(before.CreationTime);

    // Omitted members are left unchanged; the ARN works as the reference too.
    await kv.send(new UpdateStreamCommand({ StreamARN: after.StreamARN, CurrentVersion: after.Version, MediaType: 'video/h264' }));
    expect(await describeStream('upd-stream')).toMatchObject({ DeviceName: 'dev2', MediaType: 'video/h264' });
  });

  it('requires the current version', async () => {
    const { Version } = await describeStream('upd-stream');
    await rejects(
      kv.send(new UpdateStreamCommand({ StreamName: 'upd-stream', CurrentVersion: undefined, DeviceName: 'x' })),
      'InvalidArgumentException',
      'CurrentVersion',
    );
    await rejects(
      kv.send(new UpdateStreamCommand({ StreamName: 'upd-stream', CurrentVersion: 'staleVersion0000000', DeviceName: 'x' })),
      'VersionMismatchException',
      'version',
    );
    await rejects(
      kv.send(new UpdateStreamCommand({ StreamName: 'no-such-stream', CurrentVersion: Version })),
      'ResourceNotFoundException',
      NOT_FOUND,
    );
    expect((await describeStream('upd-stream')).Version).toBe(Version);
  });

  it('increases and decreases retention within 0..87600 hours', async () => {
    await createStream('ret-stream', 24);
    const change = async (Operation: 'INCREASE_DATA_RETENTION' | 'DECREASE_DATA_RETENTION', hours: number) => {
      const { Version } = await describeStream('ret-stream');
      await kv.send(
        new UpdateDataRetentionCommand({ StreamName: 'ret-stream', CurrentVersion: Version, Operation, DataRetentionChangeInHours: hours }),
      );
      return describeStream('ret-stream');
    };

    const v0 = (await describeStream('ret-stream')).Version;
    const increased = await change('INCREASE_DATA_RETENTION', 12);
    expect(increased.DataRetentionInHours).toBe(36);
    expect(increased.Version).not.toBe(v0);
    expect((await change('DECREASE_DATA_RETENTION', 36)).DataRetentionInHours).toBe(0);
    expect((await change('INCREASE_DATA_RETENTION', 87_600)).DataRetentionInHours).toBe(87_600);

    const { Version } = await describeStream('ret-stream');
    await rejects(change('INCREASE_DATA_RETENTION', 1), 'InvalidArgumentException', '87600');
    await rejects(change('DECREASE_DATA_RETENTION', 87_601), 'InvalidArgumentException', 'DataRetentionChangeInHours');
    expect((await describeStream('ret-stream')).Version).toBe(Version);
  });

  it('validates UpdateDataRetention members and the version', async () => {
    const { Version } = await describeStream('ret-stream');
    const base = { StreamName: 'ret-stream', CurrentVersion: Version, Operation: 'DECREASE_DATA_RETENTION', DataRetentionChangeInHours: 1 };
    const cases: Array<[object, string]> = [
      [{ ...base, DataRetentionChangeInHours: 0 }, 'DataRetentionChangeInHours'],
      [{ ...base, DataRetentionChangeInHours: undefined }, 'DataRetentionChangeInHours'],
      [{ ...base, Operation: 'SET_DATA_RETENTION' }, 'Operation'],
      [{ ...base, CurrentVersion: undefined }, 'CurrentVersion'],
      [{ ...base, CurrentVersion: 'not-alphanumeric' }, 'CurrentVersion'],
      [{ ...base, StreamName: undefined }, 'StreamName or StreamARN'],
    ];
    for (const [body, field] of cases) {
      await rejects(
        clientWithBody(body).send(
          new UpdateDataRetentionCommand({ CurrentVersion: 'x', Operation: 'INCREASE_DATA_RETENTION', DataRetentionChangeInHours: 1 }),
        ),
        'InvalidArgumentException',
        field,
      );
    }
    await rejects(
      kv.send(
        new UpdateDataRetentionCommand({
          StreamName: 'ret-stream',
          CurrentVersion: 'abcdefghijklmnopqrst',
          Operation: 'DECREASE_DATA_RETENTION',
          DataRetentionChangeInHours: 1,
        }),
      ),
      'VersionMismatchException',
      'abcdefghijklmnopqrst',
    );
  });
});

describe('tags', () => {
  beforeAll(async () => {
    await createStream('tag-stream');
  });

  it('TagStream adds and overwrites, UntagStream ignores unknown keys, tags leave the version alone', async () => {
    const { Version, StreamARN } = await describeStream('tag-stream');
    await kv.send(new TagStreamCommand({ StreamName: 'tag-stream', Tags: { a: '1', b: '2' } }));
    await kv.send(new TagStreamCommand({ StreamARN, Tags: { b: 'two', 'c/d': '' } }));
    expect((await kv.send(new ListTagsForStreamCommand({ StreamARN }))).Tags).toEqual({ a: '1', b: 'two', 'c/d': '' });

    await kv.send(new UntagStreamCommand({ StreamName: 'tag-stream', TagKeyList: ['a', 'not-there'] }));
    const listed = await kv.send(new ListTagsForStreamCommand({ StreamName: 'tag-stream' }));
    expect(listed.Tags).toEqual({ b: 'two', 'c/d': '' });
    expect(listed.NextToken).toBeUndefined();
    expect((await describeStream('tag-stream')).Version).toBe(Version);
  });

  it('enforces 50 tags per stream', async () => {
    const fill = Object.fromEntries(Array.from({ length: 48 }, (_, i) => [`fill${i}`, 'x']));
    await kv.send(new TagStreamCommand({ StreamName: 'tag-stream', Tags: fill })); // 2 + 48 = 50
    await kv.send(new TagStreamCommand({ StreamName: 'tag-stream', Tags: { b: 'overwritten' } })); // still 50
    await rejects(
      kv.send(new TagStreamCommand({ StreamName: 'tag-stream', Tags: { one: 'too many' } })),
      'TagsPerResourceExceededLimitException',
      '51',
    );
    const tags = (await kv.send(new ListTagsForStreamCommand({ StreamName: 'tag-stream' }))).Tags!;
    expect(Object.keys(tags)).toHaveLength(50);
    expect(tags.b).toBe('overwritten');
    await kv.send(new UntagStreamCommand({ StreamName: 'tag-stream', TagKeyList: Object.keys(fill) }));
  });

  it('validates tag keys, values and lists', async () => {
    const cases: Array<[object, string]> = [
      [{ StreamName: 'tag-stream', Tags: {} }, 'Tags'],
      [{ StreamName: 'tag-stream' }, 'Tags'],
      [{ StreamName: 'tag-stream', Tags: { ['k'.repeat(129)]: 'v' } }, 'Tags'],
      [{ StreamName: 'tag-stream', Tags: { 'semi;colon': 'v' } }, 'Tags'],
      [{ StreamName: 'tag-stream', Tags: { k: 'bad\u0000value' } }, 'Tags.k'],
      [{ StreamName: 'tag-stream', Tags: { k: 1 } }, 'Tags.k'],
    ];
    for (const [body, field] of cases) {
      await rejects(clientWithBody(body).send(new TagStreamCommand({ Tags: {} })), 'InvalidArgumentException', field);
    }
    await rejects(
      kv.send(new UntagStreamCommand({ StreamName: 'tag-stream', TagKeyList: [] })),
      'InvalidArgumentException',
      'TagKeyList',
    );
    await rejects(
      kv.send(new UntagStreamCommand({ StreamName: 'tag-stream', TagKeyList: [''] })),
      'InvalidArgumentException',
      'TagKeyList.0',
    );
    await rejects(
      kv.send(new TagStreamCommand({ StreamName: 'no-such-stream', Tags: { a: '1' } })),
      'ResourceNotFoundException',
      NOT_FOUND,
    );
    await rejects(kv.send(new ListTagsForStreamCommand({})), 'InvalidArgumentException', 'StreamName or StreamARN');
  });

  it('TagResource, UntagResource and ListTagsForResource work on a stream ARN', async () => {
    const ResourceARN = (await createStream('res-stream'))!;
    await kv.send(
      new TagResourceCommand({ ResourceARN, Tags: [{ Key: 'x', Value: '1' }, { Key: 'y', Value: '2' }] }),
    );
    await kv.send(new TagResourceCommand({ ResourceARN, Tags: [{ Key: 'y', Value: 'two' }] }));
    expect((await kv.send(new ListTagsForResourceCommand({ ResourceARN }))).Tags).toEqual({ x: '1', y: 'two' });
    await kv.send(new UntagResourceCommand({ ResourceARN, TagKeyList: ['x', 'nope'] }));
    expect((await kv.send(new ListTagsForResourceCommand({ ResourceARN }))).Tags).toEqual({ y: 'two' });
    expect((await kv.send(new ListTagsForStreamCommand({ StreamARN: ResourceARN }))).Tags).toEqual({ y: 'two' });

    const tooMany = Array.from({ length: 50 }, (_, i) => ({ Key: `k${i}`, Value: 'v' }));
    await rejects(
      kv.send(new TagResourceCommand({ ResourceARN, Tags: tooMany })),
      'TagsPerResourceExceededLimitException',
      '51',
    );
    await rejects(
      kv.send(new TagResourceCommand({ ResourceARN, Tags: [{ Key: 'k', Value: undefined }] })),
      'InvalidArgumentException',
      'Tags.0.Value',
    );
    await rejects(
      kv.send(new TagResourceCommand({ ResourceARN: 'not-an-arn', Tags: [{ Key: 'k', Value: 'v' }] })),
      'InvalidArgumentException',
      'ResourceARN',
    );
    await rejects(
      kv.send(new ListTagsForResourceCommand({ ResourceARN: ResourceARN.replace(/\/\d+$/, '/1') })),
      'ResourceNotFoundException',
      NOT_FOUND,
    );
    await rejects(
      kv.send(new UntagResourceCommand({ ResourceARN, TagKeyList: undefined })),
      'InvalidArgumentException',
      'TagKeyList',
    );
  });
});

describe('GetDataEndpoint', () => {
  const apiNames: APIName[] = [
    'PUT_MEDIA',
    'GET_MEDIA',
    'LIST_FRAGMENTS',
    'GET_MEDIA_FOR_FRAGMENT_LIST',
    'GET_HLS_STREAMING_SESSION_URL',
    'GET_DASH_STREAMING_SESSION_URL',
    'GET_CLIP',
    'GET_IMAGES',
  ];

  it('returns the server URL for every API name', async () => {
    const StreamARN = await createStream('endpoint-stream');
    for (const APIName of apiNames) {
      const out = await kv.send(new GetDataEndpointCommand({ StreamName: 'endpoint-stream', APIName }));
      expect(out.DataEndpoint).toBe(server.url);
    }
    expect((await kv.send(new GetDataEndpointCommand({ StreamARN, APIName: 'GET_MEDIA' }))).DataEndpoint).toBe(server.url);
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  });

  /** GetDataEndpoint as a client that addressed the server by `host` (a Host header) sees it. */
  async function endpointFor(host: string, url = server.url): Promise<string> {
    const body = JSON.stringify({ StreamName: 'endpoint-stream', APIName: 'PUT_MEDIA' });
    const res = await new Promise<string>((resolve, reject) => {
      const req = http.request(`${url}/getDataEndpoint`, { method: 'POST', headers: { host, 'content-type': 'application/json' } }, (r) => {
        let text = '';
        r.on('data', (d: Buffer) => (text += d.toString()));
        r.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end(body);
    });
    return (JSON.parse(res) as { DataEndpoint: string }).DataEndpoint;
  }

  it('answers with the address the client used: a camera on the network is not sent to 127.0.0.1', async () => {
    const port = new URL(server.url).port;
    // kvssink and the AWS producer SDKs send Host without the port.
    expect(await endpointFor('192.168.7.7')).toBe(`http://192.168.7.7:${port}`);
    expect(await endpointFor('camera-gw.local:8443')).toBe('http://camera-gw.local:8443');
    expect(await endpointFor('[fd00::7]')).toBe(`http://[fd00::7]:${port}`);
    // Anything that is not a plain host name gives the listening address.
    expect(await endpointFor('evil.example/path?x')).toBe(server.url);
  });

  it('answers with publicUrl, when configured, whatever the Host (a server behind a proxy)', async () => {
    const behind = await startServer({ port: 0, logLevel: 'silent', dataDir: mkdtempSync(path.join(tmpdir(), 'openkvs-public-')), publicUrl: 'https://kvs.example.com/' });
    try {
      await clientFor(behind.url).send(new CreateStreamCommand({ StreamName: 'endpoint-stream', DataRetentionInHours: 1 }));
      expect(await endpointFor('127.0.0.1', behind.url)).toBe('https://kvs.example.com');
    } finally {
      await behind.close();
    }
    await expect(startServer({ port: 0, logLevel: 'silent', dataDir: mkdtempSync(path.join(tmpdir(), 'openkvs-public-')), publicUrl: 'kvs.example.com' })).rejects.toThrow(/publicUrl "kvs.example.com" is not a URL/);
  });

  it('requires a valid APIName and an existing stream', async () => {
    await rejects(
      kv.send(new GetDataEndpointCommand({ StreamName: 'endpoint-stream', APIName: 'GET_EVERYTHING' as APIName })),
      'InvalidArgumentException',
      'APIName',
    );
    await rejects(
      kv.send(new GetDataEndpointCommand({ StreamName: 'endpoint-stream', APIName: undefined })),
      'InvalidArgumentException',
      'APIName',
    );
    await rejects(
      kv.send(new GetDataEndpointCommand({ StreamName: 'no-such-stream', APIName: 'GET_MEDIA' })),
      'ResourceNotFoundException',
      NOT_FOUND,
    );
  });
});

describe('DeleteStream', () => {
  it('deletes by ARN, checking CurrentVersion when given', async () => {
    const StreamARN = await createStream('del-stream');
    const { Version } = await describeStream('del-stream');
    await rejects(
      kv.send(new DeleteStreamCommand({ StreamARN, CurrentVersion: 'staleVersion0000000' })),
      'VersionMismatchException',
      'version',
    );
    await kv.send(new DeleteStreamCommand({ StreamARN, CurrentVersion: Version }));
    await rejects(describeStream('del-stream'), 'ResourceNotFoundException', NOT_FOUND);
    await rejects(kv.send(new DeleteStreamCommand({ StreamARN })), 'ResourceNotFoundException', NOT_FOUND);

    const again = await createStream('del-stream');
    await kv.send(new DeleteStreamCommand({ StreamARN: again }));
    await rejects(describeStream('del-stream'), 'ResourceNotFoundException', NOT_FOUND);
  });

  it('does not delete a re-created stream through the ARN of its predecessor', async () => {
    const oldArn = await createStream('phoenix');
    await kv.send(new DeleteStreamCommand({ StreamARN: oldArn }));
    const newArn = await createStream('phoenix');
    expect(newArn).not.toBe(oldArn);
    expect(ARN_PATTERN.exec(newArn)![1]).toBe('phoenix');

    await rejects(kv.send(new DeleteStreamCommand({ StreamARN: oldArn })), 'ResourceNotFoundException', NOT_FOUND);
    await rejects(kv.send(new DescribeStreamCommand({ StreamARN: oldArn })), 'ResourceNotFoundException', NOT_FOUND);
    expect((await describeStream('phoenix')).StreamARN).toBe(newArn);
  });

  it('takes the ARN only', async () => {
    await rejects(kv.send(new DeleteStreamCommand({ StreamARN: undefined })), 'InvalidArgumentException', 'StreamARN');
    await rejects(
      clientWithBody({ StreamName: 'phoenix' }).send(new DeleteStreamCommand({ StreamARN: 'x' })),
      'InvalidArgumentException',
      'StreamARN',
    );
    const { StreamARN } = await describeStream('phoenix');
    await rejects(
      clientWithBody({ StreamARN, StreamName: 'phoenix' }).send(new DeleteStreamCommand({ StreamARN })),
      'InvalidArgumentException',
      'Unknown field: StreamName',
    );
    await rejects(
      kv.send(new DeleteStreamCommand({ StreamARN: 'arn:aws:kinesisvideo:us-east-1:000000000000:stream/phoenix' })),
      'InvalidArgumentException',
      'StreamARN',
    );
    expect(await describeStream('phoenix')).toBeDefined();
  });
});

describe('protocol errors', () => {
  it('answers a malformed JSON body with 400 InvalidArgumentException', async () => {
    const res = await post('describeStream', '{"StreamName": ');
    expect(res.status).toBe(400);
    expect(res.errorType).toBe('InvalidArgumentException');
    expect(res.body).toEqual({ Message: expect.stringContaining('JSON') });
  });

  it('answers a body that is not a JSON object with InvalidArgumentException', async () => {
    const res = await post('describeStream', '["StreamName"]');
    expect(res.status).toBe(400);
    expect(res.errorType).toBe('InvalidArgumentException');
  });

  it('answers an unknown operation with 404 UnknownOperationException', async () => {
    const res = await post('frobnicateStream', '{}');
    expect(res.status).toBe(404);
    expect(res.errorType).toBe('UnknownOperationException');
    expect(res.body).toEqual({ Message: expect.stringContaining('frobnicateStream') });

    const err = await kv.send(new DescribeSignalingChannelCommand({ ChannelName: 'c' })).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'UnknownOperationException', $fault: 'client' });
    expect((err as { $metadata: { httpStatusCode: number } }).$metadata.httpStatusCode).toBe(404);
  });

  it('sends a request id with every response', async () => {
    const out = await kv.send(new ListStreamsCommand({ MaxResults: 1 }));
    expect(out.$metadata.requestId).toMatch(/^[0-9a-f-]{36}$/);
  });
});

describe('persistence', () => {
  it('keeps streams, versions and tags across a restart on the same data directory', async () => {
    const before = (await kv.send(new ListStreamsCommand({}))).StreamInfoList!;
    const tagsBefore = (await kv.send(new ListTagsForStreamCommand({ StreamName: 'full-stream' }))).Tags;
    expect(before.length).toBeGreaterThan(5);

    kv.destroy();
    await server.close();
    server = await startServer({ port: 0, dataDir, logLevel: 'silent' });
    kv = clientFor(server.url);

    expect((await kv.send(new ListStreamsCommand({}))).StreamInfoList).toEqual(before);
    expect((await kv.send(new ListTagsForStreamCommand({ StreamName: 'full-stream' }))).Tags).toEqual(tagsBefore);
    // A name deleted before the restart is free, and the new ARN differs from every older one.
    const arn = await createStream('del-stream');
    expect(before.map((s) => s.StreamARN)).not.toContain(arn);
    await rejects(createStream('full-stream'), 'ResourceInUseException', 'full-stream');
  });
});

describe('StreamCatalog', () => {
  const opts = { region: REGION, accountId: ACCOUNT };
  let file: string;
  let catalog: StreamCatalog;
  let db: ReturnType<typeof openDatabase>;

  beforeAll(() => {
    file = path.join(dataDir, 'catalog-unit.sqlite');
    db = openDatabase(file);
    catalog = new StreamCatalog(db, opts);
  });

  afterAll(() => db.close());

  it('serves byId from its cache until a write replaces the record', () => {
    const created = catalog.create({ name: 'unit-a', retentionHours: 1 });
    const first = catalog.byId(created.id)!;
    expect(catalog.byId(created.id)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);

    const updated = catalog.update(created.id, first.version, { retentionHours: 2 });
    expect(catalog.byId(created.id)).toBe(updated);
    expect(updated).toMatchObject({ retentionHours: 2, name: 'unit-a', arn: first.arn });
    expect(updated.version).not.toBe(first.version);
    expect(() => catalog.update(created.id, first.version, {})).toThrow(
      expect.objectContaining({ code: 'VersionMismatchException' }),
    );

    const tagged = catalog.setTags(created.id, { k: 'v' });
    expect(catalog.byId(created.id)).toBe(tagged);
    expect(tagged).toMatchObject({ tags: { k: 'v' }, version: updated.version });
    expect(catalog.byName('unit-a')).toEqual(tagged);
    expect(catalog.byArn(first.arn)).toEqual(tagged);
  });

  it('awaits onDelete listeners while the stream is DELETING, and removes it even if one fails', async () => {
    const seen: Array<[number, string | undefined]> = [];
    catalog.onDelete(async (id) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      seen.push([id, catalog.byId(id)?.status]);
      if (catalog.byId(id)?.name === 'unit-fail') throw new Error('listener failed');
    });
    const a = catalog.byName('unit-a')!;
    await catalog.delete(a.id);
    expect(seen).toEqual([[a.id, 'DELETING']]);
    expect(catalog.byId(a.id)).toBeUndefined();

    const f = catalog.create({ name: 'unit-fail', retentionHours: 0 });
    await expect(catalog.delete(f.id)).rejects.toThrow('listener failed');
    expect(catalog.byName('unit-fail')).toBeUndefined();
  });

  it('gives creation times (and so ARNs) that never repeat, and drops interrupted deletes on open', () => {
    const arns = Array.from({ length: 5 }, (_, i) => catalog.create({ name: `unit-burst-${i}`, retentionHours: 0 }));
    const times = arns.map((s) => s.creationMs);
    expect(new Set(times).size).toBe(5);

    db.prepare("UPDATE streams SET status = 'DELETING' WHERE name = 'unit-burst-0'").run();
    const reopened = new StreamCatalog(db, opts);
    expect(reopened.byName('unit-burst-0')).toBeUndefined();
    expect(reopened.list().map((s) => s.name)).toEqual(['unit-burst-1', 'unit-burst-2', 'unit-burst-3', 'unit-burst-4']);
    expect(reopened.create({ name: 'unit-later', retentionHours: 0 }).creationMs).toBeGreaterThan(Math.max(...times));
  });
});
