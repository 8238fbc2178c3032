/**
 * PutMedia refusals against a real server (producer-protocol.md §4.4, §11, §13.2): every bad input
 * gets one ERROR ack with the right ErrorId and ErrorCode, after the PERSISTED acks of the
 * fragments completed before it; the server then ends the response and closes the connection.
 * Those earlier fragments stay readable, a stream ingesting at the same time is untouched, and
 * the server keeps serving. Also: request-level refusals (unknown stream, bad headers, bad JSON
 * on the media APIs), IDLE acks and the idle timeout.
 */
import http from 'node:http';
import { DescribeStreamCommand } from '@aws-sdk/client-kinesis-video';
import { ListFragmentsCommand, type Fragment } from '@aws-sdk/client-kinesis-video-archived-media';
import { GetMediaCommand } from '@aws-sdk/client-kinesis-video-media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ID,
  SEGMENT_UNKNOWN_SIZE,
  element,
  elementPayload,
  encodeSize,
  readChildren,
  uintElement,
} from '../../lib/mkv/ebml.js';
import type { MkvFragments } from '../../lib/mkv/fragments.js';
import { putMedia } from '../../lib/producer/put-media-client.js';
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { h264Fragments } from '../helpers/media.js';
import { acksOf, body, clusters, sendBody } from '../helpers/producer.js';
import { type TestServer, listAllFragments, readFragments as readStored, startTestServer } from '../helpers/server.js';

// ---- a PutMedia client that can see the connection ------------------------------------------

interface RawPutMedia {
  status: Promise<number>;
  headers: Promise<http.IncomingHttpHeaders>;
  /** Every non-empty line of the response body. */
  lines: string[];
  acks: PutMediaAck[];
  /** The response ended (the server finished it). */
  responseEnded: Promise<void>;
  /** The TCP connection closed. The agent keeps connections alive, so only the server closes it. */
  connectionClosed: Promise<void>;
  /** Writes body bytes, ignoring failures once the server has hung up. */
  write(chunk: Buffer): void;
  end(): void;
  agent: http.Agent;
}

function openPutMedia(url: string, streamName: string, headers: Record<string, string> = {}): RawPutMedia {
  const agent = new http.Agent({ keepAlive: true });
  const req = http.request(`${url}/putMedia`, {
    method: 'POST',
    agent,
    headers: {
      'x-amzn-stream-name': streamName,
      'x-amzn-fragment-timecode-type': 'ABSOLUTE',
      'x-amzn-producer-start-timestamp': (Date.now() / 1000).toFixed(3),
      'x-amzn-fragment-acknowledgment-required': '1',
      'content-type': 'application/json',
      'transfer-encoding': 'chunked',
      connection: 'keep-alive',
      ...headers,
    },
  });
  req.on('error', () => {}); // writes after the server hung up fail; the response is what counts
  req.flushHeaders();
  const lines: string[] = [];
  const acks: PutMediaAck[] = [];
  const connectionClosed = new Promise<void>((resolve) => req.on('socket', (s) => s.once('close', () => resolve())));
  let resolveHeaders!: (h: http.IncomingHttpHeaders) => void;
  let resolveStatus!: (s: number) => void;
  const status = new Promise<number>((r) => (resolveStatus = r));
  const responseHeaders = new Promise<http.IncomingHttpHeaders>((r) => (resolveHeaders = r));
  const responseEnded = new Promise<void>((resolve, reject) => {
    req.on('response', (res) => {
      resolveStatus(res.statusCode ?? 0);
      resolveHeaders(res.headers);
      let pending = '';
      res.setEncoding('utf8');
      res.on('data', (text: string) => {
        pending += text;
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (line !== '') lines.push(line);
        }
      });
      res.on('end', () => {
        if (pending.trim() !== '') lines.push(pending.trim());
        for (const line of lines) {
          const parsed = JSON.parse(line) as Partial<PutMediaAck>;
          if (parsed.EventType !== undefined) acks.push(parsed as PutMediaAck);
        }
        resolve();
      });
      res.on('error', reject);
    });
  });
  return {
    status,
    headers: responseHeaders,
    lines,
    acks,
    responseEnded,
    connectionClosed,
    agent,
    write: (chunk) => {
      if (!req.destroyed) req.write(chunk);
    },
    end: () => {
      if (!req.destroyed) req.end();
    },
  };
}

