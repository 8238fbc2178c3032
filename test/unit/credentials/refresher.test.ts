/**
 * CredentialsRefresher with scripted providers on fake timers: when it refreshes, how it retries
 * and backs off, what it keeps, which events it emits, and that stop() leaves nothing behind.
 */
import { afterEach, beforeEach, describe, expect, expectTypeOf, it, vi } from 'vitest';
import type { Credentials } from '../../../lib/credentials/credentials.js';
import { CredentialsRefresher, type CredentialsRefresherEvents } from '../../../lib/credentials/refresher.js';
import { CredentialsError } from '../../../lib/errors.js';

const MIN = 60_000;
const T0 = new Date('2030-01-01T00:00:00Z').getTime();

/** Set number `n`, expiring `lifetimeMs` from now. */
const set = (n: number, lifetimeMs?: number): Credentials => ({
  accessKeyId: `AKIAREFRESHTEST0000${n}`,
  secretAccessKey: `secret-${n}`,
  sessionToken: `token-${n}`,
  ...(lifetimeMs !== undefined && { expiration: new Date(Date.now() + lifetimeMs) }),
});

/** A provider answering from a script: a Credentials factory or an Error per call (the last one repeats). */
function scripted(...steps: Array<(() => Credentials) | Error>) {
  const calls: number[] = [];
  const provider = vi.fn(async () => {
    calls.push(Date.now() - T0);
    const step = steps[Math.min(calls.length - 1, steps.length - 1)]!;
    if (step instanceof Error) throw step;
    return step();
  });
  return { provider, calls };
}

function record(r: CredentialsRefresher) {
  const credentials: string[] = [];
  const errors: CredentialsError[] = [];
  r.on('credentials', (c) => credentials.push(c.accessKeyId));
  r.on('error', (e) => errors.push(e));
  return { credentials, errors };
}

let refresher: CredentialsRefresher | undefined;

beforeEach(() => {
  vi.useFakeTimers({ now: T0 });
});
afterEach(() => {
  refresher?.stop();
  refresher = undefined;
  vi.useRealTimers();
});

describe('static credentials without expiration', () => {
  it('need no timer: resolved once, memoized', async () => {
    const { provider } = scripted(() => set(1));
    refresher = new CredentialsRefresher(provider);
    const events = record(refresher);
    expect((await refresher.start()).accessKeyId).toBe('AKIAREFRESHTEST00001');
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(24 * 60 * MIN);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00001');
    expect(provider).toHaveBeenCalledTimes(1);
    expect(events.credentials).toEqual(['AKIAREFRESHTEST00001']);
  });

  it('static values given directly: no timer either', async () => {
    refresher = new CredentialsRefresher({ accessKeyId: 'AKIASTATIC', secretAccessKey: 's' });
    await refresher.start();
    expect(vi.getTimerCount()).toBe(0);
    expect(refresher.latest).toEqual({ accessKeyId: 'AKIASTATIC', secretAccessKey: 's' });
  });
});

describe('refresh before expiry', () => {
  it('asks the provider again 5 minutes before expiration and emits the new set', async () => {
    const { provider, calls } = scripted(() => set(1, 15 * MIN), () => set(2, 15 * MIN), () => set(3, 15 * MIN));
    refresher = new CredentialsRefresher(provider);
    const events = record(refresher);
    await refresher.start();

    await vi.advanceTimersByTimeAsync(10 * MIN - 1);
    expect(provider).toHaveBeenCalledTimes(1);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00001');

    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 10 * MIN]);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00002');

    // The next refresh follows the new set's expiration (10 + 15 - 5 = 20 min).
    await vi.advanceTimersByTimeAsync(10 * MIN);
    expect(calls).toEqual([0, 10 * MIN, 20 * MIN]);
    expect(events.credentials).toEqual(['AKIAREFRESHTEST00001', 'AKIAREFRESHTEST00002', 'AKIAREFRESHTEST00003']);
    expect(events.errors).toEqual([]);
  });

  it('honours refreshBeforeExpiryMs', async () => {
    const { provider, calls } = scripted(() => set(1, 60 * MIN), () => set(2, 60 * MIN));
    refresher = new CredentialsRefresher(provider, { refreshBeforeExpiryMs: 15 * MIN });
    await refresher.start();
    await vi.advanceTimersByTimeAsync(45 * MIN - 1);
    expect(provider).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 45 * MIN]);
  });

  it('a provider handing back the same set is asked again later, not in a loop, and emits nothing new', async () => {
    const first = set(1, 15 * MIN);
    const { provider, calls } = scripted(
      () => first,
      () => first,
      () => set(2, 15 * MIN),
    );
    refresher = new CredentialsRefresher(provider);
    const events = record(refresher);
    await refresher.start();
    await vi.advanceTimersByTimeAsync(10 * MIN); // refresh: the same set, 5 min left
    expect(calls).toEqual([0, 10 * MIN]);
    // Asked again after half the remaining life (2.5 min), not every tick.
    await vi.advanceTimersByTimeAsync(2.5 * MIN - 1);
    expect(provider).toHaveBeenCalledTimes(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 10 * MIN, 12.5 * MIN]);
    expect(events.credentials).toEqual(['AKIAREFRESHTEST00001', 'AKIAREFRESHTEST00002']);
  });

  it('credentials expiring decades ahead do not overflow the timer into a refresh loop', async () => {
    const { provider } = scripted(() => set(1, 40 * 365 * 24 * 60 * MIN));
    refresher = new CredentialsRefresher(provider);
    await refresher.start();
    await vi.advanceTimersByTimeAsync(60 * 24 * 60 * MIN); // 60 days: several long timer steps
    expect(provider).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(1);
  });
});

