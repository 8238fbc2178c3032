/**
 * One relayed camera: an RTSP source passed through (depayload + parse, no re-encoding) into
 * kvssink, in a Pipeline of its own that is supervised. The pipeline is restarted, after an
 * exponential backoff with jitter, when it fails, reaches EOS unexpectedly, or stops making
 * progress (no frames into the sink and no fragment acks) for `noDataTimeoutSeconds`.
 *
 * Producer timestamps stay monotonic across restarts: kvssink stamps a new pipeline's frames
 * from the wall clock at its first buffer, which is later than anything the previous pipeline
 * sent.
 */
import { EventEmitter } from 'node:events';
import { Pipeline } from '../pipeline.js';
import type { CredentialsOption } from '../credentials/credentials.js';
import type { BackoffConfig, CameraConfig, RelayCredentials, SinkPropertyValue, VideoCodec } from './config.js';
import { describeCamera } from './rtsp-describe.js';

export type CameraState = 'starting' | 'streaming' | 'reconnecting' | 'stopped';

/** Where every camera's kvssink uploads to. */
export interface RelayConnection {
  endpoint?: string;
  region?: string;
  credentials?: RelayCredentials;
  caCert?: string;
}

export interface CameraStatus {
  name: string;
  streamName: string;
  state: CameraState;
  /** Pipeline restarts since the camera was started. */
  reconnects: number;
  /** PERSISTED fragment acks over all the camera's pipelines. */
  fragmentsPersisted: number;
  /** ERROR acks from the service (e.g. timecode errors). */
  errorAcks: number;
  /** Seconds since the last PERSISTED ack; null before the first one. */
  lastAckAgeSeconds: number | null;
  /** Upload bitrate of the running pipeline (kvssink stats), bits/s. */
  bitrateBps: number;
  /** Media buffered in kvssink and not yet persisted, seconds. */
  bufferedSeconds: number;
  /** Why the pipeline was last restarted. */
  lastError: string | null;
}

export interface CameraEvents {
  state: [CameraState];
  /** A line worth logging (restarts and their reasons). */
  log: [string];
}

const quote = (s: string): string => `"${s.replace(/(["\\])/g, '\\$1')}"`;
const value = (v: SinkPropertyValue): string => (typeof v === 'string' ? quote(v) : String(v));

/** The GStreamer description of a camera's pipeline, for its video codec, with or without its AAC track. */
export function cameraDescription(camera: CameraConfig, codec: VideoCodec, audio: boolean): string {
  const protocols = camera.transport === 'auto' ? '' : ` protocols=${camera.transport}`;
  const video = codec === 'h265' ? 'rtph265depay ! h265parse' : 'rtph264depay ! h264parse';
  const props = Object.entries(camera.sink).map(([k, v]) => ` ${k}=${value(v)}`).join('');
  const sink = `kvssink name=sink stream-name=${quote(camera.streamName)}${props}`;
  // A stop over a stalled connection waits for rtspsrc's tcp-timeout (20 s by default) in its
  // teardown: the camera's no-data timeout bounds it, as it bounds the stall itself.
  const src = `rtspsrc name=src location=${quote(camera.url)} latency=${camera.latencyMs} tcp-timeout=${Math.round(camera.noDataTimeoutSeconds * 1_000_000)}${protocols}`;
  if (!audio) return `${src} ! ${video} ! ${sink}`;
  return `${src} src. ! queue ! ${video} ! queue ! ${sink} src. ! queue ! rtpmp4gdepay ! aacparse ! queue ! sink.`;
}

/** `delay` seconds grown by `multiplier` per attempt up to `maxSeconds`, ± jitter. */
export function backoffSeconds(backoff: BackoffConfig, attempt: number, random = Math.random()): number {
  const base = Math.min(backoff.maxSeconds, backoff.initialSeconds * backoff.multiplier ** attempt);
  return base * (1 + backoff.jitter * (2 * random - 1));
}

const toCredentialsOption = (c: RelayCredentials | undefined): CredentialsOption => c;

export class Camera extends EventEmitter<CameraEvents> {
  readonly config: CameraConfig;
  /** Changed by a reload without restarting the camera. */
  backoff: BackoffConfig;
  private readonly connection: RelayConnection;
  private state: CameraState = 'stopped';
  private reconnects = 0;
  private fragmentsPersisted = 0;
  private errorAcks = 0;
  private lastAckAt: number | undefined;
  private bitrateBps = 0;
  private bufferedSeconds = 0;
  private lastError: string | null = null;
  private stopping = false;
  private wake: (() => void) | undefined;
  private loop: Promise<void> | undefined;
  /** The running pipeline, once its start() has resolved (stopping one still starting could hang it). */
  private pipeline: Pipeline | undefined;
  private drainTimeoutMs = 15_000;

  constructor(config: CameraConfig, connection: RelayConnection, backoff: BackoffConfig) {
    super();
    this.config = config;
    this.connection = connection;
    this.backoff = backoff;
  }

  start(): void {
    if (this.loop) return;
    this.stopping = false;
    this.loop = this.supervise();
  }

  /** Drains the running pipeline (its last fragment persisted, within `timeoutMs`) and stops. */
  async stop(timeoutMs = 15_000): Promise<void> {
    this.stopping = true;
    this.drainTimeoutMs = timeoutMs;
    this.wake?.();
    await this.pipeline?.stop({ drain: true, timeoutMs });
    await this.loop;
    this.loop = undefined;
  }