// ---- media --------------------------------------------------------------------------------

/** A Tracks element whose entries are copies of the video track, numbered as given. */
function tracksNumbered(frags: MkvFragments, numbers: number[]): Buffer {
  const [video] = [...readChildren(elementPayload(frags.tracks))].filter((c) => c.id === ID.TrackEntry);
  const entries = numbers.map((n) =>
    element(
      ID.TrackEntry,
      [...readChildren(video!.data)].map((c) => (c.id === ID.TrackNumber ? uintElement(ID.TrackNumber, n) : element(c.id, c.data))),
    ),
  );
  return element(ID.Tracks, entries);
}

const headerWithTracks = (frags: MkvFragments, tracks: Buffer): Buffer =>
  Buffer.concat([frags.ebml, SEGMENT_UNKNOWN_SIZE, frags.info, tracks]);

function simpleBlock(track: number, timecode: number, data: Buffer): Buffer {
  const tc = Buffer.alloc(2);
  tc.writeInt16BE(timecode);
  return element(ID.SimpleBlock, [encodeSize(track), tc, Buffer.from([0]), data]);
}

// ---- reading back -------------------------------------------------------------------------

const EVERYTHING = { StartTimestamp: new Date(0), EndTimestamp: new Date(Date.now() + 24 * 3_600_000) };

const storedFragments = (ts: TestServer, streamName: string) => listAllFragments(ts.archived, streamName);
const readFragments = (ts: TestServer, streamName: string, numbers: string[]) => readStored(ts.archived, streamName, numbers);

// ---- the scenario every refusal goes through ------------------------------------------------

let ts: TestServer;
let frags: MkvFragments;
/** Cluster bytes that fit twice in maxFragmentBytes. */
let largestCluster: number;
let streamCounter = 0;

interface Refusal {
  /** The ERROR ack. */
  error: PutMediaAck;
  acks: PutMediaAck[];
  persisted: PutMediaAck[];
  stored: Fragment[];
}

/**
 * Sends `chunks` as one PutMedia body on a new stream while another stream is ingesting, and
 * checks what every refusal must do: one ERROR ack, last; the response and the connection ended
 * by the server; exactly the PERSISTED fragments stored and readable with all their frames; the
 * other stream complete; and the server still serving this stream.
 */
async function refused(chunks: Buffer[], o: { endBody?: boolean; timecodeType?: 'ABSOLUTE' | 'RELATIVE' } = {}): Promise<Refusal> {
  const stream = `refused-${++streamCounter}`;
  const neighbourStream = `neighbour-${streamCounter}`;
  await ts.createStream(stream);
  await ts.createStream(neighbourStream);

  const neighbour = putMedia({ endpoint: ts.url, streamName: neighbourStream, timecodeType: 'RELATIVE' });
  const neighbourClusters = clusters(frags);
  await neighbour.write(frags.header);
  await neighbour.write(neighbourClusters[0]!);

  const put = openPutMedia(ts.url, stream, { 'x-amzn-fragment-timecode-type': o.timecodeType ?? 'ABSOLUTE' });
  for (const chunk of chunks) put.write(chunk);
  if (o.endBody) put.end();
  await put.responseEnded;
  expect(await put.status).toBe(200);
  await put.connectionClosed;
  put.agent.destroy();

  const errors = acksOf(put.acks, 'ERROR');
  expect(errors).toHaveLength(1);
  expect(put.acks.at(-1)).toBe(errors[0]);
  const persisted = acksOf(put.acks, 'PERSISTED');
  const stored = await storedFragments(ts, stream);
  expect(stored.map((f) => f.FragmentNumber)).toEqual(persisted.map((a) => a.FragmentNumber));
  if (stored.length > 0) {
    const read = await readFragments(ts, stream, stored.map((f) => f.FragmentNumber!));
    expect(read.map((f) => f.fragmentNumber)).toEqual(persisted.map((a) => a.FragmentNumber));
    // The ABSOLUTE-mode bodies below start at cluster 0: fragment i has cluster i's frames.
    expect(read.map((f) => f.frames.length)).toEqual(frags.clusters.slice(0, read.length).map((c) => c.blocks.length));
    expect(read.map((f) => f.clusterTimecode)).toEqual(persisted.map((a) => a.FragmentTimecode));
  }

  for (const c of neighbourClusters.slice(1)) await neighbour.write(c);
  const neighbourAcks = await neighbour.end();
  expect(acksOf(neighbourAcks, 'ERROR')).toEqual([]);
  expect(acksOf(neighbourAcks, 'PERSISTED')).toHaveLength(frags.clusters.length);
  expect(await storedFragments(ts, neighbourStream)).toHaveLength(frags.clusters.length);

  // The server still serves the refused stream: a new connection with good data is stored.
  const describe = await ts.kv.send(new DescribeStreamCommand({ StreamName: stream }));
  expect(describe.StreamInfo?.Status).toBe('ACTIVE');
  const again = await sendBody(ts.url, stream, body(frags));
  expect(acksOf(again, 'ERROR')).toEqual([]);
  expect(acksOf(again, 'PERSISTED')).toHaveLength(frags.clusters.length);

  return { error: errors[0]!, acks: put.acks, persisted, stored };
}

