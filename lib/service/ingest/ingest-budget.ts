/**
 * Bytes of complete fragments handed to storage and not yet stored, across every PutMedia
 * connection. Past the limit, connections stop reading their bodies (TCP back-pressure slows
 * the producers) instead of the server queueing without bound when the disk falls behind.
 */
export class IngestBudget {
  private used = 0;
  private waiters: Array<() => void> = [];

  constructor(readonly maxBytes: number) {}

  get exhausted(): boolean {
    return this.used >= this.maxBytes;
  }

  get usedBytes(): number {
    return this.used;
  }

  take(bytes: number): void {
    this.used += bytes;
  }

  release(bytes: number): void {
    this.used -= bytes;
    if (!this.exhausted && this.waiters.length > 0) {
      const waiters = this.waiters;
      this.waiters = [];
      for (const w of waiters) w();
    }
  }

  /** Resolves once the budget is below its limit. */
  available(): Promise<void> {
    if (!this.exhausted) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }
}