  status(): CameraStatus {
    return {
      name: this.config.name,
      streamName: this.config.streamName,
      state: this.state,
      reconnects: this.reconnects,
      fragmentsPersisted: this.fragmentsPersisted,
      errorAcks: this.errorAcks,
      lastAckAgeSeconds: this.lastAckAt === undefined ? null : (Date.now() - this.lastAckAt) / 1000,
      bitrateBps: this.state === 'streaming' ? this.bitrateBps : 0,
      bufferedSeconds: this.bufferedSeconds,
      lastError: this.lastError,
    };
  }

  private setState(state: CameraState): void {
    if (state === this.state) return;
    this.state = state;
    this.emit('state', state);
  }

  private async supervise(): Promise<void> {
    let attempt = 0;
    while (!this.stopping) {
      this.setState(this.reconnects === 0 ? 'starting' : 'reconnecting');
      const { reason, streamed } = await this.runOnce();
      if (this.stopping) break;
      if (streamed) attempt = 0;
      this.lastError = reason;
      this.reconnects++;
      this.setState('reconnecting');
      const delay = backoffSeconds(this.backoff, attempt++);
      this.emit('log', `${reason}; restarting in ${delay.toFixed(1)} s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay * 1000);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
    this.bitrateBps = 0;
    this.setState('stopped');
  }

  /** The codec and audio to relay: as configured, or (codec auto) what the camera's SDP announces. */
  private async media(): Promise<{ codec: VideoCodec; audio: boolean }> {
    if (this.config.codec !== 'auto') return { codec: this.config.codec, audio: this.config.audio };
    const media = await describeCamera(this.config.url).catch((err: Error) => {
      throw new Error(`cannot DESCRIBE the camera: ${err.message}`);
    });
    if (!media.video) throw new Error('the camera announces no H.264 or H.265 video');
    if (this.config.audio && !media.aac) this.emit('log', 'audio is enabled but the camera announces no AAC track: relaying video only');
    return { codec: media.video, audio: this.config.audio && media.aac };
  }

  /** Runs one pipeline until it fails, ends or stalls; says why, and whether it persisted anything. */
  private async runOnce(): Promise<{ reason: string; streamed: boolean }> {
    let p: Pipeline;
    try {
      const { codec, audio } = await this.media();
      p = new Pipeline(cameraDescription(this.config, codec, audio), {
        ...(this.connection.endpoint ? { endpoint: this.connection.endpoint } : {}),
        ...(this.connection.region ? { region: this.connection.region } : {}),
        ...(this.connection.caCert ? { caCert: this.connection.caCert } : {}),
        credentials: toCredentialsOption(this.connection.credentials),
        stopTimeoutSeconds: 10,
      });
    } catch (err) {
      return { reason: (err as Error).message, streamed: false };
    }
    let streamed = false;
    let lastProgress = Date.now();
    // A stall is judged from kvssink's own once-a-second stats showing nothing new, not from the
    // wall clock: a gap in the stats (this event loop busy) is not the camera's fault. A sink
    // that posts no stats at all for much longer is wedged and restarted too.
    let lastStatsAt = Date.now();
    let framesSent = -1;
    let bufferedMs = -1;
    p.on('fragment-ack', (ack) => {
      lastProgress = Date.now();
      if (ack.eventType === 'ERROR') this.errorAcks++;
      if (ack.eventType !== 'PERSISTED') return;
      streamed = true;
      this.fragmentsPersisted++;
      this.lastAckAt = Date.now();
      if (!this.stopping) this.setState('streaming');
    });
    p.on('stats', (s) => {
      lastStatsAt = Date.now();
      if (s.framesSent !== framesSent || s.bufferedDurationMs !== bufferedMs) lastProgress = Date.now();
      framesSent = s.framesSent;
      bufferedMs = s.bufferedDurationMs;
      this.bitrateBps = s.bitrateBps;
      this.bufferedSeconds = s.bufferedDurationMs / 1000;
    });
    p.on('error', (e) => {
      if (!e.fatal) this.emit('log', `warning: ${e.message} (${e.code})`);
    });
    let watchdog: NodeJS.Timeout | undefined;
    try {
      const stalled = new Promise<string>((resolve) => {
        watchdog = setInterval(() => {
          const timeoutMs = this.config.noDataTimeoutSeconds * 1000;
          if (lastStatsAt - lastProgress > timeoutMs) resolve(`no data for ${this.config.noDataTimeoutSeconds} s`);
          else if (Date.now() - lastStatsAt > Math.max(10_000, 3 * timeoutMs)) resolve('no data (kvssink posts no stats)');
        }, 250);
      });
      const ended = p.finished.then(
        () => 'the stream ended (EOS)',
        (e: unknown) => (e as Error).message,
      );
      await p.start();
      this.pipeline = p;
      if (this.stopping) {
        await p.stop({ drain: true, timeoutMs: this.drainTimeoutMs });
        return { reason: 'stopped', streamed };
      }
      const reason = await Promise.race([stalled, ended]);
      if (!this.stopping) await p.stop({ drain: reason.startsWith('no data'), timeoutMs: 5000 });
      return { reason, streamed };
    } catch (err) {
      await p.stop({ drain: false });
      return { reason: (err as Error).message, streamed };
    } finally {
      this.pipeline = undefined;
      clearInterval(watchdog);
      this.bitrateBps = 0;
    }
  }
}