const base = () => Date.now() - 60_000;

beforeAll(async () => {
  // Five 1/3-second fragments of 10 frames each.
  frags = await h264Fragments({ frames: 50, gop: 10, width: 160, height: 120, bitrate: 200 });
  largestCluster = Math.max(...frags.clusters.map((c) => c.body.length + 16));
  ts = await startTestServer({ limits: { maxFragmentBytes: 2 * largestCluster, maxFragmentDurationMs: 2_000 } });
});

afterAll(async () => {
  await ts?.close();
});

describe('PutMedia ERROR acks', () => {
  it('4006 INVALID_MKV_DATA for a body that is not Matroska at all', async () => {
    const r = await refused([Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n')]);
    expect(r.error).toEqual({ EventType: 'ERROR', ErrorId: 4006, ErrorCode: 'INVALID_MKV_DATA' });
    expect(r.acks).toEqual([r.error]);
  });

  it('4006 INVALID_MKV_DATA for garbage after two good fragments, which stay stored', async () => {
    const tc = base();
    const r = await refused([body(frags, { to: 2, baseTimecode: tc }), Buffer.alloc(32, 0)]);
    expect(r.error).toMatchObject({ ErrorId: 4006, ErrorCode: 'INVALID_MKV_DATA' });
    expect(r.persisted.map((a) => a.FragmentTimecode)).toEqual([tc + frags.clusters[0]!.timecode, tc + frags.clusters[1]!.timecode]);
  });

  it('4006 INVALID_MKV_DATA for a body that ends in the middle of a block', async () => {
    const tc = base();
    const [c0, c1] = clusters(frags, { to: 2, baseTimecode: tc });
    const r = await refused([frags.header, c0!, c1!.subarray(0, Math.floor(c1!.length / 2))], { endBody: true });
    expect(r.error).toMatchObject({ ErrorId: 4006, ErrorCode: 'INVALID_MKV_DATA', FragmentTimecode: tc + frags.clusters[1]!.timecode });
    expect(r.persisted).toHaveLength(1);
  });

  it('4006 INVALID_MKV_DATA for a Cluster before the Tracks', async () => {
    const [c0] = clusters(frags, { to: 1, baseTimecode: base() });
    const r = await refused([frags.ebml, SEGMENT_UNKNOWN_SIZE, frags.info, c0!, frags.tracks]);
    expect(r.error).toEqual({ EventType: 'ERROR', ErrorId: 4006, ErrorCode: 'INVALID_MKV_DATA' });
    expect(r.stored).toEqual([]);
  });

  it('4001 MAX_FRAGMENT_SIZE_REACHED for a fragment larger than maxFragmentBytes', async () => {
    const tc = base();
    const big = frags.clusters[2]!;
    const oversized = element(ID.Cluster, [uintElement(ID.Timecode, tc + big.timecode, 8), big.body, big.body, big.body], 8);
    expect(oversized.length).toBeGreaterThan(2 * largestCluster);
    const r = await refused([body(frags, { to: 2, baseTimecode: tc }), oversized]);
    expect(r.error).toMatchObject({ ErrorId: 4001, ErrorCode: 'MAX_FRAGMENT_SIZE_REACHED', FragmentTimecode: tc + big.timecode });
    expect(r.persisted).toHaveLength(2);
  });

  it('4002 MAX_FRAGMENT_DURATION_REACHED for a fragment longer than maxFragmentDurationMs', async () => {
    const tc = base();
    const c = frags.clusters[2]!;
    const long = element(ID.Cluster, [uintElement(ID.Timecode, tc + c.timecode, 8), c.body, simpleBlock(1, 2_500, Buffer.alloc(10))], 8);
    const r = await refused([body(frags, { to: 2, baseTimecode: tc }), long]);
    expect(r.error).toMatchObject({ ErrorId: 4002, ErrorCode: 'MAX_FRAGMENT_DURATION_REACHED', FragmentTimecode: tc + c.timecode });
    expect(r.persisted).toHaveLength(2);
  });

  it('4004 FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS when cluster timecodes go back within a connection', async () => {
    const tc = base();
    const [back] = clusters(frags, { from: 1, to: 2, baseTimecode: tc });
    const r = await refused([body(frags, { to: 3, baseTimecode: tc }), back!]);
    expect(r.error).toMatchObject({
      ErrorId: 4004,
      ErrorCode: 'FRAGMENT_TIMECODE_LESSER_THAN_PREVIOUS',
      FragmentTimecode: tc + frags.clusters[1]!.timecode,
    });
    expect(r.persisted).toHaveLength(3);
  });

  it('4004 also for a repeated timecode within a connection', async () => {
    const tc = base();
    const [same] = clusters(frags, { from: 0, to: 1, baseTimecode: tc });
    const r = await refused([body(frags, { to: 1, baseTimecode: tc }), same!]);
    expect(r.error).toMatchObject({ ErrorId: 4004, FragmentTimecode: tc + frags.clusters[0]!.timecode });
    expect(r.persisted).toHaveLength(1);
  });

  it('4007 INVALID_PRODUCER_TIMESTAMP for a fragment far in the future (ABSOLUTE)', async () => {
    const tc = base();
    const future = Date.now() + 3_600_000;
    const [late] = clusters(frags, { from: 2, to: 3, baseTimecode: future });
    const r = await refused([body(frags, { to: 2, baseTimecode: tc }), late!]);
    expect(r.error).toMatchObject({
      ErrorId: 4007,
      ErrorCode: 'INVALID_PRODUCER_TIMESTAMP',
      FragmentTimecode: future + frags.clusters[2]!.timecode,
    });
    expect(r.persisted).toHaveLength(2);
  });

  it('4012 MORE_THAN_ALLOWED_TRACKS_FOUND for a Tracks element with 4 tracks', async () => {
    const r = await refused([headerWithTracks(frags, tracksNumbered(frags, [1, 2, 3, 4])), ...clusters(frags, { to: 1, baseTimecode: base() })]);
    expect(r.error).toEqual({ EventType: 'ERROR', ErrorId: 4012, ErrorCode: 'MORE_THAN_ALLOWED_TRACKS_FOUND' });
    expect(r.stored).toEqual([]);
  });

  it('4010 TRACK_NUMBER_MISMATCH for a block whose track is not declared', async () => {
    const tc = base();
    const r = await refused([headerWithTracks(frags, tracksNumbered(frags, [2])), ...clusters(frags, { to: 2, baseTimecode: tc })]);
    expect(r.error).toMatchObject({ ErrorId: 4010, ErrorCode: 'TRACK_NUMBER_MISMATCH', FragmentTimecode: tc });
    expect(r.stored).toEqual([]);
  });

  it('4011 FRAMES_MISSING_FOR_TRACK for two declared tracks with frames for one only', async () => {
    const tc = base();
    const r = await refused([headerWithTracks(frags, tracksNumbered(frags, [1, 2])), ...clusters(frags, { to: 2, baseTimecode: tc })]);
    expect(r.error).toMatchObject({ ErrorId: 4011, ErrorCode: 'FRAMES_MISSING_FOR_TRACK', FragmentTimecode: tc });
    expect(r.stored).toEqual([]);
  });

  it('a body that ends cleanly keeps the connection open for the next request', async () => {
    await ts.createStream('clean-end');
    const put = openPutMedia(ts.url, 'clean-end');
    put.write(body(frags, { baseTimecode: base() }));
    put.end();
    await put.responseEnded;
    expect(acksOf(put.acks, 'PERSISTED')).toHaveLength(frags.clusters.length);
    // The next request on the same agent reuses the connection: the server did not close it.
    const reused = await new Promise<boolean>((resolve, reject) => {
      const req = http.request(`${ts.url}/describeStream`, { method: 'POST', agent: put.agent, headers: { 'content-type': 'application/json' } });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(req.reusedSocket));
      });
      req.on('error', reject);
      req.end(JSON.stringify({ StreamName: 'clean-end' }));
    });
    put.agent.destroy();
    expect(reused).toBe(true);
  });
});

