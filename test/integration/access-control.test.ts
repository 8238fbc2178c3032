/**
 * Users and policies: `openkvs users add` closes an open server at once; every refusal (wrong
 * key, wrong signature, clock skew, replay, missing/wrong/expired session token, an action or
 * stream outside the policy) is the error the AWS SDK names, logged, with nothing served; a
 * camera user limited to its streams uploads with kvssink; temporary credentials work, narrowed
 * by their scope-down policy.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateStreamCommand, DescribeStreamCommand, KinesisVideoClient, ListStreamsCommand } from '@aws-sdk/client-kinesis-video';
import { GetMediaCommand, KinesisVideoMediaClient } from '@aws-sdk/client-kinesis-video-media';
import { KinesisVideoArchivedMediaClient } from '@aws-sdk/client-kinesis-video-archived-media';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Sha256 } from '../../bench/lib/security.js';
import { IdentityStore } from '../../lib/service/auth/identities.js';
import { Keyring } from '../../lib/service/storage/keyring.js';
import { gstLaunch } from '../helpers/gst.js';
import { capturingLogger, listAllFragments, startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
const cli = path.resolve('dist/lib/cli/main.js');
let t: TestServer;
const { logger, logs } = capturingLogger();

interface Keys { accessKeyId: string; secretAccessKey: string; sessionToken?: string }
let admin: Keys;
let camera: Keys;

async function addUser(name: string, ...flags: string[]): Promise<Keys> {
  const { stdout } = await run(process.execPath, [cli, 'users', 'add', name, '--data-dir', t.dataDir, ...flags]);
  return { accessKeyId: /AWS_ACCESS_KEY_ID=(\S+)/.exec(stdout)![1]!, secretAccessKey: /AWS_SECRET_ACCESS_KEY=(\S+)/.exec(stdout)![1]! };
}

const config = (credentials: Keys, extra: object = {}) => ({ endpoint: t.url, region: 'us-east-1', credentials, maxAttempts: 1, ...extra });
const kv = (c: Keys, extra: object = {}) => new KinesisVideoClient(config(c, extra));
const refusedWith = (name: string, status = 403) => ({ name, $metadata: expect.objectContaining({ httpStatusCode: status }) });

/** A request signed once by @smithy/signature-v4 (what the SDK does), to send as often as we like. */
async function signed(c: Keys, op: string, body: object): Promise<{ url: string; init: RequestInit }> {
  const url = new URL(`${t.url}/${op}`);
  const signer = new SignatureV4({ credentials: c, region: 'us-east-1', service: 'kinesisvideo', sha256: Sha256 });
  const req = await signer.sign({
    method: 'POST', protocol: 'http:', hostname: url.hostname, port: Number(url.port), path: url.pathname, query: {},
    headers: { host: url.host, 'content-type': 'application/json' }, body: JSON.stringify(body),
  });
  return { url: url.toString(), init: { method: 'POST', headers: req.headers, body: req.body as string } };
}

beforeAll(async () => {
  t = await startTestServer({ logger, logLevel: 'warn' });
  // Open until the first user exists.
  await t.kv.send(new CreateStreamCommand({ StreamName: 'door-1', DataRetentionInHours: 1 }));
  admin = await addUser('admin');
  camera = await addUser('door-camera', '--allow', 'PutMedia,GetDataEndpoint,DescribeStream:door-*');
  await kv(admin).send(new CreateStreamCommand({ StreamName: 'garage', DataRetentionInHours: 1 }));
});
afterAll(() => t?.close());

