/**
 * The motion detector of docs/consumer.md (docs/examples/motion-detector.ts), run as a user
 * would: it prints motion for a moving test pattern and nothing for a still one.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awsEnv, gstLaunch } from '../helpers/gst.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

const run = promisify(execFile);
let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
  for (const [name, pattern] of [['still', 'smpte'], ['moving', 'ball']] as const) {
    await t.createStream(name);
    const up = gstLaunch(
      `videotestsrc pattern=${pattern} num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 ! x264enc key-int-max=30 speed-preset=ultrafast ! h264parse ! kvssink stream-name=${name} endpoint=${t.url}`,
      awsEnv,
    );
    expect(await up.exited, up.output()).toBe(0);
  }
});
afterAll(() => t?.close());

const detect = async (stream: string) => {
  const example = path.resolve('dist/docs/examples/motion-detector.js');
  const { stdout } = await run(process.execPath, [example, '--stream', stream, '--endpoint', t.url, '--start', 'earliest', '--seconds', '2.5'], {
    env: { ...process.env, ...awsEnv },
  });
  return stdout.trim().split('\n').filter(Boolean);
};

it('prints the timestamps of motion in a moving test pattern', async () => {
  const lines = await detect('moving');
  expect(lines.length).toBeGreaterThanOrEqual(8); // 5 images/s over 2.5 s, each differing from the last
  const times = lines.map((l) => Date.parse(/^motion (\S+) score/.exec(l)![1]!));
  expect(times.every((ms, i) => i === 0 || ms - times[i - 1]! >= 199)).toBe(true);
  expect(Math.abs(times[0]! - Date.now())).toBeLessThan(120_000);
});

it('prints nothing for a still picture', async () => {
  expect(await detect('still')).toEqual([]);
});