describe('PutMedia request refusals', () => {
  it('answers 404 ResourceNotFoundException without acks for an unknown stream', async () => {
    const put = openPutMedia(ts.url, 'no-such-stream');
    put.write(body(frags, { to: 1, baseTimecode: base() }));
    put.end();
    await put.responseEnded;
    expect(await put.status).toBe(404);
    expect((await put.headers)['x-amzn-errortype']).toBe('ResourceNotFoundException');
    expect(put.acks).toEqual([]);
    expect(JSON.parse(put.lines.join(''))).toEqual({ Message: expect.stringMatching(/not found/) });
    await put.connectionClosed;
    put.agent.destroy();
  });

  it('answers 400 InvalidArgumentException for a bad x-amzn-fragment-timecode-type', async () => {
    await ts.createStream('bad-timecode-type');
    const put = openPutMedia(ts.url, 'bad-timecode-type', { 'x-amzn-fragment-timecode-type': 'SIDEWAYS' });
    put.write(body(frags, { to: 1 }));
    put.end();
    await put.responseEnded;
    expect(await put.status).toBe(400);
    expect((await put.headers)['x-amzn-errortype']).toBe('InvalidArgumentException');
    expect(put.acks).toEqual([]);
    expect(put.lines.join('')).toMatch(/x-amzn-fragment-timecode-type/);
    put.agent.destroy();
    expect(await storedFragments(ts, 'bad-timecode-type')).toEqual([]);
  });

  it('answers 400 InvalidArgumentException without a stream name', async () => {
    const put = openPutMedia(ts.url, '', {});
    put.end();
    await put.responseEnded;
    expect(await put.status).toBe(400);
    expect((await put.headers)['x-amzn-errortype']).toBe('InvalidArgumentException');
    put.agent.destroy();
  });
});

