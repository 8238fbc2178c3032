/**
 * `gst-inspect-1.0 kvssink` is the element's reference: every pad, property (name, type,
 * default, range, flags) and the bus messages. A committed snapshot makes each change deliberate
 * (update with `npx vitest run test/integration/kvssink-inspect.test.ts -u`).
 */
import { spawnSync } from 'node:child_process';
import { expect, it } from 'vitest';
import { PLUGIN_DIR } from '../helpers/gst.js';

it('matches the committed gst-inspect-1.0 snapshot', async () => {
  const r = spawnSync('gst-inspect-1.0', ['kvssink'], {
    encoding: 'utf8',
    env: { ...process.env, GST_PLUGIN_PATH: PLUGIN_DIR, GST_PLUGIN_SYSTEM_PATH_1_0: '' },
  });
  expect(r.status, r.stderr).toBe(0);
  // The plugin's file name is machine-specific; file-start-time defaults to the time of creation.
  const text = r.stdout
    .replace(/^(\s*Filename\s+).*$/m, '$1<plugin>/libgstkvssink.so')
    .replace(/(file-start-time[\s\S]*?Default: )\d+/, '$1<now>');
  for (const name of ['kvssink-fragment-ack', 'kvssink-error', 'kvssink-connection', 'kvssink-dropped', 'kvssink-stats']) {
    expect(text).toContain(name);
  }
  await expect(text).toMatchFileSnapshot('../snapshots/gst-inspect-kvssink.txt');
});
