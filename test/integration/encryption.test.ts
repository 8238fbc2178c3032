/**
 * Encryption at rest through the server: nothing of the uploaded media is in the data dir in the
 * clear, every read path decrypts, a changed byte on disk is refused with a clear error (never
 * served), KmsKeyId picks the master key, and killing `openkvs keys rotate` at any moment loses
 * nothing.
 */
import { spawn, execFile } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { MkvFragments } from '../../lib/mkv/fragments.js';
import { h264Fragments } from '../helpers/media.js';
import { acksOf, body, sendBody } from '../helpers/producer.js';
import { capturingLogger, credentials, fragmentMedia, listAllFragments, startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const cli = path.resolve('dist/lib/cli/main.js');
let t: TestServer;
let frags: MkvFragments;
const { logger, logs } = capturingLogger();

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? filesUnder(p) : [p];
  });
}

const fragmentNumbers = async (stream: string): Promise<string[]> =>
  (await listAllFragments(t.archived, stream)).map((f) => f.FragmentNumber!);
const readAll = (stream: string, numbers: string[]): Promise<Buffer> => fragmentMedia(t.archived, stream, numbers);

beforeAll(async () => {
  frags = await h264Fragments({ frames: 90, gop: 30 });
  t = await startTestServer({ logger });
  await t.createStream('sealed');
  const acks = await sendBody(t.url, 'sealed', body(frags));
  expect(acksOf(acks, 'PERSISTED')).toHaveLength(3);
});
afterAll(() => t?.close());

it('leaves no uploaded media in the clear anywhere in the data dir, and reads it back decrypted', async () => {
  // 64 bytes from inside the first key frame's slice data, and from a later frame.
  const needles = [frags.clusters[0]!.body, frags.clusters[2]!.body].map((b) => b.subarray(b.length >> 1, (b.length >> 1) + 64));
  const files = filesUnder(t.dataDir).filter((f) => statSync(f).size > 0);
  expect(files.some((f) => f.endsWith('.frag'))).toBe(true);
  for (const file of files) {
    const bytes = readFileSync(file);
    for (const needle of needles) expect(bytes.includes(needle), file).toBe(false);
  }
  const out = await readAll('sealed', await fragmentNumbers('sealed'));
  for (const needle of needles) expect(out.includes(needle)).toBe(true);
});

it('refuses a fragment whose stored bytes changed, with a clear error, and keeps serving the others', async () => {
  const numbers = await fragmentNumbers('sealed');
  const frag = filesUnder(path.join(t.dataDir, 'streams')).find((f) => f.endsWith('.frag'))!;
  const bytes = readFileSync(frag);
  bytes[100]! ^= 0x40; // inside the first fragment
  writeFileSync(frag, bytes);
  await expect(readAll('sealed', [numbers[0]!])).rejects.toMatchObject({ name: 'InternalFailure', message: expect.stringMatching(/failed its integrity check/) });
  expect(logs.some((l) => l.level === 50 && /integrity check/.test(String(l.msg)) && l.fragment === numbers[0])).toBe(true);
  const rest = await readAll('sealed', numbers.slice(1));
  expect(rest.includes(frags.clusters[2]!.body.subarray(200, 264))).toBe(true);
  // Mid-stream, the stream stops with the service's error tags (5000) and nothing of the fragment.
  const mid = await readAll('sealed', [numbers[1]!, numbers[0]!, numbers[2]!]);
  expect(mid.includes(Buffer.from('AWS_KINESISVIDEO_ERROR_ID'))).toBe(true);
  expect(mid.includes(Buffer.from('failed its integrity check'))).toBe(true);
  expect(mid.includes(frags.clusters[2]!.body.subarray(200, 264))).toBe(false);
  // GetMedia from the start: the consumer library reports it as a stream error naming the fragment.
  const { StreamReader } = await import('../../lib/consumer/stream-reader.js');
  const reader = new StreamReader({ streamName: 'sealed', endpoint: t.url, region: 'us-east-1', credentials, start: 'earliest', reconnect: { maxAttempts: 1 } });
  await expect(reader.run()).rejects.toMatchObject({ code: 'CONSUMER_STREAM_ERROR', message: expect.stringMatching(/error 5000 .*integrity check/) });
  bytes[100]! ^= 0x40;
  writeFileSync(frag, bytes);
});

it('wraps a stream\'s data key with the master key its KmsKeyId names', async () => {
  await t.kv.send(new CreateStreamCommand({ StreamName: 'cams', KmsKeyId: 'arn:aws:kms:us-east-1:000000000000:alias/cameras', DataRetentionInHours: 1 }));
  await sendBody(t.url, 'cams', body(frags, { to: 1 }));
  const { stdout } = await run(process.execPath, [cli, 'keys', 'list', '--data-dir', t.dataDir]);
  expect(stdout).toMatch(/alias\/aws\/kinesisvideo\s+1\s+\S+\s+1\n/);
  expect(stdout).toMatch(/alias\/cameras\s+1\s+\S+\s+1\n/);
});

it('loses nothing when `openkvs keys rotate` is killed at any moment', async () => {
  const streams = ['sealed', 'cams'];
  const expected = new Map<string, Buffer>();
  for (const s of streams) expected.set(s, await readAll(s, await fragmentNumbers(s)));
  for (let round = 0; round < 8; round++) {
    const child = spawn(process.execPath, [cli, 'keys', 'rotate', '--data-dir', t.dataDir], { stdio: 'ignore' });
    const exited = new Promise<void>((r) => child.on('exit', () => r()));
    await new Promise((r) => setTimeout(r, 60 + round * 40));
    child.kill('SIGKILL');
    await exited;
    for (const s of streams) expect((await readAll(s, await fragmentNumbers(s))).equals(expected.get(s)!), `round ${round}, ${s}`).toBe(true);
  }
  // A restarted server (keys unwrapped afresh from the index and the keyring) reads it all too.
  const dataDir = t.dataDir;
  await t.close();
  t = await startTestServer({ dataDir, logger });
  const { stdout } = await run(process.execPath, [cli, 'keys', 'rotate', '--data-dir', dataDir]);
  expect(stdout).toMatch(/rewrapped 2 data keys \(media files unchanged\)/);
  for (const s of streams) expect((await readAll(s, await fragmentNumbers(s))).equals(expected.get(s)!)).toBe(true);
});

it('makes a stream\'s data key with the stream, before any media arrives', async () => {
  await t.kv.send(new CreateStreamCommand({ StreamName: 'fresh', KmsKeyId: 'alias/fresh-cams', DataRetentionInHours: 1 }));
  const { stdout } = await run(process.execPath, [cli, 'keys', 'list', '--data-dir', t.dataDir]);
  expect(stdout).toMatch(/alias\/fresh-cams\s+1\s+\S+\s+1\n/);
});
