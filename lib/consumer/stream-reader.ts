/**
 * `StreamReader`: reads a stream live with GetMedia, frame by frame, and keeps reading through
 * dropped connections, server restarts, idle streams and expired sessions.
 *
 * Levels: `elements()` (raw MKV elements), `frames()` (each frame as its block arrives, with its
 * fragment's metadata), `fragments()` (each fragment once its closing tags arrived). Each is an
 * async iterator that reads from the network only as fast as it is consumed (back-pressure), and
 * the reader emits the same things as typed events while it is iterated or `run()`.
 *
 * Resume: after each complete fragment the reader saves a checkpoint (continuation token, fragment
 * number, the last frame timestamp per track) to its store. A reconnect starts from the token
 * (falling back to the fragment number when the service refuses it); frames that were delivered
 * before the cut, from a fragment read only in part, are recognised by their producer timestamps
 * and skipped, so nothing is delivered twice and nothing is skipped. Leaving an iterator (break,
 * return) or `close()` saves the checkpoint too, so a new reader with the same store continues
 * exactly there. A reader killed without closing resumes after the last complete fragment and may
 * deliver again the frames of the fragment it was in (at least once).
 */
import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { GetMediaCommand, type StartSelector } from '@aws-sdk/client-kinesis-video-media';
import { z } from 'zod';
import { ConsumerError } from '../errors.js';
import { type Checkpoint, type CheckpointStore, FileCheckpointStore, MemoryCheckpointStore } from './checkpoint-store.js';
import { type ConsumedFragment, type ConsumedFrame, GetMediaParser, type MkvElementEvent } from './get-media-parser.js';
import { MediaClients, type StreamSource, hasStream, parseOptions, streamLabel, streamRef, streamSourceShape, toConsumerError } from './media-clients.js';

/** Where a reader without a checkpoint starts. A Date is a server timestamp. */
export type StartPosition =
  | 'now'
  | 'earliest'
  | Date
  | { serverTimestamp: Date }
  | { producerTimestamp: Date }
  | { afterFragmentNumber: string }
  | { continuationToken: string };

export interface StreamReaderOptions extends StreamSource {
  /** Where to start when there is no checkpoint (default 'now'). */
  start?: StartPosition;
  /**
   * Where checkpoints live: a store, a file path (a `FileCheckpointStore`), or false for none
   * (default: in memory, so reconnects resume but a new reader starts at `start`).
   */
  checkpoints?: CheckpointStore | string | false;
  /** The checkpoint's key in the store (default: the stream name or ARN). */
  checkpointKey?: string;
  /** Reconnect delays: from `initialDelayMs` (200) doubling to `maxDelayMs` (5000); `maxAttempts` in a row (default unlimited). */
  reconnect?: { initialDelayMs?: number; maxDelayMs?: number; maxAttempts?: number };
  /** Reconnect when no byte arrived for this long, ms (default 0: never; an idle stream sends nothing). */
  idleTimeoutMs?: number;
}

export interface ConnectInfo {
  selector: StartSelector;
  endpoint: string;
  attempt: number;
}

export interface ReconnectInfo {
  error: ConsumerError | undefined;
  delayMs: number;
  attempt: number;
}

/** A frame as the reader delivers it: the frame and the fragment it belongs to (metadata so far). */
export interface StreamFrame extends ConsumedFrame {
  fragment: ConsumedFragment;
}

export interface StreamReaderEvents {
  connect: [ConnectInfo];
  reconnect: [ReconnectInfo];
  element: [MkvElementEvent];
  frame: [StreamFrame];
  fragment: [ConsumedFragment];
  checkpoint: [Checkpoint];
}

export interface StreamReaderStats {
  connections: number;
  bytes: number;
  frames: number;
  fragments: number;
  /** Frames seen again after a reconnect and not delivered. */
  duplicatesSkipped: number;
}

type Item = { kind: 'element'; element: MkvElementEvent } | { kind: 'frame'; frame: StreamFrame } | { kind: 'fragment'; fragment: ConsumedFragment };

