/**
 * Fuzzing the server with fast-check: mutated PutMedia bodies, arbitrary JSON (and non-JSON)
 * bodies for every API operation, and arbitrary headers and signatures. Every answer must be an
 * error the SDK can name (4xx with x-amzn-errortype, or ERROR acks with a 4xxx ErrorId), never a
 * 500, a hang or a crash; afterwards the server still serves, and what it stored is readable.
 *
 * Runs are reproducible: FUZZ_SEED picks the seed (default fixed), FUZZ_RUNS scales the number
 * of cases (default 1 = the CI size). A failure prints the seed and the shrunk input.
 */
import http from 'node:http';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis-video';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MkvFragments } from '../../lib/mkv/fragments.js';
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { archiveOperations } from '../../lib/service/archive/operations.js';
import { controlPlaneOperations } from '../../lib/service/control-plane/operations.js';
import { playbackOperations } from '../../lib/service/playback/index.js';
import { h264Fragments } from '../helpers/media.js';
import { acksOf, body, sendBody } from '../helpers/producer.js';
import { credentials, listAllFragments, readFragments, startTestServer, type TestServer } from '../helpers/server.js';

const SEED = Number(process.env.FUZZ_SEED ?? 20261206);
const SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const runs = (n: number) => ({ seed: SEED, numRuns: Math.max(1, Math.round(n * SCALE)) });

