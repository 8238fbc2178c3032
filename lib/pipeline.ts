/**
 * Pipeline: a GStreamer pipeline run in-process (through the native addon) with promises and
 * typed events. kvssink elements in it get the endpoint, region and credentials given here;
 * credentials are refreshed before they expire and pushed into the running sinks.
 *
 *   const p = new Pipeline('videotestsrc ! x264enc ! h264parse ! kvssink stream-name=cam1', { endpoint });
 *   p.on('fragment-ack', (ack) => …);
 *   await p.start();
 *   await p.finished;   // EOS, once the last fragment is persisted; rejects on a fatal error
 *   await p.stop();     // drains by default; { drain: false } stops at once
 */
import { EventEmitter } from 'node:events';
import { z } from 'zod';
import type { CredentialsOption, Credentials } from './credentials/credentials.js';
import { CredentialsRefresher, type CredentialsRefresherOptions } from './credentials/refresher.js';
import { OpenKvsError, PipelineError, type PipelineErrorCode, type PipelineErrorInfo } from './errors.js';
import { loadNative, type NativeMessage, type NativePipelineHandle } from './native.js';
import {
  type BusMessage,
  type ConnectionEvent,
  type DroppedFragment,
  type LatencyPressure,
  type FragmentAck,
  type StateChange,
  type UploadStats,
  toConnectionEvent,
  toDroppedFragment,
  toLatencyPressure,
  toFragmentAck,
  toUploadStats,
} from './pipeline-events.js';

export interface PipelineEvents {
  'fragment-ack': [FragmentAck];
  error: [PipelineError];
  stats: [UploadStats];
  state: [StateChange];
  connection: [ConnectionEvent];
  dropped: [DroppedFragment];
  'latency-pressure': [LatencyPressure];
  eos: [];
  /** Every bus message without an event of its own. */
  message: [BusMessage];
}

const PipelineOptionsSchema = z.strictObject({
  endpoint: z.string().url().optional(),
  caCert: z.string().min(1).optional(),
  region: z.string().min(1).optional(),
  credentials: z.any().optional(),
  credentialsRefresh: z
    .strictObject({
      refreshBeforeExpiryMs: z.number().int().min(0).optional(),
      minRetryIntervalMs: z.number().int().min(1).optional(),
      maxRetryIntervalMs: z.number().int().min(1).optional(),
    })
    .optional(),
  /** Seconds to wait for the last PERSISTED ack when stopping with drain (kvssink stop-stream-timeout). */
  stopTimeoutSeconds: z.number().int().min(0).max(3600).optional(),
  storagePath: z.string().min(1).optional(),
  storagePathSizeMb: z.number().int().min(1).optional(),
});

export interface PipelineOptions {
  /** Endpoint for every kvssink (openkvs server or a custom one); default: AWS. */
  endpoint?: string;
  /**
   * CA certificate (PEM file or directory of hashed certificates) every kvssink trusts for an
   * https endpoint (its `ca-cert`); default KVSSINK_CA_CERT_PATH, AWS_KVS_CACERT_PATH or
   * AWS_CA_BUNDLE, else the system store.
   */
  caCert?: string;
  /** Region for every kvssink. */
  region?: string;
  /**
   * Credentials for every kvssink: static values, any `() => Promise<Credentials>`, a
   * `{ profile }`, or (default) the AWS provider chain. Set `false` to leave kvssink's own
   * credential lookup (properties in the description, environment, files) alone.
   */
  credentials?: CredentialsOption | false;
  /** When credentials are refreshed (default: 5 min before they expire; retries from 10 s). */
  credentialsRefresh?: CredentialsRefresherOptions;
  stopTimeoutSeconds?: number;
  /**
   * On-disk spool for every kvssink (its `storage-path`): fragments stay there until
   * acknowledged, and survive a restart or a long outage (docs/kvssink.md).
   */
  storagePath?: string;
  /** Most MiB each sink's spool keeps (its `storage-path-size`, default 1024). */
  storagePathSizeMb?: number;
}

