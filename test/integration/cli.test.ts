/**
 * `openkvs serve` as users run it: one ready line, then a graceful stop on SIGINT/SIGTERM with
 * uploads and readers open.
 */
import { spawnSync } from 'node:child_process';
import { CreateStreamCommand, ListStreamsCommand } from '@aws-sdk/client-kinesis-video';
import { expect, it } from 'vitest';
import { putMedia } from '../../lib/producer/put-media-client.js';
import { h264Fragments } from '../helpers/media.js';
import { clusters } from '../helpers/producer.js';
import { clientsFor, spawnServer, tempDir } from '../helpers/server.js';

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  it(`stops gracefully on ${signal} with an upload and a reader open, keeping what was persisted`, async () => {
    const dataDir = tempDir();
    const { child, url } = await spawnServer(dataDir, 0);
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const c = clientsFor(url);
    await c.kv.send(new CreateStreamCommand({ StreamName: 'cli', DataRetentionInHours: 1 }));
    const frags = await h264Fragments();

    const reader = await fetch(`${url}/getMedia`, {
      method: 'POST',
      body: JSON.stringify({ StreamName: 'cli', StartSelector: { StartSelectorType: 'NOW' } }),
    });
    const readerEnded = (async () => {
      for await (const _ of reader.body!) {
        // drain until the server ends the response
      }
      return true;
    })().catch(() => true);

    let persisted = 0;
    const upload = putMedia({
      endpoint: url,
      streamName: 'cli',
      onAck: (a) => {
        if (a.EventType === 'PERSISTED') persisted++;
      },
    });
    await upload.write(frags.header);
    for (const cl of clusters(frags, { from: 0, to: 2 })) await upload.write(cl);
    while (persisted < 1) await new Promise((r) => setTimeout(r, 20));

    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill(signal);
    expect(await exited).toBe(0);
    expect(await readerEnded).toBe(true);
    await upload.done;

    // Restarted on the same data: the stream and the persisted fragment are there.
    const again = await spawnServer(dataDir, 0);
    const listed = await clientsFor(again.url).kv.send(new ListStreamsCommand({}));
    expect(listed.StreamInfoList?.map((s) => s.StreamName)).toEqual(['cli']);
    const frag = await fetch(`${again.url}/listFragments`, {
      method: 'POST',
      body: JSON.stringify({
        StreamName: 'cli',
        FragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: 0, EndTimestamp: Date.now() / 1000 + 60 } },
      }),
    }).then((r) => r.json() as Promise<{ Fragments: unknown[] }>);
    expect(frag.Fragments.length).toBeGreaterThanOrEqual(persisted);
    again.child.kill('SIGKILL');
  });
}

it('refuses bad flags with a clear message and a non-zero exit', () => {
  const r = spawnSync(process.execPath, ['dist/lib/cli/main.js', 'serve', '--port', 'abc'], { encoding: 'utf8' });
  expect(r.status).not.toBe(0);
  expect(r.stderr).toMatch(/port/);
});
