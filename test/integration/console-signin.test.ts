/**
 * The web console on a server with users, in headless Chromium: it asks to sign in, refuses a
 * wrong secret, lists streams once signed in with signed requests (keeping only temporary
 * credentials, never the secret), and asks again when the session expires.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { CreateStreamCommand, KinesisVideoClient } from '@aws-sdk/client-kinesis-video';
import Database from 'better-sqlite3';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IdentityStore } from '../../lib/service/auth/identities.js';
import { Keyring } from '../../lib/service/storage/keyring.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/browser.js';

let t: TestServer;
let browser: Browser | undefined;
let user: { accessKeyId: string; secretAccessKey: string };

beforeAll(async () => {
  t = await startTestServer();
  const db = new Database(path.join(t.dataDir, 'index.sqlite'));
  user = new IdentityStore(db, Keyring.open(path.join(t.dataDir, 'keys', 'master-keys.json'), '')).addUser('operator');
  db.close();
  await new KinesisVideoClient({ endpoint: t.url, region: 'us-east-1', credentials: user, maxAttempts: 1 }).send(new CreateStreamCommand({ StreamName: 'yard', DataRetentionInHours: 1 }));
  if (existsSync(CHROMIUM)) browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
});
afterAll(async () => {
  await browser?.close();
  await t?.close();
});

it.skipIf(!existsSync(CHROMIUM))('signs in with an access key, lists streams with signed calls, and asks again when the session expires', async () => {
  const page = await browser!.newPage();
  await page.goto(`${t.url}/`);
  await page.waitForSelector('#signin:not([hidden])');
  expect(await page.locator('#streams tbody tr').count()).toBe(0);

  await page.fill('#signin-key', user.accessKeyId);
  await page.fill('#signin-secret', 'not-the-secret');
  await page.click('#signin-form button');
  const errorText = () => page.locator('#signin-error').textContent();
  await expect.poll(errorText, { timeout: 10_000 }).toMatch(/InvalidSignatureException/);

  await page.fill('#signin-secret', user.secretAccessKey);
  await page.click('#signin-form button');
  await page.waitForSelector('#streams tbody tr');
  expect(await page.locator('#streams tbody tr').first().textContent()).toContain('yard');
  expect(await page.isHidden('#signin')).toBe(true);
  const stored = await page.evaluate<string>("sessionStorage.getItem('openkvs-session') ?? ''");
  expect(stored).toMatch(/"accessKeyId":"OSIA/);
  expect(stored).not.toContain(user.secretAccessKey);

  // The session runs out: the next call brings the sign-in form back.
  await page.evaluate(`(() => {
    const s = JSON.parse(sessionStorage.getItem('openkvs-session'));
    sessionStorage.setItem('openkvs-session', JSON.stringify({ ...s, expiresMs: Date.now() - 1 }));
  })()`);
  await page.reload();
  await expect.poll(errorText, { timeout: 10_000 }).toMatch(/expired/);
  expect(await page.isVisible('#signin')).toBe(true);
  await page.close();
});