const OPERATIONS = [
  ...Object.keys(controlPlaneOperations),
  ...Object.keys(archiveOperations.json),
  ...Object.keys(archiveOperations.streaming),
  ...Object.keys(playbackOperations.json),
  ...Object.keys(playbackOperations.streaming),
  'getMedia',
  'issueCredentials',
];

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request; a 200 from a streaming operation is answered as soon as its headers arrive. */
function request(url: string, path: string, headers: Record<string, string>, payload: Buffer | string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, agent: false });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no answer within 15 s to ${path}`));
    }, 15_000);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      const finish = () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      };
      if (res.statusCode === 200 && path !== '/putMedia') {
        finish();
        res.destroy();
        return;
      }
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', finish);
      res.on('error', finish);
    });
    req.end(payload);
  });
}

/** An error answer the AWS SDK maps to a named exception. */
function expectNamedError(a: Answer, what: string) {
  expect(a.status, `${what}: ${a.body}`).toBeGreaterThanOrEqual(400);
  expect(a.status, `${what}: ${a.body}`).toBeLessThan(500);
  expect(a.headers['x-amzn-errortype'], what).toMatch(/^[A-Za-z]+Exception$/);
  expect(() => JSON.parse(a.body), what).not.toThrow();
}

/** Values of the shapes the APIs take, and of shapes they do not. */
const scalar = fc.oneof(
  fc.constantFrom('fuzz', 'fuzz-put', 'nope', '', 'arn:aws:kinesisvideo:us-east-1:000000000000:stream/fuzz/1', 'SERVER_TIMESTAMP', 'PRODUCER_TIMESTAMP', 'NOW', 'EARLIEST', 'LIVE', 'ON_DEMAND', 'PUT_MEDIA', 'GET_MEDIA', 'JPEG', 'PNG'),
  fc.string({ maxLength: 300 }),
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.date({ noInvalidDate: true }).map((d) => d.getTime() / 1000),
);
const KEYS = [
  'StreamName', 'StreamARN', 'APIName', 'Fragments', 'FragmentSelector', 'FragmentSelectorType', 'TimestampRange',
  'StartTimestamp', 'EndTimestamp', 'StartSelector', 'StartSelectorType', 'AfterFragmentNumber', 'ContinuationToken',
  'MaxResults', 'NextToken', 'DataRetentionInHours', 'Tags', 'TagKeyList', 'KmsKeyId', 'MediaType', 'DeviceName',
  'CurrentVersion', 'PlaybackMode', 'HLSFragmentSelector', 'ClipFragmentSelector', 'ImageSelectorType', 'SamplingInterval',
  'Format', 'FormatConfig', 'WidthPixels', 'HeightPixels', 'Expires', 'DurationSeconds', 'Policy', 'Operation',
];
const value: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    fc.array(tie('v'), { maxLength: 5 }),
    fc.dictionary(fc.constantFrom(...KEYS), tie('v'), { maxKeys: 5 }),
  ),
})).v;
const jsonBody = fc.oneof(
  fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 8 }).map((o) => JSON.stringify(o)),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string({ maxLength: 200 }), // mostly not JSON at all
  fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b).toString('latin1')),
);

let t: TestServer;
let frags: MkvFragments;
beforeAll(async () => {
  t = await startTestServer({ limits: { streamRequestsPerSecond: 1e6, streamRequestBurst: 1e6 } });
  frags = await h264Fragments({ frames: 60 });
  await t.createStream('fuzz');
  const acks = await sendBody(t.url, 'fuzz', body(frags));
  expect(acksOf(acks, 'PERSISTED').length).toBe(2);
  await t.createStream('fuzz-put');
});
afterAll(() => t?.close());

/** The server still answers, and every fragment it lists for `stream` can be read and parsed. */
async function expectHealthy(stream: string) {
  await expect(t.kv.send(new ListStreamsCommand({}))).resolves.toBeDefined();
  const numbers = (await listAllFragments(t.archived, stream)).map((f) => f.FragmentNumber!);
  for (let i = 0; i < numbers.length; i += 100) {
    const parsed = await readFragments(t.archived, stream, numbers.slice(i, i + 100));
    expect(parsed.map((f) => f.fragmentNumber)).toEqual(numbers.slice(i, i + 100));
  }
  return numbers.length;
}

describe('fuzz', () => {
  it('answers arbitrary bodies to every operation with named errors, never a 500', async () => {
    const seen = new Map<number, number>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...OPERATIONS), jsonBody, fc.constantFrom('', '/prefix'), async (op, payload, prefix) => {
        const a = await request(t.url, `${prefix}/${op}`, {}, payload);
        seen.set(a.status, (seen.get(a.status) ?? 0) + 1);
        if (a.status !== 200) expectNamedError(a, `${op} ${payload.slice(0, 200)}`);
      }),
      runs(1500),
    );
    // Both paths were exercised: requests that got through validation, and refusals.
    expect(seen.get(200)).toBeGreaterThan(0);
    expect([...seen.keys()].some((s) => s >= 400)).toBe(true);
    await expectHealthy('fuzz');
  });

  it('answers mutated PutMedia bodies with acks or ERROR acks and stores only whole fragments', async () => {
    const valid = body(frags);
    const mutation = fc.oneof(
      // flip bytes
      fc.array(fc.tuple(fc.nat(valid.length - 1), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 8 }).map((flips) => {
        const b = Buffer.from(valid);
        for (const [at, x] of flips) b[at] = b[at]! ^ x;
        return b;
      }),
      // cut short
      fc.nat(valid.length - 1).map((n) => valid.subarray(0, n)),
      // random bytes spliced in
      fc.tuple(fc.nat(valid.length), fc.uint8Array({ minLength: 1, maxLength: 64 })).map(([at, junk]) =>
        Buffer.concat([valid.subarray(0, at), Buffer.from(junk), valid.subarray(at)]),
      ),
      // a range repeated or dropped
      fc.tuple(fc.nat(valid.length), fc.nat(4096), fc.boolean()).map(([at, len, repeat]) =>
        repeat ? Buffer.concat([valid.subarray(0, at + len), valid.subarray(at)]) : Buffer.concat([valid.subarray(0, at), valid.subarray(at + len)]),
      ),
      // element sizes made huge or unknown
      fc.nat(valid.length - 8).map((at) => {
        const b = Buffer.from(valid);
        b.fill(0xff, at, at + 8);
        return b;
      }),
      fc.uint8Array({ maxLength: 2000 }).map((b) => Buffer.from(b)),
    );
    let accepted = 0;
    let refused = 0;
    await fc.assert(
      fc.asyncProperty(mutation, async (payload) => {
        const a = await request(
          t.url,
          '/putMedia',
          {
            'x-amzn-stream-name': 'fuzz-put',
            'x-amzn-fragment-timecode-type': 'RELATIVE',
            'x-amzn-producer-start-timestamp': (Date.now() / 1000).toFixed(3),
          },
          payload,
        );
        if (a.status !== 200) {
          expectNamedError(a, 'PutMedia');
          return;
        }
        const acks = a.body.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as PutMediaAck);
        for (const ack of acks) {
          expect(['BUFFERING', 'RECEIVED', 'PERSISTED', 'ERROR', 'IDLE']).toContain(ack.EventType);
          if (ack.EventType === 'ERROR') expect(ack.ErrorId, JSON.stringify(ack)).toBeGreaterThanOrEqual(4000), expect(ack.ErrorId).toBeLessThan(5000);
        }
        if (acks.some((x) => x.EventType === 'ERROR')) refused++;
        else accepted++;
      }),
      runs(300),
    );
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0); // e.g. flips inside frame data: stored as sent
    await expectHealthy('fuzz-put');
    // A clean upload after all that still works.
    const acks = await sendBody(t.url, 'fuzz', body(frags, { baseTimecode: 0 }));
    expect(acksOf(acks, 'ERROR')).toEqual([]);
    expect(await expectHealthy('fuzz')).toBeGreaterThanOrEqual(2);
  });

  it('answers arbitrary PutMedia headers with named errors', async () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 80 });
    const header = fc.oneof(printable, fc.constantFrom('', 'ABSOLUTE', 'RELATIVE', '0', '-1', '1e400', 'NaN', 'fuzz-put', 'nope', '1765000000.123'));
    const valid = body(frags);
    await fc.assert(
      fc.asyncProperty(header, header, header, fc.dictionary(fc.constantFrom('x-amzn-fragment-acknowledgment-required', 'x-amzn-stream-arn', 'content-type', 'x-amzn-fragment-timecode-type'), header), async (name, type, start, extra) => {
        const a = await request(
          t.url,
          '/putMedia',
          { ...extra, 'x-amzn-stream-name': name, 'x-amzn-fragment-timecode-type': type, 'x-amzn-producer-start-timestamp': start },
          valid.subarray(0, 4000),
        );
        if (a.status !== 200) expectNamedError(a, `PutMedia headers ${JSON.stringify({ name, type, start, extra })}`);
      }),
      runs(200),
    );
    await expectHealthy('fuzz-put');
  });
});

describe('fuzz with signatures required', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer({ accessKeys: { [credentials.accessKeyId]: credentials.secretAccessKey } });
  });
  afterAll(() => s?.close());

  it('refuses arbitrary Authorization, date and token headers with 400/403 named errors', async () => {
    const printable = fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 120 });
    const hex = fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 0, maxLength: 70 });
    const authorization = fc.oneof(
      printable,
      fc
        .tuple(fc.constantFrom(credentials.accessKeyId, 'AKIDUNKNOWN', ''), printable, fc.constantFrom('host;x-amz-date', 'host', '', 'x-amz-date'), hex)
        .map(([key, scope, signed, sig]) => `AWS4-HMAC-SHA256 Credential=${key}/${scope}, SignedHeaders=${signed}, Signature=${sig}`),
    );
    const date = fc.oneof(printable, fc.date({ noInvalidDate: true, min: new Date(0), max: new Date(4e12) }).map((d) => d.toISOString().replace(/[-:]|\.\d{3}/g, '')));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('listStreams', 'describeStream', 'getMedia', 'putMedia', 'listFragments'), authorization, date, fc.option(printable), async (op, auth, amzDate, token) => {
        const a = await request(
          s.url,
          `/${op}`,
          { authorization: auth, 'x-amz-date': amzDate, ...(token !== null ? { 'x-amz-security-token': token } : {}), 'x-amzn-stream-name': 'x' },
          '{"StreamName":"x"}',
        );
        expectNamedError(a, `${op} ${auth}`);
        expect([400, 403]).toContain(a.status);
      }),
      runs(400),
    );
    await expect(s.kv.send(new ListStreamsCommand({}))).resolves.toBeDefined();
  });
});
