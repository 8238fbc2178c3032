/**
 * Writes a long-lived streaming response with back-pressure: `write` resolves when the socket
 * can take more, or at once when the client has gone (then `closed` is true).
 */
import type { ServerResponse } from 'node:http';

export class ResponseWriter {
  private readonly res: ServerResponse;
  private isClosed = false;
  private readonly closeListeners: Array<() => void> = [];
  private drainWaiter: (() => void) | undefined;

  constructor(res: ServerResponse) {
    this.res = res;
    // 'close' on the response: the client went away (or the response finished).
    res.on('close', () => this.markClosed());
    res.on('drain', () => this.wakeDrain());
  }

  get closed(): boolean {
    return this.isClosed;
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  async write(buffers: readonly Buffer[]): Promise<void> {
    if (this.isClosed) return;
    let ok = true;
    for (const b of buffers) if (b.length > 0) ok = this.res.write(b);
    if (!ok && !this.isClosed) await new Promise<void>((resolve) => (this.drainWaiter = resolve));
  }

  /** Ends the session from the server side (time limit, shutdown). */
  close(): void {
    this.end();
    this.markClosed();
  }

  end(): void {
    if (!this.res.writableEnded && !this.res.destroyed) this.res.end();
  }

  private wakeDrain(): void {
    const w = this.drainWaiter;
    this.drainWaiter = undefined;
    w?.();
  }

  private markClosed(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.wakeDrain();
    for (const l of this.closeListeners) l();
  }
}