export interface StopOptions {
  /** Send EOS and wait for the last fragment to be persisted (default true). */
  drain?: boolean;
  /** Bound on the drain, ms (default: 130 s). */
  timeoutMs?: number;
}

type State = 'idle' | 'starting' | 'running' | 'stopping' | 'closed';

let requestCounter = 0;

/** The code of an upload error, from what kvssink reported (never from its message text). */
function uploadErrorCode(info: PipelineErrorInfo): PipelineErrorCode {
  if (info.httpStatus === 401 || info.httpStatus === 403) return 'KVS_ACCESS_DENIED';
  if (info.httpStatus === 404) return 'KVS_STREAM_NOT_FOUND';
  return info.errorId ? 'KVS_ACK_ERROR' : 'KVS_SERVICE_ERROR';
}

function pipelineErrorOf(m: NativeMessage): PipelineError {
  const e = m.error!;
  const d = e.details;
  const info: PipelineErrorInfo = { source: m.source, domain: e.domain, domainCode: e.code, debug: e.debug };
  if (m.name === 'kvssink-error-details') {
    info.httpStatus = Number(d['http-status'] ?? 0);
    info.serviceCode = String(d['service-code'] ?? '');
    info.errorId = Number(d['error-id'] ?? 0);
    if (d['fragment-timecode'] !== undefined) info.fragmentTimecode = Number(d['fragment-timecode']);
    return new PipelineError(uploadErrorCode(info), e.message, info, { retryable: d.retryable === true });
  }
  return new PipelineError('GST_ERROR', `${m.source}: ${e.message}`, info, { retryable: false });
}

/** A kvssink-error message: the upload hit a problem it retries on its own (or is about to fail). */
function uploadErrorOf(m: NativeMessage): PipelineError {
  const f = m.fields;
  const info: PipelineErrorInfo = {
    source: m.source,
    httpStatus: Number(f['http-status'] ?? 0),
    serviceCode: String(f['service-code'] ?? ''),
    errorId: Number(f['error-id'] ?? 0),
  };
  if (f['fragment-timecode'] !== undefined) info.fragmentTimecode = Number(f['fragment-timecode']);
  return new PipelineError(uploadErrorCode(info), String(f.message ?? 'upload error'), info, {
    retryable: f.retryable === true,
    fatal: false,
  });
}

/** The PipelineError codes of the addon's own errors (thrown by its calls, with an `ERR_*` code). */
const NATIVE_ERROR_CODES: Readonly<Record<string, PipelineErrorCode>> = {
  ERR_NO_SUCH_ELEMENT: 'NO_SUCH_ELEMENT',
  ERR_NO_SUCH_PROPERTY: 'NO_SUCH_PROPERTY',
  ERR_INVALID_PROPERTY_VALUE: 'INVALID_PROPERTY_VALUE',
  ERR_PIPELINE_CLOSED: 'PIPELINE_CLOSED',
};

/**
 * Runs a call into the addon; what it throws becomes a PipelineError (the addon's error as
 * `cause`). A refused call leaves the pipeline as it was (not fatal); a closed pipeline has stopped.
 */
function nativeCall<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    const e = err as Error & { code?: string };
    const code = NATIVE_ERROR_CODES[e.code ?? ''];
    if (code) throw new PipelineError(code, e.message, {}, { cause: err, fatal: code === 'PIPELINE_CLOSED' });
    throw new PipelineError('GST_ERROR', e.message, { domain: e.code }, { cause: err, fatal: false });
  }
}

export class Pipeline extends EventEmitter<PipelineEvents> {
  /** Resolves after EOS (the last fragment persisted); rejects on a fatal error. */
  readonly finished: Promise<void>;
  /** Names of the kvssink elements in the pipeline. */
  readonly sinks: readonly string[];

