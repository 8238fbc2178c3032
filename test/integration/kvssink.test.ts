/**
 * kvssink in real gst-launch-1.0 pipelines uploading to a real openkvs server on 127.0.0.1,
 * read back with the AWS SDK clients and checked by parsing and with ffprobe.
 */
import http from 'node:http';
import type { ChildProcess } from 'node:child_process';
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConsumedFragment } from '../../lib/consumer/get-media-parser.js';
import { ffprobePackets } from '../helpers/media.js';
import {
  type Clients,
  clientsFor,
  fragmentMedia,
  freePort,
  listAllFragments,
  parseFragments,
  spawnServer,
  startTestServer,
  tempDir,
  type TestServer,
} from '../helpers/server.js';
import { awsEnv, gstLaunch, hasElement } from '../helpers/gst.js';

async function readBack(c: Clients, stream: string): Promise<{ fragments: ConsumedFragment[]; docs: Buffer[] }> {
  const numbers = (await listAllFragments(c.archived, stream)).map((f) => f.FragmentNumber!);
  if (numbers.length === 0) return { fragments: [], docs: [] };
  const bytes = await fragmentMedia(c.archived, stream, numbers);
  const fragments = parseFragments(bytes);
  const docs: Buffer[] = [];
  const EBML = Buffer.from([0x1a, 0x45, 0xdf, 0xa3]);
  for (let at = 0; at < bytes.length; ) {
    const next = bytes.indexOf(EBML, at + 4);
    docs.push(bytes.subarray(at, next < 0 ? bytes.length : next));
    at = next < 0 ? bytes.length : next;
  }
  return { fragments, docs };
}

const videoFrames = (fragments: ConsumedFragment[]) =>
  fragments.flatMap((f) => f.frames.filter((fr) => fr.track === (f.tracks.find((t) => t.type === 1)?.number ?? 1)));

describe('kvssink → openkvs server', () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(() => t?.close());

  const upload = async (stream: string, source: string, extra = '') => {
    const run = gstLaunch(`${source} ! kvssink name=sink stream-name=${stream} endpoint=${t.url} ${extra}`, awsEnv);
    const code = await run.exited;
    return { code, run };
  };

  it('uploads H.264 (avc) and every frame comes back once, with key frames and timestamps', async () => {
    const { code, run } = await upload(
      'h264',
      'videotestsrc num-buffers=300 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 speed-preset=ultrafast ! h264parse',
    );
    expect(code, run.output()).toBe(0);
    const acks = run.messages.filter((m) => m.name === 'kvssink-fragment-ack');
    const persisted = acks.filter((m) => m.fields['event-type'] === 'PERSISTED');
    expect(persisted.length).toBe(10);
    expect(run.messages.some((m) => m.name === 'kvssink-stream-ready')).toBe(true);

    const { fragments, docs } = await readBack(t, 'h264');
    expect(fragments.map((f) => f.fragmentNumber)).toEqual(persisted.map((m) => m.fields['fragment-number']));
    const frames = videoFrames(fragments);
    expect(frames.length).toBe(300);
    expect(frames.filter((f) => f.keyframe).length).toBe(10);
    expect(fragments.every((f) => f.frames[0]!.keyframe)).toBe(true);
    // 30 fps: timestamps 33-34 ms apart, strictly increasing, none twice.
    const ts = frames.map((f) => f.timecode);
    for (let i = 1; i < ts.length; i++) expect(ts[i]! - ts[i - 1]!).toBeGreaterThanOrEqual(33), expect(ts[i]! - ts[i - 1]!).toBeLessThanOrEqual(34);
    // ABSOLUTE timecodes are epoch milliseconds of about now.
    expect(Math.abs(ts[0]! - Date.now())).toBeLessThan(120_000);
    let probed = 0;
    for (const d of docs) probed += (await ffprobePackets(d)).length;
    expect(probed).toBe(300);
  });

  it('accepts byte-stream H.264 (converted to AVC with codec private data from the stream)', async () => {
    const { code, run } = await upload(
      'bytestream',
      'videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 speed-preset=ultrafast ! video/x-h264,stream-format=byte-stream,alignment=au',
    );
    expect(code, run.output()).toBe(0);
    const { fragments, docs } = await readBack(t, 'bytestream');
    expect(videoFrames(fragments).length).toBe(90);
    expect(fragments[0]!.tracks[0]!.codecId).toBe('V_MPEG4/ISO/AVC');
    expect(fragments[0]!.tracks[0]!.codecPrivate?.[0]).toBe(1); // avcC version
    let probed = 0;
    for (const d of docs) probed += (await ffprobePackets(d)).length;
    expect(probed).toBe(90);
  });

  it.skipIf(!hasElement('x265enc'))('uploads H.265', async () => {
    const { code, run } = await upload(
      'h265',
      'videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,framerate=30/1 ! x265enc key-int-max=30 speed-preset=ultrafast option-string=bframes=0 ! h265parse',
    );
    expect(code, run.output()).toBe(0);
    const { fragments, docs } = await readBack(t, 'h265');
    expect(fragments[0]!.tracks[0]!.codecId).toBe('V_MPEGH/ISO/HEVC');
    expect(videoFrames(fragments).length).toBe(60);
    let probed = 0;
    for (const d of docs) probed += (await ffprobePackets(d)).length;
    expect(probed).toBe(60);
  });

  it('uploads H.264 with AAC audio as two tracks', async () => {
    const run = gstLaunch(
      `kvssink name=sink stream-name=av endpoint=${t.url} ` +
        'videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 speed-preset=ultrafast ! h264parse ! sink. ' +
        'audiotestsrc num-buffers=130 samplesperbuffer=1024 ! audio/x-raw,rate=44100,channels=1 ! avenc_aac ! aacparse ! sink.',
      awsEnv,
    );
    expect(await run.exited, run.output()).toBe(0);
    const { fragments } = await readBack(t, 'av');
    expect(fragments.length).toBeGreaterThanOrEqual(3);
    const tracks = fragments[0]!.tracks;
    expect(tracks.map((tr) => tr.codecId)).toEqual(['V_MPEG4/ISO/AVC', 'A_AAC']);
    expect(videoFrames(fragments).length).toBe(90);
    const audio = fragments.flatMap((f) => f.frames.filter((fr) => fr.track === 2));
    expect(audio.length).toBeGreaterThan(80);
    // Within each fragment, frames are in timestamp order across the tracks.
    for (const f of fragments) {
      const ts = f.frames.map((fr) => fr.timecode);
      expect([...ts].sort((a, b) => a - b)).toEqual(ts);
    }
  });

  it('fails clearly, without hanging, when the stream does not exist and allow-create-stream=false', async () => {
    const { code, run } = await upload('missing-stream', 'videotestsrc num-buffers=300 ! x264enc ! h264parse', 'allow-create-stream=false');
    expect(code).not.toBe(0);
    expect(run.output()).toMatch(/does not exist and allow-create-stream is false/);
  });
});

