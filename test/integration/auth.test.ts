/**
 * A server started with access keys checks SigV4 signatures: the AWS SDK clients and kvssink
 * with the right keys get through, wrong keys get clear 403 errors, and kvssink picks up
 * rotated credentials for its next connection without interrupting the upload.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CreateStreamCommand, DescribeStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import { GetMediaCommand, KinesisVideoMediaClient } from '@aws-sdk/client-kinesis-video-media';
import { KinesisVideoArchivedMediaClient } from '@aws-sdk/client-kinesis-video-archived-media';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { putMedia } from '../../lib/producer/put-media-client.js';
import { gstLaunch } from '../helpers/gst.js';
import { capturingLogger, listAllFragments, startTestServer, tempDir, type TestServer } from '../helpers/server.js';

const A = { accessKeyId: 'AKIAOPENKVSTESTAAAAA', secretAccessKey: 'secret-a/+xyz' };
const B = { accessKeyId: 'AKIAOPENKVSTESTBBBBB', secretAccessKey: 'secret-b/+xyz' };

let t: TestServer;
const { logger, logs } = capturingLogger();

beforeAll(async () => {
  t = await startTestServer({
    accessKeys: { [A.accessKeyId]: A.secretAccessKey, [B.accessKeyId]: B.secretAccessKey },
    logger,
  });
});
afterAll(() => t?.close());

const kvWith = (credentials: { accessKeyId: string; secretAccessKey: string }) =>
  new KinesisVideoClient({ endpoint: t.url, region: 'us-east-1', credentials, maxAttempts: 1 });

it('accepts the AWS SDK clients signing with a known key, including streaming GetMedia', async () => {
  await kvWith(A).send(new CreateStreamCommand({ StreamName: 'signed', DataRetentionInHours: 1 }));
  const d = await kvWith(B).send(new DescribeStreamCommand({ StreamName: 'signed' }));
  expect(d.StreamInfo?.StreamName).toBe('signed');
  const res = await new KinesisVideoMediaClient({ endpoint: t.url, region: 'us-east-1', credentials: A }).send(new GetMediaCommand({ StreamName: 'signed', StartSelector: { StartSelectorType: 'NOW' } }));
  expect(res.ContentType).toBe('video/webm');
  (res.Payload as { destroy?: () => void }).destroy?.();
});

it('refuses a wrong secret, an unknown key and a missing signature with 403 errors the SDK names', async () => {
  await expect(kvWith({ ...A, secretAccessKey: 'wrong' }).send(new DescribeStreamCommand({ StreamName: 'signed' }))).rejects.toMatchObject({
    name: 'InvalidSignatureException',
    $metadata: { httpStatusCode: 403 },
  });
  await expect(kvWith({ accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'x' }).send(new DescribeStreamCommand({ StreamName: 'signed' }))).rejects.toMatchObject({
    name: 'UnrecognizedClientException',
  });
  const raw = await fetch(`${t.url}/describeStream`, { method: 'POST', body: '{"StreamName":"signed"}' });
  expect(raw.status).toBe(403);
  expect(raw.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  // An unsigned PutMedia is refused before any body byte is read.
  const up = putMedia({ endpoint: t.url, streamName: 'signed' });
  expect(await up.status).toBe(403);
  up.destroy();
});

it('kvssink with a wrong secret reports 403 on the bus', async () => {
  const run = gstLaunch(`videotestsrc is-live=true ! x264enc tune=zerolatency ! h264parse ! kvssink stream-name=signed endpoint=${t.url}`, {
    AWS_ACCESS_KEY_ID: A.accessKeyId,
    AWS_SECRET_ACCESS_KEY: 'not-the-secret',
  });
  const msg = await run.waitFor((m) => m.name === 'kvssink-error');
  expect(msg.fields['http-status']).toBe('403');
  expect(msg.fields['service-code']).toBe('InvalidSignatureException');
  run.child.kill('SIGKILL');
  await run.exited;
});

it('kvssink uses rotated profile credentials for its next connection without losing frames', async () => {
  const home = tempDir();
  mkdirSync(path.join(home, '.aws'));
  const credentialsFile = path.join(home, '.aws', 'credentials');
  const write = (k: typeof A) =>
    writeFileSync(credentialsFile, `[default]\naws_access_key_id = ${k.accessKeyId}\naws_secret_access_key = ${k.secretAccessKey}\n`);
  write(A);
  const env: Record<string, string> = { HOME: home, KVSSINK_CONNECTION_ROTATION_SECONDS: '1' };
  for (const k of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_PROFILE']) env[k] = '';
  const run = gstLaunch(
    'videotestsrc is-live=true num-buffers=150 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ' +
      `x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast ! h264parse ! kvssink stream-name=rotated-creds endpoint=${t.url}`,
    env,
  );
  await run.waitFor((m) => m.name === 'kvssink-fragment-ack' && m.fields['event-type'] === 'PERSISTED');
  write(B);
  expect(await run.exited, run.output().slice(-3000)).toBe(0);
  const keys = logs.filter((l) => l.msg === 'PutMedia started' && l.stream === 'rotated-creds').map((l) => l.accessKeyId);
  expect(keys[0]).toBe(A.accessKeyId);
  expect(keys.at(-1)).toBe(B.accessKeyId);
  expect(run.messages.some((m) => m.name === 'kvssink-error')).toBe(false);
  // The test server's own clients sign with a key this server does not know: refused.
  await expect(listAllFragments(t.archived, 'rotated-creds')).rejects.toMatchObject({ name: 'UnrecognizedClientException' });
  const signed = await listAllFragments(new KinesisVideoArchivedMediaClient({ endpoint: t.url, region: 'us-east-1', credentials: B }), 'rotated-creds');
  expect(signed).toHaveLength(10);
});