it('requires signatures as soon as a user exists, and names each bad signature', async () => {
  const raw = await fetch(`${t.url}/listStreams`, { method: 'POST', body: '{}' });
  expect(raw.status).toBe(403);
  expect(raw.headers.get('x-amzn-errortype')).toBe('MissingAuthenticationTokenException');
  expect(await raw.text()).not.toContain('door-1');
  await expect(kv({ accessKeyId: 'OKIANOSUCHKEY', secretAccessKey: 'x' }).send(new ListStreamsCommand({}))).rejects.toMatchObject(refusedWith('UnrecognizedClientException'));
  await expect(kv({ ...admin, secretAccessKey: `${admin.secretAccessKey}x` }).send(new ListStreamsCommand({}))).rejects.toMatchObject(refusedWith('InvalidSignatureException'));
  // A client clock 10 minutes slow: outside the 5-minute window.
  await expect(kv(admin, { systemClockOffset: -10 * 60_000 }).send(new ListStreamsCommand({}))).rejects.toMatchObject({
    name: 'InvalidSignatureException',
    message: expect.stringMatching(/Signature expired/),
  });
  const listed = await kv(admin).send(new ListStreamsCommand({}));
  expect(listed.StreamInfoList?.map((s) => s.StreamName).sort()).toEqual(['door-1', 'garage']);
  const refusals = logs.filter((l) => l.msg === 'request refused').map((l) => l.code);
  expect(refusals).toEqual(expect.arrayContaining(['MissingAuthenticationTokenException', 'UnrecognizedClientException', 'InvalidSignatureException']));
});

it('refuses a replayed request, while identical SDK calls in the same second both pass', async () => {
  const { url, init } = await signed(admin, 'describeStream', { StreamName: 'garage' });
  const first = await fetch(url, init);
  expect(first.status).toBe(200);
  const again = await fetch(url, init);
  expect(again.status).toBe(403);
  expect(again.headers.get('x-amzn-errortype')).toBe('InvalidSignatureException');
  expect(await again.text()).toMatch(/replayed/);
  const client = kv(admin);
  const both = await Promise.all([client.send(new DescribeStreamCommand({ StreamName: 'garage' })), client.send(new DescribeStreamCommand({ StreamName: 'garage' }))]);
  expect(both.map((d) => d.StreamInfo?.StreamName)).toEqual(['garage', 'garage']);
});

it('lets a user do only what its policy allows, on its streams only', async () => {
  await expect(kv(camera).send(new DescribeStreamCommand({ StreamName: 'door-1' }))).resolves.toMatchObject({ StreamInfo: { StreamName: 'door-1' } });
  await expect(kv(camera).send(new DescribeStreamCommand({ StreamName: 'garage' }))).rejects.toMatchObject(refusedWith('AccessDeniedException', 401));
  await expect(kv(camera).send(new ListStreamsCommand({}))).rejects.toMatchObject(refusedWith('AccessDeniedException', 401));
  await expect(kv(camera).send(new CreateStreamCommand({ StreamName: 'door-2' }))).rejects.toMatchObject({ name: 'AccessDeniedException', message: expect.stringMatching(/kinesisvideo:CreateStream on resource arn:aws:kinesisvideo:us-east-1:000000000000:stream\/door-2\/\*/) });
  const media = new KinesisVideoMediaClient(config(camera));
  await expect(media.send(new GetMediaCommand({ StreamName: 'door-1', StartSelector: { StartSelectorType: 'NOW' } }))).rejects.toMatchObject(refusedWith('AccessDeniedException', 401));
  const denial = logs.find((l) => l.msg === 'request refused' && l.operation === 'GetMedia');
  expect(denial).toMatchObject({ user: 'door-camera', code: 'AccessDeniedException' });
});

it('kvssink signing as the camera user uploads to its stream and is refused another', async () => {
  const env = { AWS_ACCESS_KEY_ID: camera.accessKeyId, AWS_SECRET_ACCESS_KEY: camera.secretAccessKey };
  const ok = gstLaunch(
    'videotestsrc num-buffers=60 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ' +
      `x264enc key-int-max=15 tune=zerolatency speed-preset=ultrafast ! h264parse ! kvssink stream-name=door-1 endpoint=${t.url}`,
    env,
  );
  expect(await ok.exited, ok.output().slice(-2000)).toBe(0);
  const listed = await listAllFragments(new KinesisVideoArchivedMediaClient(config(admin)), 'door-1');
  expect(listed).toHaveLength(4);
  const refused = gstLaunch(`videotestsrc is-live=true ! x264enc tune=zerolatency ! h264parse ! kvssink stream-name=garage endpoint=${t.url}`, env);
  const msg = await refused.waitFor((m) => m.name === 'kvssink-error');
  expect(msg.fields['service-code']).toBe('AccessDeniedException');
  refused.child.kill('SIGKILL');
  await refused.exited;
});