  private readonly native: NativePipelineHandle;
  private readonly pending = new Map<string, (result: string) => void>();
  private readonly options: PipelineOptions;
  private refresher: CredentialsRefresher | undefined;
  private state: State = 'idle';
  private gstState = 'NULL';
  private settle!: { resolve: () => void; reject: (e: Error) => void };
  private settled = false;
  private stateWaiters: Array<{ target: string; resolve: () => void; reject: (e: Error) => void }> = [];

  constructor(description: string, options: PipelineOptions = {}) {
    super();
    const parsed = PipelineOptionsSchema.safeParse(options);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new OpenKvsError('INVALID_ARGUMENT', `Invalid Pipeline option ${issue.path.join('.') || ''}: ${issue.message}`.trim());
    }
    this.options = options;
    this.finished = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.finished.catch(() => {}); // observed through the promise or the 'error' event
    const { NativePipeline } = loadNative();
    try {
      this.native = new NativePipeline(description, (m) => this.onMessage(m));
    } catch (err) {
      const e = err as Error & { code?: string };
      throw new PipelineError('GST_ERROR', `cannot create the pipeline: ${e.message}`, { domain: e.code }, { cause: err });
    }
    this.sinks = this.native.elementsOfFactory('kvssink');
    for (const sink of this.sinks) {
      if (options.endpoint) this.setProperty(sink, 'endpoint', options.endpoint);
      if (options.caCert) this.setProperty(sink, 'ca-cert', options.caCert);
      if (options.region) this.setProperty(sink, 'aws-region', options.region);
      if (options.stopTimeoutSeconds !== undefined) this.setProperty(sink, 'stop-stream-timeout', options.stopTimeoutSeconds);
      if (options.storagePath) this.setProperty(sink, 'storage-path', options.storagePath);
      if (options.storagePathSizeMb !== undefined) this.setProperty(sink, 'storage-path-size', options.storagePathSizeMb);
    }
  }

  /** Resolves credentials, then sets the pipeline PLAYING. */
  async start(): Promise<void> {
    if (this.state !== 'idle') throw new OpenKvsError('INVALID_STATE', `start() called on a pipeline that is ${this.state}`);
    this.state = 'starting';
    try {
      if (this.sinks.length > 0 && this.options.credentials !== false) {
        this.refresher = new CredentialsRefresher(this.options.credentials, this.options.credentialsRefresh);
        this.refresher.on('credentials', (c) => this.pushCredentials(c));
        this.refresher.on('error', (err) => {
          if (this.listenerCount('error') > 0) {
            this.emit('error', new PipelineError('KVS_ACCESS_DENIED', err.message, {}, { retryable: true, fatal: false, cause: err }));
          }
        });
        this.pushCredentials(await this.refresher.start());
      }
      const result = await this.request((id) => nativeCall(() => this.native.setState('PLAYING', id)));
      if (result === 'FAILURE') {
        throw (await Promise.race([this.finished.then(() => undefined, (e: unknown) => e), delay(2000)])) ??
          new PipelineError('GST_ERROR', 'the pipeline refused to start', {});
      }
      if (result === 'ASYNC') await this.reachState('PLAYING');
      this.state = 'running';
    } catch (err) {
      this.state = 'running';
      await this.stop({ drain: false });
      throw err;
    }
  }

  /** Stops the pipeline: by default sends EOS and waits for the last fragment; then releases it. */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.state === 'closed' || this.state === 'stopping') return this.closedPromise();
    const drain = options.drain ?? true;
    const wasRunning = this.state === 'running';
    this.state = 'stopping';
    this.refresher?.stop();
    if (drain && wasRunning && !this.settled) {
      nativeCall(() => this.native.sendEos());
      await Promise.race([this.finished.catch(() => undefined), delay(options.timeoutMs ?? 130_000)]);
    }
    await this.close();
  }

  /** Sets a property of a named element (e.g. kvssink's credentials or a source's pattern). */
  setProperty(element: string, property: string, value: string | number | boolean | null): void {
    nativeCall(() => this.native.setProperty(element, property, value));
  }

  getProperty(element: string, property: string): string | number | boolean | null {
    return nativeCall(() => this.native.getProperty(element, property));
  }

  /** Bus messages delivered to JS and dropped because JS fell behind (bounded queue). */
  messageStats(): { messagesDelivered: number; messagesDropped: number } {
    return this.native.stats();
  }

  private closing: Promise<void> | undefined;
  private closedPromise(): Promise<void> {
    return this.closing ?? Promise.resolve();
  }

  private close(): Promise<void> {
    this.closing ??= (async () => {
      await this.request((id) => nativeCall(() => this.native.close(id)));
      this.state = 'closed';
      this.gstState = 'NULL';
      this.settleWith(undefined);
      for (const w of this.stateWaiters.splice(0)) w.reject(new PipelineError('PIPELINE_CLOSED', 'the pipeline was closed', {}));
    })();
    return this.closing;
  }

  private pushCredentials(c: Credentials): void {
    for (const sink of this.sinks) {
      this.setProperty(sink, 'access-key', c.accessKeyId);
      this.setProperty(sink, 'secret-key', c.secretAccessKey);
      this.setProperty(sink, 'session-token', c.sessionToken ?? 'session_token');
    }
  }

  private request(send: (id: string) => void): Promise<string> {
    const id = `r${++requestCounter}`;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      send(id);
    });
  }

  private reachState(target: string): Promise<void> {
    if (this.gstState === target) return Promise.resolve();
    return new Promise((resolve, reject) => this.stateWaiters.push({ target, resolve, reject }));
  }

  private settleWith(err: Error | undefined): void {
    if (this.settled) return;
    this.settled = true;
    this.refresher?.stop();
    if (err) this.settle.reject(err);
    else this.settle.resolve();
    for (const w of this.stateWaiters.splice(0)) (err ? w.reject(err) : w.resolve());
  }

  private onMessage(m: NativeMessage): void {
    switch (m.type) {
      case 'openkvs-result': {
        const id = String(m.fields.request);
        const resolve = this.pending.get(id);
        this.pending.delete(id);
        resolve?.(String(m.fields.result));
        return;
      }
      case 'state-changed':
        if (m.fromPipeline) {
          this.gstState = m.newState ?? this.gstState;
          this.emit('state', { from: m.oldState ?? '', to: m.newState ?? '' });
          for (const w of this.stateWaiters.filter((x) => x.target === this.gstState)) {
            this.stateWaiters.splice(this.stateWaiters.indexOf(w), 1);
            w.resolve();
          }
        }
        return;
      case 'eos':
        this.emit('eos');
        this.settleWith(undefined);
        return;
      case 'error': {
        const err = pipelineErrorOf(m);
        if (this.listenerCount('error') > 0) this.emit('error', err);
        this.settleWith(err);
        return;
      }
      case 'element':
        switch (m.name) {
          case 'kvssink-fragment-ack':
            this.emit('fragment-ack', toFragmentAck(m));
            return;
          case 'kvssink-stats':
            this.emit('stats', toUploadStats(m));
            return;
          case 'kvssink-connection':
            this.emit('connection', toConnectionEvent(m));
            return;
          case 'kvssink-dropped':
            this.emit('dropped', toDroppedFragment(m));
            return;
          case 'kvssink-latency-pressure':
            this.emit('latency-pressure', toLatencyPressure(m));
            return;
          case 'kvssink-error':
            // A fatal one is followed by the pipeline's error message, which settles `finished`.
            if (m.fields.fatal !== true && this.listenerCount('error') > 0) this.emit('error', uploadErrorOf(m));
            return;
        }
        break;
    }
    this.emit('message', m);
  }
}

const delay = (ms: number) => new Promise<undefined>((r) => setTimeout(() => r(undefined), ms).unref());