const optionsSchema = z
  .strictObject({
    ...streamSourceShape,
    start: z
      .union([
        z.enum(['now', 'earliest']),
        z.date(),
        z.strictObject({ serverTimestamp: z.date() }),
        z.strictObject({ producerTimestamp: z.date() }),
        z.strictObject({ afterFragmentNumber: z.string().regex(/^[0-9]+$/, 'expected a fragment number') }),
        z.strictObject({ continuationToken: z.string().min(1) }),
      ])
      .optional(),
    checkpoints: z.union([z.string().min(1), z.literal(false), z.custom<CheckpointStore>((v) => typeof (v as CheckpointStore)?.load === 'function' && typeof (v as CheckpointStore)?.save === 'function', 'expected a CheckpointStore, a file path or false')]).optional(),
    checkpointKey: z.string().min(1).optional(),
    reconnect: z
      .strictObject({
        initialDelayMs: z.number().int().min(0).optional(),
        maxDelayMs: z.number().int().min(0).optional(),
        maxAttempts: z.number().int().min(1).optional(),
      })
      .optional(),
    idleTimeoutMs: z.number().int().min(0).optional(),
  })
  .refine(...hasStream);

function startSelector(start: StartPosition): StartSelector {
  if (start === 'now') return { StartSelectorType: 'NOW' };
  if (start === 'earliest') return { StartSelectorType: 'EARLIEST' };
  if (start instanceof Date) return { StartSelectorType: 'SERVER_TIMESTAMP', StartTimestamp: start };
  if ('serverTimestamp' in start) return { StartSelectorType: 'SERVER_TIMESTAMP', StartTimestamp: start.serverTimestamp };
  if ('producerTimestamp' in start) return { StartSelectorType: 'PRODUCER_TIMESTAMP', StartTimestamp: start.producerTimestamp };
  if ('afterFragmentNumber' in start) return { StartSelectorType: 'FRAGMENT_NUMBER', AfterFragmentNumber: start.afterFragmentNumber };
  return { StartSelectorType: 'CONTINUATION_TOKEN', ContinuationToken: start.continuationToken };
}

const RETRYABLE_STREAM_ERRORS = new Set(['3002', '5000']);

export class StreamReader extends EventEmitter<StreamReaderEvents> {
  readonly options: Readonly<StreamReaderOptions>;
  readonly stats: StreamReaderStats = { connections: 0, bytes: 0, frames: 0, fragments: 0, duplicatesSkipped: 0 };
  private readonly clients: MediaClients;
  private readonly store: CheckpointStore | undefined;
  private readonly key: string;
  private checkpoint: Checkpoint | undefined;
  private loaded = false;
  private tokenRefused = false;
  private dirty = false;
  private closed = false;
  private iterating = false;
  private abort = new AbortController();
  /** Tracks whose next frames may repeat frames delivered before a reconnect. */
  private readonly resyncing = new Set<string>();

  constructor(options: StreamReaderOptions) {
    super();
    this.options = parseOptions(optionsSchema, options, 'StreamReader') as StreamReaderOptions;
    this.clients = new MediaClients(this.options);
    const c = this.options.checkpoints;
    this.store = c === false ? undefined : typeof c === 'string' ? new FileCheckpointStore(c) : (c ?? new MemoryCheckpointStore());
    this.key = this.options.checkpointKey ?? streamLabel(this.options);
  }

  /** The current checkpoint (what a reconnect or a new reader resumes from). */
  get position(): Readonly<Checkpoint> | undefined {
    return this.checkpoint;
  }

  /** Every MKV element, in order. */
  async *elements(): AsyncGenerator<MkvElementEvent> {
    for await (const item of this.items(true)) if (item.kind === 'element') yield item.element;
  }

  /** Every frame, as soon as its block has arrived. */
  async *frames(): AsyncGenerator<StreamFrame> {
    for await (const item of this.items(false)) if (item.kind === 'frame') yield item.frame;
  }

  /** Every fragment, once complete (with its frames). */
  async *fragments(): AsyncGenerator<ConsumedFragment> {
    for await (const item of this.items(false)) if (item.kind === 'fragment') yield item.fragment;
  }

  /** Reads until `close()` (or a fatal error, which rejects), emitting events only. */
  async run(): Promise<void> {
    for await (const _ of this.items(this.listenerCount('element') > 0)) {
      // events are emitted by items()
    }
  }

