/**
 * Decodes one video frame of a stored fragment to a JPEG or PNG image with a real decoder:
 * `ffmpeg` as a child process reading the fragment's standalone MKV document on stdin. At most
 * `concurrency` decoders run at once, each under a timeout; decoded images are kept in a small
 * LRU keyed by (stream, fragment, frame offset, format, size, quality).
 */
import { spawn } from 'node:child_process';

export type ImageFormat = 'JPEG' | 'PNG';

export interface DecodeRequest {
  /** The fragment as one standalone MKV document (storedDocument), in order. */
  document: Buffer[];
  /** Presentation time of the wanted frame from the start of the document, ms. */
  offsetMs: number;
  format: ImageFormat;
  /** Output size; undefined for both → the original size, one of them → keep the aspect ratio. */
  width?: number | undefined;
  height?: number | undefined;
  /** JPEG quality 1..100. */
  quality: number;
}

export interface FrameDecoderOptions {
  /** ffmpeg executable (default `ffmpeg` on PATH). */
  ffmpeg?: string;
  /** Decoders running at once (default 2). */
  concurrency?: number;
  /** Per-decode time limit, ms (default 10 s). */
  timeoutMs?: number;
  /** Cached images at most (default 256). */
  cacheEntries?: number;
  /** Cached image bytes at most (default 64 MiB). */
  cacheBytes?: number;
}

export class DecodeError extends Error {}

/** mjpeg's qscale (2 best .. 31 worst) for a JPEGQuality of 1..100. */
export const jpegQscale = (quality: number): number => Math.round(31 - ((quality - 1) * 29) / 99);

export class FrameDecoder {
  private readonly ffmpeg: string;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly cacheEntries: number;
  private readonly cacheBytes: number;
  private cachedBytes = 0;
  private readonly sizes = new Map<string, number>();
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  private readonly cache = new Map<string, Promise<Buffer>>();
  /** Decodes actually run (cache misses), for tests and stats. */
  decodes = 0;

  constructor(o: FrameDecoderOptions = {}) {
    this.ffmpeg = o.ffmpeg ?? 'ffmpeg';
    this.concurrency = Math.max(1, o.concurrency ?? 2);
    this.timeoutMs = o.timeoutMs ?? 10_000;
    this.cacheEntries = Math.max(1, o.cacheEntries ?? 256);
    this.cacheBytes = o.cacheBytes ?? 64 << 20;
  }

  /** The image of the frame, from the cache when the same key was decoded before. */
  decode(key: string, req: DecodeRequest): Promise<Buffer> {
    const fullKey = `${key}|${req.offsetMs}|${req.format}|${req.width ?? ''}x${req.height ?? ''}|${req.format === 'JPEG' ? req.quality : ''}`;
    const hit = this.cache.get(fullKey);
    if (hit) {
      this.cache.delete(fullKey);
      this.cache.set(fullKey, hit);
      return hit;
    }
    const p = this.limited(() => this.run(req));
    this.cache.set(fullKey, p);
    p.then(
      (image) => {
        if (this.cache.get(fullKey) !== p) return;
        this.sizes.set(fullKey, image.length);
        this.cachedBytes += image.length;
        this.evict();
      },
      // Failures are not cached.
      () => {
        if (this.cache.get(fullKey) === p) this.cache.delete(fullKey);
      },
    );
    this.evict();
    return p;
  }

  private evict(): void {
    while (this.cache.size > this.cacheEntries || (this.cachedBytes > this.cacheBytes && this.cache.size > 0)) {
      const oldest = this.cache.keys().next().value!;
      this.cache.delete(oldest);
      this.cachedBytes -= this.sizes.get(oldest) ?? 0;
      this.sizes.delete(oldest);
    }
  }

  private async limited<T>(fn: () => Promise<T>): Promise<T> {
    if (this.running >= this.concurrency) await new Promise<void>((r) => this.waiting.push(r));
    else this.running++;
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.running--;
    }
  }

  private run(req: DecodeRequest): Promise<Buffer> {
    this.decodes++;
    const filters: string[] = [];
    if (req.width !== undefined || req.height !== undefined) {
      filters.push(`scale=${req.width ?? -1}:${req.height ?? -1}`);
    }
    // `-ss` after the input: decode and drop frames before the offset (exact, works on a pipe).
    // Half a millisecond early so a frame exactly at the offset is not lost to rounding.
    const seek = Math.max(0, req.offsetMs - 0.5) / 1000;
    const args = ['-hide_banner', '-loglevel', 'error', '-f', 'matroska', '-i', 'pipe:0', '-map', '0:v:0', '-ss', seek.toFixed(4)];
    if (req.format === 'JPEG') {
      filters.push('format=yuvj420p');
      args.push('-vf', filters.join(','), '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'mjpeg', '-q:v', String(jpegQscale(req.quality)));
    } else {
      filters.push('format=rgb24');
      args.push('-vf', filters.join(','), '-frames:v', '1', '-f', 'image2pipe', '-vcodec', 'png');
    }
    args.push('pipe:1');
    return new Promise<Buffer>((resolve, reject) => {
      const child = spawn(this.ffmpeg, args, { stdio: ['pipe', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      let done = false;
      const finish = (e: Error | undefined, image?: Buffer): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (e) reject(e);
        else resolve(image!);
      };
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        finish(new DecodeError(`ffmpeg took longer than ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => {
        if (err.length < 4096) err += d.toString();
      });
      child.on('error', (e) => finish(new DecodeError(`ffmpeg could not be started: ${e.message}`)));
      child.on('close', (code) => {
        const image = Buffer.concat(out);
        if (code === 0 && image.length > 0) finish(undefined, image);
        else finish(new DecodeError(`ffmpeg exited with ${code} and ${image.length} bytes: ${err.trim().slice(0, 500)}`));
      });
      // ffmpeg stops reading once it has its frame: EPIPE on stdin is expected.
      child.stdin.on('error', () => {});
      for (const b of req.document) child.stdin.write(b);
      child.stdin.end();
    });
  }
}
