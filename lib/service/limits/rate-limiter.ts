/**
 * Per-stream request-rate limits, as the service has them (its documented quotas are per stream
 * and API: PutMedia and GetMedia 5 connections/s, …): a token bucket per (operation, stream)
 * refilled at `perSecond`, holding at most `burst`. A request beyond it is refused with
 * ClientLimitExceededException, which the AWS SDK and kvssink retry with backoff.
 */
import { KvsApiError } from '../../errors.js';

interface Bucket {
  tokens: number;
  at: number;
}

const MAX_BUCKETS = 100_000;

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(private readonly perSecond: number, private readonly burst: number) {}

  /** Takes one request of `operation` on `stream` (a name or ARN); throws when over the limit. */
  take(operation: string, stream: string, now = Date.now()): void {
    if (this.perSecond <= 0) return;
    const key = `${operation}\u0000${stream}`;
    let b = this.buckets.get(key);
    if (!b) {
      if (this.buckets.size >= MAX_BUCKETS) this.prune(now);
      b = { tokens: this.burst, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.perSecond);
    b.at = now;
    if (b.tokens < 1) {
      throw new KvsApiError('ClientLimitExceededException', `Too many ${operation} requests for stream ${stream}: the limit is ${this.perSecond} per second (bursts of ${this.burst}). Retry with backoff.`);
    }
    b.tokens -= 1;
  }

  /** Drops buckets that have refilled (they would start full anyway). */
  private prune(now: number): void {
    for (const [key, b] of this.buckets) {
      if (b.tokens + ((now - b.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(key);
    }
  }
}