describe('GetMedia and ListFragments input errors', () => {
  async function post(operation: string, text: string) {
    const res = await fetch(`${ts.url}/${operation}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: text });
    return { status: res.status, errorType: res.headers.get('x-amzn-errortype'), message: ((await res.json()) as { Message: string }).Message };
  }

  beforeAll(async () => {
    await ts.createStream('inputs');
  });

  it.each(['getMedia', 'listFragments'])('%s refuses a body that is not JSON', async (operation) => {
    const r = await post(operation, '{"StreamName": "inputs",');
    expect(r).toMatchObject({ status: 400, errorType: 'InvalidArgumentException', message: expect.stringMatching(/JSON/) });
  });

  it('GetMedia names unknown and invalid fields', async () => {
    const unknownTop = await post('getMedia', JSON.stringify({ StreamName: 'inputs', StartSelector: { StartSelectorType: 'NOW' }, Bogus: 1 }));
    expect(unknownTop).toMatchObject({ status: 400, errorType: 'InvalidArgumentException', message: expect.stringContaining('Bogus') });
    const unknownNested = await post(
      'getMedia',
      JSON.stringify({ StreamName: 'inputs', StartSelector: { StartSelectorType: 'NOW', Extra: true } }),
    );
    expect(unknownNested.errorType).toBe('InvalidArgumentException');
    expect(unknownNested.message).toMatch(/StartSelector.*Extra/);
    const missing = await post('getMedia', JSON.stringify({ StreamName: 'inputs' }));
    expect(missing).toMatchObject({ errorType: 'InvalidArgumentException', message: expect.stringContaining('StartSelector') });

    // Through the SDK, which sends whatever enum value it is given.
    const sdk = ts.media.send(
      new GetMediaCommand({ StreamName: 'inputs', StartSelector: { StartSelectorType: 'SOMETIME' as 'NOW' } }),
    );
    await expect(sdk).rejects.toMatchObject({ name: 'InvalidArgumentException', message: expect.stringContaining('StartSelector.StartSelectorType') });
  });

  it('ListFragments names unknown and invalid fields', async () => {
    const range = { StartTimestamp: 0, EndTimestamp: 1 };
    const unknown = await post(
      'listFragments',
      JSON.stringify({ StreamName: 'inputs', FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: range }, Colour: 'red' }),
    );
    expect(unknown).toMatchObject({ status: 400, errorType: 'InvalidArgumentException', message: expect.stringContaining('Colour') });
    const nested = await post(
      'listFragments',
      JSON.stringify({ StreamName: 'inputs', FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { ...range, Middle: 0 } } }),
    );
    expect(nested.message).toMatch(/FragmentSelector\.TimestampRange.*Middle/);

    const sdk = ts.archived.send(
      new ListFragmentsCommand({
        StreamName: 'inputs',
        MaxResults: 0,
        FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: EVERYTHING },
      }),
    );
    await expect(sdk).rejects.toMatchObject({ name: 'InvalidArgumentException', message: expect.stringContaining('MaxResults') });
  });

  it('GetMedia on a missing stream is ResourceNotFoundException', async () => {
    const sdk = ts.media.send(new GetMediaCommand({ StreamName: 'never-created', StartSelector: { StartSelectorType: 'EARLIEST' } }));
    await expect(sdk).rejects.toMatchObject({ name: 'ResourceNotFoundException', $metadata: { httpStatusCode: 404 } });
  });
});

describe('idle PutMedia connections', () => {
  let idle: TestServer;

  beforeAll(async () => {
    idle = await startTestServer({ limits: { idleAckIntervalMs: 50, putMediaIdleTimeoutMs: 600 } });
  });
  afterAll(async () => {
    await idle?.close();
  });

  it('get IDLE acks while the client sends nothing, then the server ends the response', async () => {
    await idle.createStream('silent');
    const put = openPutMedia(idle.url, 'silent');
    // Headers only: no body byte is ever sent, and the body is never ended.
    await put.responseEnded;
    await put.connectionClosed;
    put.agent.destroy();
    expect(await put.status).toBe(200);
    expect(put.acks.length).toBeGreaterThan(0);
    expect(put.acks.every((a) => JSON.stringify(a) === '{"EventType":"IDLE"}')).toBe(true);
  });

  it('keep the fragments completed before the silence and drop the one cut short', async () => {
    await idle.createStream('paused');
    const tc = base();
    const [c0, c1, c2] = clusters(frags, { to: 3, baseTimecode: tc });
    const put = openPutMedia(idle.url, 'paused');
    put.write(Buffer.concat([frags.header, c0!, c1!, c2!.subarray(0, 100)]));
    await put.responseEnded;
    await put.connectionClosed;
    put.agent.destroy();

    expect(acksOf(put.acks, 'ERROR')).toEqual([]);
    expect(acksOf(put.acks, 'IDLE').length).toBeGreaterThan(0);
    // Per fragment: the two complete ones went through to PERSISTED, the cut one only started.
    const perFragment = new Map<string, string[]>();
    for (const a of put.acks) {
      if (a.EventType === 'IDLE') continue;
      perFragment.set(a.FragmentNumber!, [...(perFragment.get(a.FragmentNumber!) ?? []), a.EventType]);
    }
    expect([...perFragment.values()]).toEqual([
      ['BUFFERING', 'RECEIVED', 'PERSISTED'],
      ['BUFFERING', 'RECEIVED', 'PERSISTED'],
      ['BUFFERING'],
    ]);
    const persisted = acksOf(put.acks, 'PERSISTED');
    expect(persisted.map((a) => a.FragmentTimecode)).toEqual([tc + frags.clusters[0]!.timecode, tc + frags.clusters[1]!.timecode]);
    const stored = await storedFragments(idle, 'paused');
    expect(stored.map((f) => f.FragmentNumber)).toEqual(persisted.map((a) => a.FragmentNumber));
  });
});
