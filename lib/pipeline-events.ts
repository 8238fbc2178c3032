/**
 * The typed events a Pipeline emits, made from kvssink's bus messages (docs/kvssink.md).
 */
import type { NativeMessage } from './native.js';

export type AckEventType = 'BUFFERING' | 'RECEIVED' | 'PERSISTED' | 'ERROR';

export interface FragmentAck {
  /** Name of the kvssink element. */
  sink: string;
  eventType: AckEventType;
  fragmentNumber: string;
  /** The fragment's cluster timecode (ms since the epoch with absolute-fragment-times). */
  timecode: number;
  /** Fragment end to PERSISTED, ms (PERSISTED only). */
  latencyMs?: number;
  /** ERROR acks only. */
  errorId?: number;
}

export interface UploadStats {
  sink: string;
  bytesSent: number;
  framesSent: number;
  fragmentsPersisted: number;
  fragmentsReceived: number;
  fragmentsDropped: number;
  bufferedBytes: number;
  bufferedDurationMs: number;
  bitrateBps: number;
  lastAckLatencyMs: number;
  connections: number;
}

export interface ConnectionEvent {
  sink: string;
  connectionId: number;
  state: 'connecting' | 'closed' | 'dropped' | 'rotating';
  reason: string;
  httpStatus: number;
}

export interface DroppedFragment {
  sink: string;
  fragmentTimecode: number;
  frames: number;
  bytes: number;
}

/** kvssink-latency-pressure: the media not yet persisted went above max-latency. */
export interface LatencyPressure {
  sink: string;
  bufferedDurationMs: number;
  maxLatencyMs: number;
}

export interface StateChange {
  from: string;
  to: string;
}

/** A bus message without a typed event of its own. */
export type BusMessage = NativeMessage;

const num = (v: unknown): number => (typeof v === 'number' ? v : Number(v ?? 0));
const str = (v: unknown): string => (v === undefined ? '' : String(v));

export function toFragmentAck(m: NativeMessage): FragmentAck {
  const f = m.fields;
  const ack: FragmentAck = {
    sink: m.source,
    eventType: str(f['event-type']) as AckEventType,
    fragmentNumber: str(f['fragment-number']),
    timecode: num(f.timecode),
  };
  if (f['latency-ms'] !== undefined) ack.latencyMs = num(f['latency-ms']);
  if (f['error-id'] !== undefined) ack.errorId = num(f['error-id']);
  return ack;
}

export function toUploadStats(m: NativeMessage): UploadStats {
  const f = m.fields;
  return {
    sink: m.source,
    bytesSent: num(f['bytes-sent']),
    framesSent: num(f['frames-sent']),
    fragmentsPersisted: num(f['fragments-persisted']),
    fragmentsReceived: num(f['fragments-received']),
    fragmentsDropped: num(f['fragments-dropped']),
    bufferedBytes: num(f['buffered-bytes']),
    bufferedDurationMs: num(f['buffered-duration-ms']),
    bitrateBps: num(f['bitrate-bps']),
    lastAckLatencyMs: num(f['last-ack-latency-ms']),
    connections: num(f.connections),
  };
}

export function toConnectionEvent(m: NativeMessage): ConnectionEvent {
  const f = m.fields;
  return {
    sink: m.source,
    connectionId: num(f['connection-id']),
    state: str(f.state) as ConnectionEvent['state'],
    reason: str(f.reason),
    httpStatus: num(f['http-status']),
  };
}

export function toLatencyPressure(m: NativeMessage): LatencyPressure {
  return { sink: m.source, bufferedDurationMs: num(m.fields['buffered-duration-ms']), maxLatencyMs: num(m.fields['max-latency-ms']) };
}

export function toDroppedFragment(m: NativeMessage): DroppedFragment {
  const f = m.fields;
  return { sink: m.source, fragmentTimecode: num(f['fragment-timecode']), frames: num(f.frames), bytes: num(f.bytes) };
}