it('reports a server that rejects the signature as an error on the bus', async () => {
  // A server that refuses every request as AWS does for a bad signature.
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(403, { 'content-type': 'application/json', 'x-amzn-errortype': 'InvalidSignatureException' });
    res.end(JSON.stringify({ message: 'The request signature we calculated does not match the signature you provided.' }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const run = gstLaunch(`videotestsrc is-live=true ! x264enc ! h264parse ! kvssink stream-name=x endpoint=http://127.0.0.1:${port}`, awsEnv);
  const msg = await run.waitFor((m) => m.name === 'kvssink-error');
  expect(msg.fields['http-status']).toBe('403');
  expect(msg.fields['service-code']).toBe('InvalidSignatureException');
  run.child.kill('SIGINT');
  await run.exited;
  server.close();
});

describe('kvssink through a server crash', () => {
  const children: ChildProcess[] = [];
  afterAll(() => children.forEach((c) => c.kill('SIGKILL')));

  it('resumes by itself after the server is killed and restarted; every frame stored once', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    const first = await spawnServer(dataDir, port);
    children.push(first.child);
    const c = clientsFor(first.url);
    await c.kv.send(new CreateStreamCommand({ StreamName: 'crash', DataRetentionInHours: 1 }));
    const run = gstLaunch(
      `videotestsrc is-live=true num-buffers=240 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast ! h264parse ! kvssink stream-name=crash endpoint=${first.url}`,
      awsEnv,
    );
    await run.waitFor((m) => m.name === 'kvssink-fragment-ack' && m.fields['event-type'] === 'PERSISTED');
    await new Promise((r) => setTimeout(r, 1500));
    first.child.kill('SIGKILL');
    await new Promise((r) => setTimeout(r, 1500));
    const second = await spawnServer(dataDir, port);
    children.push(second.child);
    expect(await run.exited, run.output().slice(-4000)).toBe(0);
    expect(run.messages.some((m) => m.name === 'kvssink-connection' && m.fields.state === 'dropped')).toBe(true);

    const { fragments } = await readBack(c, 'crash');
    const frames = videoFrames(fragments);
    const ts = frames.map((f) => f.timecode);
    expect(new Set(ts).size).toBe(ts.length); // none twice
    expect(frames.length).toBe(240); // every frame sent before EOS
  });
});