  /** Stops reading; the checkpoint is saved before the iterator or `run()` finishes. */
  close(): void {
    this.closed = true;
    this.abort.abort();
  }

  private async *items(withElements: boolean): AsyncGenerator<Item> {
    if (this.iterating) throw new ConsumerError('CONSUMER_INVALID_OPTIONS', 'StreamReader: one iteration at a time (elements(), frames(), fragments() or run())');
    this.iterating = true;
    try {
      await this.load();
      let attempt = 0;
      let lastError: ConsumerError | undefined;
      while (!this.closed) {
        if (attempt > 0) {
          const r = this.options.reconnect ?? {};
          if (r.maxAttempts !== undefined && attempt > r.maxAttempts) throw lastError!;
          const delayMs = Math.min((r.initialDelayMs ?? 200) * 2 ** (attempt - 1), r.maxDelayMs ?? 5000);
          this.emit('reconnect', { error: lastError, delayMs, attempt });
          await sleep(delayMs, undefined, { signal: this.abort.signal }).catch(() => {});
          if (this.closed) break;
        }
        try {
          const got = yield* this.session(withElements, attempt);
          attempt = got ? 1 : attempt + 1; // a session that delivered data reconnects at once-ish
          lastError = undefined;
        } catch (err) {
          if (this.closed) break;
          const e = toConsumerError(err, `GetMedia on ${streamLabel(this.options)}`);
          if (!e.retryable) throw e;
          lastError = e;
          attempt++;
        }
      }
    } finally {
      this.iterating = false;
      await this.save();
    }
  }

  /** One GetMedia connection; returns whether it delivered anything. */
  private async *session(withElements: boolean, attempt: number): AsyncGenerator<Item, boolean> {
    const selector = this.selector();
    const endpoint = await this.clients.dataEndpoint('GET_MEDIA');
    const client = this.clients.media(endpoint);
    let payload: Readable;
    try {
      const out = await client.send(new GetMediaCommand({ ...streamRef(this.options), StartSelector: selector }), { abortSignal: this.abort.signal });
      payload = out.Payload as unknown as Readable;
    } catch (err) {
      client.destroy();
      const e = toConsumerError(err, `GetMedia on ${streamLabel(this.options)}`);
      if (e.serviceCode === 'InvalidArgumentException' && selector.StartSelectorType === 'CONTINUATION_TOKEN' && this.checkpoint?.fragmentNumber) {
        this.tokenRefused = true; // try the fragment number at once
        return true;
      }
      if (e.serviceCode === 'InvalidArgumentException' && this.checkpoint) {
        throw new ConsumerError('CONSUMER_BAD_CHECKPOINT', `${e.message} (checkpoint ${this.key}: ${JSON.stringify(selector)})`, { cause: e, serviceCode: e.serviceCode });
      }
      throw e;
    }
    this.stats.connections++;
    this.emit('connect', { selector, endpoint, attempt });
    for (const track of Object.keys(this.checkpoint?.lastFrameTimestampMs ?? {})) this.resyncing.add(track);

    const queue: Item[] = [];
    let delivered = false;
    const parser = new GetMediaParser({
      onElement: withElements ? (element) => queue.push({ kind: 'element', element }) : undefined,
      onFrame: (frame, fragment) => {
        if (this.isRepeat(frame)) return;
        queue.push({ kind: 'frame', frame: Object.assign(frame, { fragment }) });
      },
      onFragment: (fragment) => queue.push({ kind: 'fragment', fragment }),
    });
    let idle: NodeJS.Timeout | undefined;
    const idleMs = this.options.idleTimeoutMs ?? 0;
    const touch = () => {
      if (idleMs === 0) return;
      clearTimeout(idle);
      idle = setTimeout(() => payload.destroy(new ConsumerError('CONSUMER_REQUEST_FAILED', `no data for ${idleMs} ms`, { retryable: true })), idleMs);
    };
    touch();
    try {
      for await (const chunk of payload as AsyncIterable<Buffer>) {
        touch();
        this.stats.bytes += chunk.length;
        try {
          parser.push(chunk);
        } catch (err) {
          throw new ConsumerError('CONSUMER_MALFORMED_MEDIA', `GetMedia on ${streamLabel(this.options)}: ${(err as Error).message}`, { cause: err });
        }
        while (queue.length > 0) {
          const item = queue.shift()!;
          delivered = true;
          if (item.kind === 'fragment') {
            await this.completed(item.fragment);
          } else if (item.kind === 'frame') {
            this.delivered(item.frame);
          }
          this.emitItem(item);
          yield item;
          if (this.closed) return delivered;
        }
      }
    } finally {
      clearTimeout(idle);
      payload.destroy();
      client.destroy();
    }
    // The service ended the session (its maximum duration, a deleted stream, a restart): go on.
    return true;
  }