it('issues temporary credentials narrowed by a scope-down policy, and refuses bad or expired tokens', async () => {
  const scope = JSON.stringify({ Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'kinesisvideo:DescribeStream', Resource: 'arn:aws:kinesisvideo:*:*:stream/garage' }] });
  const { url, init } = await signed(admin, 'issueCredentials', { DurationSeconds: 900, Policy: scope });
  const res = await fetch(url, init);
  expect(res.status).toBe(200);
  const { Credentials: c } = (await res.json()) as { Credentials: { AccessKeyId: string; SecretAccessKey: string; SessionToken: string; Expiration: number } };
  expect(c.AccessKeyId).toMatch(/^OSIA/);
  expect(c.Expiration * 1000).toBeGreaterThan(Date.now() + 890_000);
  const temp = { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
  await expect(kv(temp).send(new DescribeStreamCommand({ StreamName: 'garage' }))).resolves.toMatchObject({ StreamInfo: { StreamName: 'garage' } });
  // The admin may list streams, these credentials may not (the scope narrows).
  await expect(kv(temp).send(new ListStreamsCommand({}))).rejects.toMatchObject(refusedWith('AccessDeniedException', 401));
  const { sessionToken: _dropped, ...withoutToken } = temp;
  await expect(kv(withoutToken).send(new DescribeStreamCommand({ StreamName: 'garage' }))).rejects.toMatchObject(refusedWith('UnrecognizedClientException'));
  await expect(kv({ ...temp, sessionToken: `${temp.sessionToken.slice(0, -4)}AAAA` }).send(new DescribeStreamCommand({ StreamName: 'garage' }))).rejects.toMatchObject(refusedWith('UnrecognizedClientException'));
  // Temporary credentials cannot mint more.
  const more = await signed(temp, 'issueCredentials', {});
  (more.init.headers as Record<string, string>)['x-amz-security-token'] ??= temp.sessionToken;
  expect((await fetch(more.url, more.init)).status).toBeGreaterThanOrEqual(400);

  // Credentials that expired (issued two hours ago for 15 minutes): ExpiredTokenException.
  const { default: Database } = await import('better-sqlite3');
  const db = new Database(path.join(t.dataDir, 'index.sqlite'));
  const expired = new IdentityStore(db, Keyring.open(path.join(t.dataDir, 'keys', 'master-keys.json'), '')).issueSession('admin', 900, undefined, Date.now() - 2 * 3_600_000);
  db.close();
  await expect(kv(expired).send(new DescribeStreamCommand({ StreamName: 'garage' }))).rejects.toMatchObject(refusedWith('ExpiredTokenException'));
});

it('users list shows policies; users remove revokes at once; policy replaces', async () => {
  const list = (await run(process.execPath, [cli, 'users', 'list', '--data-dir', t.dataDir])).stdout;
  expect(list).toMatch(/door-camera\s+OKIA\w+ .*kinesisvideo:PutMedia/);
  expect(list).not.toContain(camera.secretAccessKey);
  await run(process.execPath, [cli, 'users', 'policy', 'door-camera', '--allow', 'DescribeStream:garage', '--data-dir', t.dataDir]);
  await expect(kv(camera).send(new DescribeStreamCommand({ StreamName: 'garage' }))).resolves.toBeDefined();
  await run(process.execPath, [cli, 'users', 'remove', 'door-camera', '--data-dir', t.dataDir]);
  await expect(kv(camera).send(new DescribeStreamCommand({ StreamName: 'garage' }))).rejects.toMatchObject(refusedWith('UnrecognizedClientException'));
  await expect(run(process.execPath, [cli, 'users', 'add', 'x', '--policy', '/nonexistent.json', '--data-dir', t.dataDir])).rejects.toMatchObject({ stderr: expect.stringMatching(/cannot read the policy file/) });
});

it('refuses to serve a network interface anonymously', async () => {
  const { startServer } = await import('../../lib/service/server.js');
  const { tempDir } = await import('../helpers/server.js');
  await expect(startServer({ host: '0.0.0.0', port: 0, dataDir: tempDir(), logLevel: 'silent' })).rejects.toThrow(/anyone on the network.*--allow-anonymous/);
});
