/**
 * GetMedia session limits: concurrent readers per stream, and the session's maximum duration.
 */
import { GetMediaCommand } from '@aws-sdk/client-kinesis-video-media';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ limits: { maxGetMediaConnections: 2, getMediaMaxDurationMs: 1500 } });
  await t.createStream('limited');
});
afterAll(() => t?.close());

const open = () => t.media.send(new GetMediaCommand({ StreamName: 'limited', StartSelector: { StartSelectorType: 'NOW' } }));

it('refuses readers beyond the per-stream connection limit, and admits one again when a reader leaves', async () => {
  const a = await open();
  const b = await open();
  await expect(open()).rejects.toMatchObject({ name: 'ConnectionLimitExceededException', $metadata: { httpStatusCode: 400 } });
  (a.Payload as unknown as { destroy(): void }).destroy();
  await new Promise((r) => setTimeout(r, 100));
  const c = await open();
  expect(c.ContentType).toBe('video/webm');
  for (const r of [b, c]) (r.Payload as unknown as { destroy(): void }).destroy();
});

it('ends a GetMedia session when it reaches its maximum duration', async () => {
  await new Promise((r) => setTimeout(r, 100));
  const res = await open();
  let bytes = 0;
  for await (const chunk of res.Payload as AsyncIterable<Uint8Array>) bytes += chunk.length;
  // No media on this stream: the loop ends only because the server closed the session.
  expect(bytes).toBe(0);
});