  private emitItem(item: Item): void {
    if (item.kind === 'element') this.emit('element', item.element);
    else if (item.kind === 'frame') this.emit('frame', item.frame);
    else this.emit('fragment', item.fragment);
  }

  private selector(): StartSelector {
    const c = this.checkpoint;
    if (c?.continuationToken && !this.tokenRefused) return { StartSelectorType: 'CONTINUATION_TOKEN', ContinuationToken: c.continuationToken };
    if (c?.fragmentNumber) return { StartSelectorType: 'FRAGMENT_NUMBER', AfterFragmentNumber: c.fragmentNumber };
    // Nothing read whole yet: start where asked; a partly read fragment is found again by its timestamp.
    if (c?.serverTimestampMs !== undefined) return { StartSelectorType: 'SERVER_TIMESTAMP', StartTimestamp: new Date(c.serverTimestampMs) };
    return startSelector(this.options.start ?? 'now');
  }

  /** A frame delivered before a reconnect (same track, timestamp not after the last delivered). */
  private isRepeat(frame: ConsumedFrame): boolean {
    const track = String(frame.track);
    if (!this.resyncing.has(track)) return false;
    const last = this.checkpoint?.lastFrameTimestampMs[track];
    if (last !== undefined && frame.timestampMs <= last) {
      this.stats.duplicatesSkipped++;
      return true;
    }
    this.resyncing.delete(track);
    return false;
  }

  private delivered(frame: StreamFrame): void {
    this.stats.frames++;
    const c = (this.checkpoint ??= { lastFrameTimestampMs: {}, updatedAt: new Date().toISOString() });
    c.lastFrameTimestampMs[String(frame.track)] = frame.timestampMs;
    // Until a fragment is complete, a reconnect looks for this one by its server timestamp.
    if (c.fragmentNumber === undefined && frame.fragment.serverTimestampMs !== undefined) c.serverTimestampMs = frame.fragment.serverTimestampMs;
    this.dirty = true;
  }

  private async completed(f: ConsumedFragment): Promise<void> {
    if (f.errorCode !== undefined) {
      const retryable = RETRYABLE_STREAM_ERRORS.has(f.errorId ?? '');
      throw new ConsumerError('CONSUMER_STREAM_ERROR', `GetMedia on ${streamLabel(this.options)}: the service stopped with error ${f.errorId ?? '?'} (${f.errorCode}) at fragment ${f.fragmentNumber ?? '?'}`, { retryable, serviceCode: f.errorCode });
    }
    this.stats.fragments++;
    const c = (this.checkpoint ??= { lastFrameTimestampMs: {}, updatedAt: new Date().toISOString() });
    c.continuationToken = f.continuationToken;
    c.fragmentNumber = f.fragmentNumber;
    c.producerTimestampMs = f.producerTimestampMs;
    c.serverTimestampMs = f.serverTimestampMs;
    this.tokenRefused = false;
    this.dirty = true;
    await this.save();
  }

  private async load(): Promise<void> {
    if (this.loaded) return;
    this.loaded = true;
    const stored = await this.store?.load(this.key);
    if (stored) this.checkpoint = stored;
    else if (this.options.start && typeof this.options.start === 'object' && 'continuationToken' in this.options.start) {
      this.checkpoint = { continuationToken: this.options.start.continuationToken, lastFrameTimestampMs: {}, updatedAt: new Date().toISOString() };
    }
  }

  private async save(): Promise<void> {
    if (!this.dirty || !this.checkpoint || !this.store) return;
    this.dirty = false;
    this.checkpoint.updatedAt = new Date().toISOString();
    await this.store.save(this.key, this.checkpoint);
    this.emit('checkpoint', this.checkpoint);
  }
}
