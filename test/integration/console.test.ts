/**
 * The web console in a real browser: Debian's headless Chromium driven by playwright-core against
 * a live-paced H.264 stream (ABSOLUTE timecodes = wall clock, one fragment per second).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CreateStreamCommand } from '@aws-sdk/client-kinesis-video';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterElement } from '../../lib/mkv/fragments.js';
import { putMedia } from '../../lib/producer/put-media-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { h264Fragments } from '../helpers/media.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/browser.js';

const STREAM = 'console-cam';
const HISTORY_S = 12; // fragments already in the past when the test starts

describe('web console', () => {
  let t: TestServer;
  let browser: Browser | undefined;
  let t0 = 0;
  let stopIngest = false;
  let ingest: Promise<void> | undefined;

  beforeAll(async () => {
    t = await startTestServer();
    await t.kv.send(new CreateStreamCommand({ StreamName: STREAM, DataRetentionInHours: 24, MediaType: 'video/h264' }));
    const frags = await h264Fragments({ frames: 30 * 60, fps: 30, gop: 30, width: 320, height: 240 });
    t0 = Date.now() - HISTORY_S * 1000;
    const session = putMedia({ endpoint: t.url, streamName: STREAM, timecodeType: 'ABSOLUTE' });
    await session.write(frags.header);
    // Fragment i covers [t0 + i s, t0 + (i+1) s): send it once that second has passed (the past at once).
    ingest = (async () => {
      for (const c of frags.clusters) {
        if (stopIngest) break;
        const due = t0 + c.timecode + 1000;
        if (due > Date.now()) await sleep(due - Date.now());
        await session.write(clusterElement(c, t0 + c.timecode));
      }
      await session.end();
    })();
    if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });

  afterAll(async () => {
    stopIngest = true;
    await browser?.close();
    await ingest?.catch(() => {});
    await t?.close();
  });

  it('serves the console page, its modules and hls.js', async () => {
    const html = await fetch(`${t.url}/`);
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await html.text()).toContain('/console/app.js');
    const app = await fetch(`${t.url}/console/app.js`);
    expect(app.headers.get('content-type')).toMatch(/^text\/javascript/);
    const hls = await fetch(`${t.url}/console/vendor/hls.min.js`);
    expect(hls.status).toBe(200);
    expect((await hls.text()).length).toBeGreaterThan(100_000);
    expect((await fetch(`${t.url}/console/../../server.ts`)).status).toBe(404);
    expect((await fetch(`${t.url}/console/nope.js`)).status).toBe(404);
  });

  const value = <T>(page: Page, expr: string) => page.evaluate<T>(expr);
  const video = (page: Page) =>
    value<{ time: number; frames: number; date: number | null }>(page, `(() => {
      const v = document.getElementById('video');
      const d = window.openkvsConsole.hls && window.openkvsConsole.hls.playingDate;
      return { time: v.currentTime, frames: v.getVideoPlaybackQuality().totalVideoFrames, date: d ? d.getTime() : null };
    })()`);

  it.skipIf(!existsSync(CHROMIUM))('lists the stream, plays it live and seeks history from the timeline', async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } });
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    try {
      await page.goto(`${t.url}/`);
      const row = page.locator(`tr[data-stream="${STREAM}"]`);
      await row.waitFor({ timeout: 10_000 });
      await expect.poll(() => row.locator('td').allTextContents(), { timeout: 10_000 }).toEqual([
        STREAM, 'ACTIVE', '24 h', 'video/h264', expect.stringMatching(/^\d{4}-/), expect.stringMatching(/bit\/s$/),
      ]);

      // Live view: currentTime advances and frames are decoded.
      await row.click();
      await page.locator('#video').waitFor();
      await expect.poll(async () => (await video(page)).frames, { timeout: 20_000 }).toBeGreaterThan(10);
      const a = await video(page);
      await sleep(3000);
      const b = await video(page);
      expect(b.time - a.time).toBeGreaterThan(2);
      expect(b.frames - a.frames).toBeGreaterThan(45); // 30 fps for 3 s
      expect(b.date).not.toBeNull();
      expect(Date.now() - b.date!).toBeLessThan(6000); // near the live edge

      // Timeline: click 4.5 s after the stream's first frame (well in the past).
      await expect.poll(() => page.locator('#bars .bar').count(), { timeout: 10_000 }).toBeGreaterThan(0);
      const target = t0 + 4500;
      const [from] = await value<[number, number]>(page, 'window.openkvsConsole.range');
      const box = (await page.locator('#timeline').boundingBox())!;
      const msPerPx = 3_600_000 / box.width;
      await page.mouse.click(box.x + ((target - from) / 3_600_000) * box.width, box.y + box.height / 2);
      const clickedAt = Date.now();
      await expect.poll(() => value<string>(page, 'window.openkvsConsole.mode')).toBe('history');
      const seek = await value<number>(page, 'window.openkvsConsole.seekTarget');
      expect(Math.abs(seek - target)).toBeLessThanOrEqual(msPerPx);
      // The history player shows the clicked time (within a fragment, plus what has played since
      // the click). Polled: until the history player has started, the live one may still answer.
      const showsClickedTime = async () => {
        const d = (await video(page)).date;
        return d !== null && d - seek >= -1000 && d - seek <= 1000 + (Date.now() - clickedAt);
      };
      await expect.poll(showsClickedTime, { timeout: 15_000 }).toBe(true);
      const h = await video(page);
      expect(await page.locator('#mode').textContent()).toMatch(/^history from/);
      // And it plays on from there.
      await sleep(1500);
      const h2 = await video(page);
      if (process.env.CONSOLE_DEBUG) console.log({ a, b, h, h2, seek, target, msPerPx });
      expect(h2.date!).toBeGreaterThan(h.date!);
      expect(h2.frames).toBeGreaterThan(h.frames);

      // Download clip: the click filled [t, t + 30 s]; GetClip -> blob -> a download of an MP4.
      expect(Date.parse(await page.locator('#clip-from').inputValue())).toBe(seek);
      const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#clip-download').click()]);
      expect(download.suggestedFilename()).toMatch(new RegExp(`^${STREAM}-.*\\.mp4$`));
      const mp4 = await readFile((await download.path())!);
      expect(mp4.subarray(4, 8).toString('latin1')).toBe('ftyp');
      expect(await page.locator('#clip-status').textContent()).toMatch(/MB$/);
      await page.screenshot({ path: path.join(os.tmpdir(), 'openkvs-console.png') });
    } catch (e) {
      console.error(logs.join('\n'));
      throw e;
    } finally {
      await page.close();
    }
  }, 60_000);
});
