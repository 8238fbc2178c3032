/**
 * A memoized credentials provider that refreshes before expiry, for long-running uploads: the
 * Pipeline pushes every new set into the running kvssink (`access-key`, `secret-key`,
 * `session-token`) without interrupting it.
 *
 * - `current()` returns the memoized set; it resolves afresh only when there is none, when the set
 *   has expired, or (when not started) when it is within the refresh window.
 * - `start()` resolves the first set and keeps it fresh with one unref'd timer: a refresh
 *   `refreshBeforeExpiryMs` (default 5 min) before expiration. A set without expiration (static
 *   keys, environment variables) needs no refresh: no timer at all.
 * - A failed refresh is retried with exponential backoff, from `minRetryIntervalMs` (default 10 s,
 *   also the shortest interval between any two attempts) doubling up to `maxRetryIntervalMs`
 *   (default 60 s); the last good set stays in use while it is valid.
 * - Events: `'credentials'` with each new set (the first one included; a provider handing back
 *   the same set again does not emit), `'error'` with a retryable `CREDENTIALS_REFRESH_FAILED`
 *   error (its `cause` is the provider's failure) for each failed background refresh. `'error'` is
 *   emitted only when someone listens: a failed refresh is retried and is not fatal by itself.
 */
import { EventEmitter } from 'node:events';
import { CredentialsError, OpenKvsError } from '../errors.js';
import { type Credentials, type CredentialsOption, type CredentialsProvider, toProvider } from './credentials.js';

export interface CredentialsRefresherEvents {
  credentials: [credentials: Credentials];
  error: [error: CredentialsError];
}

export interface CredentialsRefresherOptions {
  /** How long before expiration a set is refreshed, ms (default 300 000). */
  refreshBeforeExpiryMs?: number;
  /** First retry delay after a failure and the shortest interval between attempts, ms (default 10 000). */
  minRetryIntervalMs?: number;
  /** Longest retry delay, ms (default 60 000). */
  maxRetryIntervalMs?: number;
}

const DEFAULTS: Required<CredentialsRefresherOptions> = {
  refreshBeforeExpiryMs: 300_000,
  minRetryIntervalMs: 10_000,
  maxRetryIntervalMs: 60_000,
};

/** setTimeout fires at once for delays above 2^31-1 ms; longer waits are taken in steps. */
const MAX_TIMER_MS = 2_147_483_647;

function checkOptions(options: CredentialsRefresherOptions): Required<CredentialsRefresherOptions> {
  const unknown = Object.keys(options).filter((k) => !(k in DEFAULTS));
  if (unknown.length > 0) {
    throw new OpenKvsError('INVALID_ARGUMENT', `Unknown CredentialsRefresher option${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}.`);
  }
  const out = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof CredentialsRefresherOptions)[]) {
    const v = options[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new OpenKvsError('INVALID_ARGUMENT', `CredentialsRefresher option ${key} must be a finite number of ms >= 0; received ${String(v)}.`);
    }
    out[key] = v;
  }
  if (out.maxRetryIntervalMs < out.minRetryIntervalMs) {
    throw new OpenKvsError(
      'INVALID_ARGUMENT',
      `CredentialsRefresher option maxRetryIntervalMs (${out.maxRetryIntervalMs}) must be >= minRetryIntervalMs (${out.minRetryIntervalMs}).`,
    );
  }
  return out;
}

const sameSet = (a: Credentials | undefined, b: Credentials): boolean =>
  a !== undefined &&
  a.accessKeyId === b.accessKeyId &&
  a.secretAccessKey === b.secretAccessKey &&
  a.sessionToken === b.sessionToken &&
  a.expiration?.getTime() === b.expiration?.getTime();

const isExpired = (c: Credentials, now: number): boolean => c.expiration !== undefined && c.expiration.getTime() <= now;

export class CredentialsRefresher extends EventEmitter<CredentialsRefresherEvents> {
  readonly #provider: CredentialsProvider;
  readonly #options: Required<CredentialsRefresherOptions>;
  #credentials: Credentials | undefined;
  #inflight: Promise<Credentials> | undefined;
  #timer: NodeJS.Timeout | undefined;
  #started = false;
  /** Bumped by start/stop so callbacks of an earlier run do nothing. */
  #generation = 0;
  #failures = 0;

  /** `credentials` as `toProvider` takes them (static values are checked here). */
  constructor(credentials?: CredentialsOption, options: CredentialsRefresherOptions = {}) {
    super();
    this.#options = checkOptions(options);
    this.#provider = toProvider(credentials);
  }

  /** Whether background refresh is running. */
  get running(): boolean {
    return this.#started;
  }

  /** The memoized set if it has not expired, without resolving anything. */
  get latest(): Credentials | undefined {
    const c = this.#credentials;
    return c !== undefined && !isExpired(c, Date.now()) ? c : undefined;
  }