describe('failures', () => {
  it('retries with exponential backoff from 10 s, keeps the last good set while valid, then recovers', async () => {
    const down = new Error('STS unreachable');
    const { provider, calls } = scripted(
      () => set(1, 15 * MIN),
      down,
      down,
      down,
      () => set(2, 15 * MIN),
    );
    refresher = new CredentialsRefresher(provider);
    const events = record(refresher);
    await refresher.start();

    await vi.advanceTimersByTimeAsync(10 * MIN);
    expect(calls).toEqual([0, 600_000]);
    expect(events.errors).toHaveLength(1);
    const err = events.errors[0]!;
    expect(err).toBeInstanceOf(CredentialsError);
    expect(err.code).toBe('CREDENTIALS_REFRESH_FAILED');
    expect(err.retryable).toBe(true);
    expect((err.cause as CredentialsError).code).toBe('CREDENTIALS_UNAVAILABLE');
    expect((err.cause as CredentialsError).cause).toBe(down);
    expect(err.message).toBe(
      'Refreshing credentials failed (attempt 1): Could not get credentials from the credentials provider: STS unreachable. ' +
        'Retrying in 10 s; keeping the current set, valid until 2030-01-01T00:15:00.000Z.',
    );
    // The last good set is still served, and current() does not hammer the provider.
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00001');
    expect(provider).toHaveBeenCalledTimes(2);

    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls.at(-1)).toBe(610_000);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(calls.at(-1)).toBe(630_000);
    await vi.advanceTimersByTimeAsync(39_999);
    expect(provider).toHaveBeenCalledTimes(4);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual([0, 600_000, 610_000, 630_000, 670_000]);
    expect(events.errors.map((e) => e.message.match(/attempt (\d+)/)![1])).toEqual(['1', '2', '3']);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00002');
    expect(events.credentials).toEqual(['AKIAREFRESHTEST00001', 'AKIAREFRESHTEST00002']);

    // Success resets the backoff: the next refresh is 5 min before the new expiration.
    await vi.advanceTimersByTimeAsync(10 * MIN - 1);
    expect(provider).toHaveBeenCalledTimes(5);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls.at(-1)).toBe(670_000 + 10 * MIN);
  });

  it('caps the backoff at maxRetryIntervalMs and never tries more often than minRetryIntervalMs', async () => {
    const { provider, calls } = scripted(() => set(1, 15 * MIN), new Error('down'));
    refresher = new CredentialsRefresher(provider, { minRetryIntervalMs: 10_000, maxRetryIntervalMs: 30_000 });
    await refresher.start();
    await vi.advanceTimersByTimeAsync(10 * MIN + 3 * MIN);
    const gaps = calls.slice(2).map((t, i) => t - calls[i + 1]!);
    expect(gaps.slice(0, 3)).toEqual([10_000, 20_000, 30_000]);
    expect(new Set(gaps.slice(3))).toEqual(new Set([30_000]));
  });

  it('once the kept set has expired, current() asks the provider itself and throws its error', async () => {
    const { provider } = scripted(() => set(1, 15 * MIN), new Error('still down'));
    refresher = new CredentialsRefresher(provider);
    const events = record(refresher);
    await refresher.start();
    await vi.advanceTimersByTimeAsync(14 * MIN);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00001');
    await vi.advanceTimersByTimeAsync(1 * MIN);
    expect(refresher.latest).toBeUndefined();
    const before = provider.mock.calls.length;
    await expect(refresher.current()).rejects.toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE', message: expect.stringContaining('still down') });
    expect(provider).toHaveBeenCalledTimes(before + 1);
    // Background attempts go on, and now say that nothing valid is left.
    await vi.advanceTimersByTimeAsync(MIN);
    expect(provider.mock.calls.length).toBeGreaterThan(before + 1);
    expect(events.errors.at(-1)!.message).toMatch(/no valid credentials are left\.$/);
  });

  it('start() rejects when there are no first credentials, and stays stopped', async () => {
    const { provider } = scripted(new Error('nothing configured'));
    refresher = new CredentialsRefresher(provider);
    await expect(refresher.start()).rejects.toMatchObject({ code: 'CREDENTIALS_UNAVAILABLE' });
    expect(refresher.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('without an error listener a failed refresh is not thrown anywhere', async () => {
    const { provider } = scripted(() => set(1, 15 * MIN), new Error('down'));
    refresher = new CredentialsRefresher(provider);
    await refresher.start();
    await vi.advanceTimersByTimeAsync(11 * MIN);
    expect(provider.mock.calls.length).toBeGreaterThan(2);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00001');
  });
});

describe('memoization and lifecycle', () => {
  it('concurrent callers share one provider call', async () => {
    let resolve!: (c: Credentials) => void;
    const provider = vi.fn(() => new Promise<Credentials>((r) => (resolve = r)));
    refresher = new CredentialsRefresher(provider);
    const all = Promise.all([refresher.current(), refresher.current(), refresher.start()]);
    resolve(set(1, 60 * MIN));
    const got = await all;
    expect(provider).toHaveBeenCalledTimes(1);
    expect(new Set(got.map((c) => c.accessKeyId))).toEqual(new Set(['AKIAREFRESHTEST00001']));
  });

  it('not started: current() refreshes on demand once the set is within the refresh window', async () => {
    const { provider, calls } = scripted(() => set(1, 15 * MIN), () => set(2, 15 * MIN));
    refresher = new CredentialsRefresher(provider);
    await refresher.current();
    expect(vi.getTimerCount()).toBe(0);
    vi.setSystemTime(T0 + 9 * MIN);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00001');
    vi.setSystemTime(T0 + 10 * MIN);
    expect((await refresher.current()).accessKeyId).toBe('AKIAREFRESHTEST00002');
    expect(calls).toEqual([0, 10 * MIN]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('stop() clears the timer: no more provider calls or events', async () => {
    const { provider } = scripted(() => set(1, 15 * MIN), () => set(2, 15 * MIN));
    refresher = new CredentialsRefresher(provider);
    const events = record(refresher);
    await refresher.start();
    expect(vi.getTimerCount()).toBe(1);
    refresher.stop();
    expect(refresher.running).toBe(false);
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(60 * MIN);
    expect(provider).toHaveBeenCalledTimes(1);
    expect(events.credentials).toEqual(['AKIAREFRESHTEST00001']);
  });

  it('stop() during backoff clears the retry timer too; start() again resumes', async () => {
    const { provider } = scripted(() => set(1, 15 * MIN), new Error('down'), () => set(2, 15 * MIN));
    refresher = new CredentialsRefresher(provider);
    record(refresher);
    await refresher.start();
    await vi.advanceTimersByTimeAsync(10 * MIN);
    expect(vi.getTimerCount()).toBe(1); // the retry
    refresher.stop();
    expect(vi.getTimerCount()).toBe(0);
    await vi.advanceTimersByTimeAsync(MIN);
    expect(provider).toHaveBeenCalledTimes(2);
    // Restarted inside the refresh window: refreshed at once.
    expect((await refresher.start()).accessKeyId).toBe('AKIAREFRESHTEST00002');
    expect(provider).toHaveBeenCalledTimes(3);
    expect(vi.getTimerCount()).toBe(1);
  });

  it('restarted inside the refresh window while the provider fails: the kept set is served and retried in 10 s', async () => {
    const { provider, calls } = scripted(() => set(1, 15 * MIN), new Error('down'), () => set(2, 15 * MIN));
    refresher = new CredentialsRefresher(provider);
    await refresher.current();
    vi.setSystemTime(T0 + 11 * MIN);
    expect((await refresher.start()).accessKeyId).toBe('AKIAREFRESHTEST00001');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(calls).toEqual([0, 11 * MIN, 11 * MIN + 10_000]);
    expect(refresher.latest?.accessKeyId).toBe('AKIAREFRESHTEST00002');
  });

  it('refuses unknown or negative options', () => {
    expect(() => new CredentialsRefresher(undefined, { refreshBeforeExpiryMs: -1 })).toThrow(
      'CredentialsRefresher option refreshBeforeExpiryMs must be a finite number of ms >= 0; received -1.',
    );
    expect(() => new CredentialsRefresher(undefined, { refreshBefore: 1 } as never)).toThrow('Unknown CredentialsRefresher option: refreshBefore.');
    expect(() => new CredentialsRefresher(undefined, { minRetryIntervalMs: 5, maxRetryIntervalMs: 1 })).toThrow(
      'CredentialsRefresher option maxRetryIntervalMs (1) must be >= minRetryIntervalMs (5).',
    );
  });
});

it('its timers do not keep the process alive', async () => {
  vi.useRealTimers();
  const { provider } = scripted(() => set(1, 60 * MIN));
  refresher = new CredentialsRefresher(provider);
  const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  await refresher.start();
  const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
  expect(after).toBe(before);
});

it('typed events', () => {
  const r = new CredentialsRefresher({ accessKeyId: 'A', secretAccessKey: 'B' });
  expectTypeOf<CredentialsRefresherEvents['credentials']>().toEqualTypeOf<[credentials: Credentials]>();
  expectTypeOf<CredentialsRefresherEvents['error']>().toEqualTypeOf<[error: CredentialsError]>();
  expectTypeOf(r.on<'credentials'>).parameter(1).parameter(0).toEqualTypeOf<Credentials>();
  expectTypeOf(r.current).returns.resolves.toEqualTypeOf<Credentials>();
});
