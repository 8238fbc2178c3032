/**
 * `VideoDecoder`: H.264 / H.265 frames as the consumer reads them (AVCC / HVCC with the track's
 * codec private data) decoded by GStreamer in the native addon into raw RGB, RGBA, GRAY8 or I420
 * frames, optionally scaled, sampled (at most one frame per `everyMs` of producer time, dropped
 * before colour conversion and scaling) and kept live under load (`dropToLive`: when decoding
 * falls more than `maxLagMs` behind what was pushed, input is dropped up to the next key frame).
 * Each decoded frame is copied once, into its Node Buffer.
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import { ConsumerError } from '../errors.js';
import { loadNative } from '../native.js';

export type RawFormat = 'RGB' | 'RGBA' | 'GRAY8' | 'I420';

export interface VideoDecoderOptions {
  /** The track's Matroska codec ID. */
  codecId: 'V_MPEG4/ISO/AVC' | 'V_MPEGH/ISO/HEVC';
  /** The track's CodecPrivate (avcC / hvcC). */
  codecPrivate: Buffer;
  /** Default RGB. */
  format?: RawFormat;
  /** Output size (default: the stream's); give one to keep the aspect ratio of the other. */
  width?: number;
  height?: number;
  /** At most one frame per this many ms of producer time (default: every frame). */
  everyMs?: number;
  /** Drop input up to the next key frame when decoding is this far behind, ms (default 2000). */
  maxLagMs?: number;
  dropToLive?: boolean;
}

export interface DecodedFrame {
  data: Buffer;
  width: number;
  height: number;
  format: RawFormat;
  /** Bytes per row and start of each plane in `data` (one plane except for I420). */
  strides: number[];
  offsets: number[];
  /** The producer timestamp of the frame, epoch ms. */
  timestampMs: number;
}

export interface VideoDecoderEvents {
  frame: [DecodedFrame];
  error: [ConsumerError];
  end: [];
}

interface NativeVideoDecoder {
  push(data: Buffer, timestampMs: number, keyframe: boolean): void;
  pull(): Promise<DecodedFrame | null>;
  end(): void;
  close(): Promise<void>;
}

const CODECS: Record<string, 'h264' | 'h265'> = { 'V_MPEG4/ISO/AVC': 'h264', 'V_MPEGH/ISO/HEVC': 'h265' };

const optionsSchema = z.strictObject({
  codecId: z.string(),
  codecPrivate: z.custom<Buffer>((v) => Buffer.isBuffer(v) && v.length > 0, 'expected the track codec private data (a non-empty Buffer)'),
  format: z.enum(['RGB', 'RGBA', 'GRAY8', 'I420']).optional(),
  width: z.number().int().min(16).max(8192).optional(),
  height: z.number().int().min(16).max(8192).optional(),
  everyMs: z.number().int().min(1).optional(),
  maxLagMs: z.number().int().min(1).optional(),
  dropToLive: z.boolean().optional(),
});

export class VideoDecoder extends EventEmitter<VideoDecoderEvents> {
  readonly stats = { pushed: 0, emitted: 0, dropped: 0 };
  private readonly native: NativeVideoDecoder;
  private readonly options: VideoDecoderOptions;
  private closed = false;
  private ended = false;
  private dropping = false;
  private lastPushedMs = -Infinity;
  private lastOutMs = -Infinity;
  private lastKeptMs = -Infinity;
  private readonly done: Promise<void>;
  private readonly queue: DecodedFrame[] = [];
  private wake: (() => void) | undefined;
  private failure: ConsumerError | undefined;

  constructor(options: VideoDecoderOptions) {
    super();
    const r = optionsSchema.safeParse(options);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new ConsumerError('CONSUMER_INVALID_OPTIONS', `VideoDecoder: ${issue.path.join('.') || 'options'}: ${issue.message}`);
    }
    const codec = CODECS[options.codecId];
    if (!codec) throw new ConsumerError('CONSUMER_UNSUPPORTED_CODEC', `VideoDecoder: codec ${options.codecId} is not supported (V_MPEG4/ISO/AVC or V_MPEGH/ISO/HEVC)`);
    this.options = options;
    const { NativeVideoDecoder } = loadNative() as unknown as { NativeVideoDecoder: new (o: object) => NativeVideoDecoder };
    // videorate drops before conversion at whole frames per second; finer sampling happens below.
    const maxRate = options.everyMs ? Math.max(1, Math.floor(1000 / options.everyMs)) : 0;
    try {
      this.native = new NativeVideoDecoder({
        codec, codecPrivate: options.codecPrivate, format: options.format ?? 'RGB',
        width: options.width ?? 0, height: options.height ?? 0, maxRate,
      });
    } catch (err) {
      throw new ConsumerError('CONSUMER_DECODE_FAILED', `VideoDecoder: ${(err as Error).message}`, { cause: err });
    }
    this.done = this.pullLoop();
    this.done.catch(() => {});
  }

  /** Queues an encoded frame; false when it was dropped (drop-to-live) . */
  push(frame: { data: Buffer; timestampMs: number; keyframe: boolean }): boolean {
    if (this.closed || this.ended) throw new ConsumerError('CONSUMER_DECODE_FAILED', 'VideoDecoder: push() after end() or close()');
    if (this.failure) throw this.failure;
    if (this.options.dropToLive) {
      const lag = this.lastPushedMs - Math.max(this.lastOutMs, this.lastKeptMs);
      if (!this.dropping && this.lastOutMs > -Infinity && lag > (this.options.maxLagMs ?? 2000)) this.dropping = true;
      if (this.dropping && frame.keyframe) this.dropping = false;
      if (this.dropping) {
        this.stats.dropped++;
        return false;
      }
    }
    this.stats.pushed++;
    this.lastPushedMs = frame.timestampMs;
    this.native.push(frame.data, frame.timestampMs, frame.keyframe);
    return true;
  }

  /** No more input: resolves once every frame is out. Rejects with the decoder's error. */
  async end(): Promise<void> {
    if (!this.ended && !this.closed) {
      this.ended = true;
      this.native.end();
    }
    await this.done;
  }

  /** Stops decoding at once and frees the pipeline. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.wake?.();
    await this.native.close();
  }

  /** The decoded frames, in order (also emitted as 'frame' events). */
  async *frames(): AsyncGenerator<DecodedFrame> {
    for (;;) {
      const f = this.queue.shift();
      if (f) {
        yield f;
        continue;
      }
      if (this.failure) throw this.failure;
      if (this.closed || this.finished) return;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  private finished = false;

  private async pullLoop(): Promise<void> {
    try {
      for (;;) {
        if (this.closed) return;
        const f = await this.native.pull();
        if (!f) return;
        this.lastOutMs = f.timestampMs;
        if (this.options.everyMs && f.timestampMs - this.lastKeptMs < this.options.everyMs) continue;
        this.lastKeptMs = f.timestampMs;
        this.stats.emitted++;
        if (this.listenerCount('frame') > 0) this.emit('frame', f);
        else this.queue.push(f);
        this.wake?.();
      }
    } catch (err) {
      if (this.closed) return;
      this.failure = new ConsumerError('CONSUMER_DECODE_FAILED', `VideoDecoder: ${(err as Error).message}`, { cause: err });
      if (this.listenerCount('error') > 0) this.emit('error', this.failure);
      throw this.failure;
    } finally {
      this.finished = true;
      this.wake?.();
      if (!this.failure) this.emit('end');
    }
  }
}