  /** The memoized set, resolved afresh when needed (see the file comment). */
  async current(): Promise<Credentials> {
    const c = this.latest;
    if (c !== undefined && (this.#started || !this.#inRefreshWindow(c))) return c;
    try {
      return await this.#fetch();
    } catch (err) {
      const still = this.latest;
      if (still !== undefined) return still;
      throw err;
    }
  }

  /**
   * Resolves the first set (a memoized one only if it is outside the refresh window) and starts
   * refreshing; rejects, and stays stopped, when there is no valid set.
   */
  async start(): Promise<Credentials> {
    if (this.#started) return this.current();
    this.#started = true;
    const generation = ++this.#generation;
    const cached = this.latest;
    if (cached !== undefined && !this.#inRefreshWindow(cached)) {
      this.#schedule(cached);
      return cached;
    }
    try {
      return await this.#fetch(); // scheduled by #accept
    } catch (err) {
      const kept = this.latest;
      if (generation !== this.#generation) {
        if (kept !== undefined) return kept;
        throw err;
      }
      if (kept === undefined) {
        this.#started = false;
        throw err;
      }
      this.#failures = 1;
      this.#arm(this.#options.minRetryIntervalMs);
      return kept;
    }
  }

  /** Stops refreshing and clears the timer; `current()` keeps working on demand. */
  stop(): void {
    this.#started = false;
    this.#generation++;
    this.#failures = 0;
    this.#clearTimer();
  }

  #inRefreshWindow(c: Credentials): boolean {
    return c.expiration !== undefined && c.expiration.getTime() - this.#options.refreshBeforeExpiryMs <= Date.now();
  }

  #fetch(): Promise<Credentials> {
    this.#inflight ??= this.#provider().then(
      (c) => {
        this.#inflight = undefined;
        this.#accept(c);
        return c;
      },
      (err: unknown) => {
        this.#inflight = undefined;
        throw err;
      },
    );
    return this.#inflight;
  }

  #accept(c: Credentials): void {
    const changed = !sameSet(this.#credentials, c);
    this.#credentials = c;
    if (this.#started) {
      this.#failures = 0;
      this.#schedule(c);
    }
    if (changed) this.#safely(() => this.emit('credentials', c));
  }

  /** A throwing listener is the application's bug, not a failed refresh: it surfaces as such. */
  #safely(emit: () => void): void {
    try {
      emit();
    } catch (err) {
      process.nextTick(() => {
        throw err;
      });
    }
  }

  /** Arms the timer for the refresh of `c`: none without expiration. */
  #schedule(c: Credentials): void {
    this.#clearTimer();
    if (c.expiration === undefined) return;
    const now = Date.now();
    const untilWindow = c.expiration.getTime() - this.#options.refreshBeforeExpiryMs - now;
    // A set that arrives already inside the refresh window (short-lived, or a caching provider
    // handing back the old set) is asked for again after half its remaining life, never sooner
    // than the minimum interval.
    const delay =
      untilWindow >= this.#options.minRetryIntervalMs
        ? untilWindow
        : Math.max(this.#options.minRetryIntervalMs, (c.expiration.getTime() - now) / 2);
    this.#arm(delay);
  }

  #arm(delay: number): void {
    this.#clearTimer();
    const generation = this.#generation;
    this.#timer = setTimeout(() => this.#onTimer(generation), Math.min(delay, MAX_TIMER_MS));
    this.#timer.unref();
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #onTimer(generation: number): void {
    this.#timer = undefined;
    if (generation !== this.#generation) return;
    const c = this.#credentials;
    if (c?.expiration !== undefined) {
      // A long wait taken in steps: not yet time.
      const untilWindow = c.expiration.getTime() - this.#options.refreshBeforeExpiryMs - Date.now();
      if (untilWindow > this.#options.minRetryIntervalMs) {
        this.#arm(untilWindow);
        return;
      }
    }
    this.#fetch().catch((err: unknown) => {
      if (generation !== this.#generation) return;
      this.#failures++;
      const delay = Math.min(this.#options.maxRetryIntervalMs, this.#options.minRetryIntervalMs * 2 ** (this.#failures - 1));
      this.#arm(delay);
      if (this.listenerCount('error') === 0) return;
      const kept = this.latest;
      const reason = (err instanceof Error ? err.message : String(err)).replace(/\.?$/, '.');
      const state =
        kept?.expiration !== undefined ? `keeping the current set, valid until ${kept.expiration.toISOString()}` : 'no valid credentials are left';
      const error = new CredentialsError(
        'CREDENTIALS_REFRESH_FAILED',
        `Refreshing credentials failed (attempt ${this.#failures}): ${reason} Retrying in ${delay / 1000} s; ${state}.`,
        { retryable: true, cause: err },
      );
      this.#safely(() => this.emit('error', error));
    });
  }
}
