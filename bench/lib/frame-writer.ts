/**
 * A camera-like producer for one stream: every frame (block) of the clip is written as its own
 * HTTP chunk at its real time (30 fps), fragments 1 s apart, with ABSOLUTE epoch-ms timecodes.
 * Records when each frame was written and when each fragment's last byte left the socket.
 */
import type { PutMediaAck } from '../../lib/put-media-ack.js';
import { type Clip, clusterHead } from './media.js';
import { RawPutMedia } from './put-media-socket.js';
import type { ClientSecurity } from './security.js';
import { nowMs } from './util.js';

export interface FragmentRecord {
  timecode: number;
  bytes: number;
  /** Last byte of the fragment handed to the kernel. */
  lastWriteDone?: number;
  persistedAt?: number;
  error?: string;
}

export interface FramePacedWriterOptions {
  host: string;
  port: number;
  /** TLS and signing, as the server asks for them (default: plain). */
  security?: ClientSecurity;
  streamName: string;
  clip: Clip;
  /** Epoch ms at which the first frame is due; its cluster timecode is this, rounded. */
  startAt: number;
  /** Number of fragments to send. */
  fragments: number;
}

export class FramePacedWriter {
  /** By cluster timecode. */
  readonly records = new Map<number, FragmentRecord>();
  /** Absolute frame timecode (cluster + block, ms) -> time its write was issued. */
  readonly frameWrites = new Map<number, number>();
  /** Scheduling lateness of each write (issued - due), ms. */
  readonly lateness: number[] = [];
  errors: string[] = [];
  private conn!: RawPutMedia;

  constructor(private readonly opts: FramePacedWriterOptions) {}

  async open(): Promise<void> {
    this.conn = await RawPutMedia.open({
      host: this.opts.host,
      port: this.opts.port,
      ...(this.opts.security ? { security: this.opts.security } : {}),
      streamName: this.opts.streamName,
      onAck: (ack, at) => this.onAck(ack, at),
    });
    this.conn.send([this.opts.clip.header]);
  }

  private onAck(ack: PutMediaAck, at: number): void {
    if (ack.EventType === 'ERROR') {
      this.errors.push(`${ack.ErrorId} ${ack.ErrorCode}`);
      const r = ack.FragmentTimecode === undefined ? undefined : this.records.get(ack.FragmentTimecode);
      if (r) r.error = String(ack.ErrorCode);
      return;
    }
    if (ack.EventType !== 'PERSISTED' || ack.FragmentTimecode === undefined) return;
    const r = this.records.get(ack.FragmentTimecode);
    if (r && r.persistedAt === undefined) r.persistedAt = at;
  }

  /** Sends every fragment frame by frame at its time; resolves after the last frame is written. */
  run(): Promise<void> {
    const { clip, startAt, fragments } = this.opts;
    // The schedule: one entry per frame.
    interface Step { due: number; buffers: Buffer[]; frameTc: number; record?: FragmentRecord; last: boolean }
    const steps: Step[] = [];
    let fragStart = startAt;
    for (let n = 0; n < fragments; n++) {
      const f = clip.fragments[n % clip.fragments.length]!;
      const tc = Math.round(fragStart);
      const record: FragmentRecord = { timecode: tc, bytes: 0 };
      this.records.set(tc, record);
      f.frames.forEach((frame, i) => {
        const buffers = i === 0 ? [clusterHead(f.body.length, tc), frame.bytes] : [frame.bytes];
        record.bytes += buffers.reduce((s, b) => s + b.length, 0);
        steps.push({ due: tc + frame.offsetMs, buffers, frameTc: tc + frame.offsetMs, record, last: i === f.frames.length - 1 });
      });
      fragStart += f.durationMs;
    }
    return new Promise<void>((resolve) => {
      let i = 0;
      const tick = () => {
        const now = nowMs();
        while (i < steps.length && steps[i]!.due <= now + 0.5) {
          const s = steps[i++]!;
          const issued = nowMs();
          this.lateness.push(issued - s.due);
          this.frameWrites.set(s.frameTc, issued);
          const record = s.record!;
          this.conn.send(s.buffers, s.last ? (at) => (record.lastWriteDone = at) : undefined);
        }
        if (i >= steps.length) return resolve();
        setTimeout(tick, Math.max(0, steps[i]!.due - nowMs()));
      };
      setTimeout(tick, Math.max(0, steps[0]!.due - nowMs()));
    });
  }

  /** Waits until every fragment has its PERSISTED ack (or timeoutMs passes). */
  async settle(timeoutMs: number): Promise<void> {
    const until = nowMs() + timeoutMs;
    while (nowMs() < until) {
      if ([...this.records.values()].every((r) => r.persistedAt !== undefined || r.error !== undefined)) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async close(): Promise<void> {
    await this.conn.finish(5_000);
  }
}
