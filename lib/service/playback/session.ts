/**
 * Playback sessions shared by HLS and DASH (service-api.md §5.3, §5.4): validation of the
 * selector/mode/expiry members, the in-memory token → session table, and which fragments a
 * playlist or manifest shows at a given moment.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { KvsApiError, invalidArgument } from '../../errors.js';
import type { ServiceContext } from '../context.js';
import type { StreamRecord } from '../control-plane/stream-catalog.js';
import type { StoredFragment } from '../storage/fragment-store.js';
import { epochSeconds } from '../validation.js';
import { streamLayout, type StreamLayout } from './remux.js';

export type PlaybackMode = 'LIVE' | 'LIVE_REPLAY' | 'ON_DEMAND';
export type TimestampKind = 'producer' | 'server';

export const playbackModeSchema = z.enum(['LIVE', 'LIVE_REPLAY', 'ON_DEMAND']);
export const fragmentSelectorSchema = z.strictObject({
  FragmentSelectorType: z.enum(['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP']).optional(),
  TimestampRange: z
    .strictObject({ StartTimestamp: epochSeconds.optional(), EndTimestamp: epochSeconds.optional() })
    .optional(),
});
export const expiresSchema = z.number().int().min(300, 'expected 300-43200 seconds').max(43200, 'expected 300-43200 seconds');
export const maxResultsSchema = z.number().int().min(1, 'expected 1-5000').max(5000, 'expected 1-5000');

const DAY_MS = 24 * 3_600_000;
const LIVE_WINDOW_MS = 30_000;

export interface PlaybackSession {
  token: string;
  kind: 'hls' | 'dash';
  stream: StreamRecord;
  mode: PlaybackMode;
  timestamps: TimestampKind;
  startMs: number | undefined;
  endMs: number | undefined;
  expiresAtMs: number;
  maxFragments: number;
  /** Options of the protocol (DisplayFragmentTimestamp, DiscontinuityMode, …). */
  options: Record<string, string>;
  /** LIVE media sequence numbers: fragment seq → consecutive index, in order of first appearance. */
  liveIndex: Map<number, number>;
  nextLiveIndex: number;
}

const tables = new WeakMap<ServiceContext, Map<string, PlaybackSession>>();
const layouts = new WeakMap<ServiceContext, Map<number, StreamLayout>>();

function table(ctx: ServiceContext): Map<string, PlaybackSession> {
  let t = tables.get(ctx);
  if (!t) tables.set(ctx, (t = new Map()));
  return t;
}

/** The playable layout of a stored header (cached per header id). */
export function layoutOf(ctx: ServiceContext, headerId: number): StreamLayout {
  let m = layouts.get(ctx);
  if (!m) layouts.set(ctx, (m = new Map()));
  let l = m.get(headerId);
  if (!l) m.set(headerId, (l = streamLayout(ctx.store.header(headerId))));
  return l;
}

export interface SessionRequest {
  stream: StreamRecord;
  mode: PlaybackMode | undefined;
  selector: z.infer<typeof fragmentSelectorSchema> | undefined;
  selectorField: string;
  expires: number | undefined;
  maxFragments: number | undefined;
  options: Record<string, string>;
}

/** Validates the request against the stream and its fragments, then opens a session. */
export function createSession(ctx: ServiceContext, kind: 'hls' | 'dash', r: SessionRequest): PlaybackSession {
  const mode = r.mode ?? 'LIVE';
  const sel = r.selector;
  const f = r.selectorField;
  const timestamps: TimestampKind = sel?.FragmentSelectorType === 'PRODUCER_TIMESTAMP' ? 'producer' : 'server';
  const range = sel?.TimestampRange;
  let startMs: number | undefined;
  let endMs: number | undefined;
  if (mode === 'LIVE') {
    if (range !== undefined) throw invalidArgument(`${f}.TimestampRange must not be set when PlaybackMode is LIVE.`);
  } else {
    if (sel?.FragmentSelectorType === undefined) throw invalidArgument(`${f}.FragmentSelectorType is required when PlaybackMode is ${mode}.`);
    if (range?.StartTimestamp === undefined) throw invalidArgument(`${f}.TimestampRange.StartTimestamp is required when PlaybackMode is ${mode}.`);
    if (mode === 'ON_DEMAND' && range.EndTimestamp === undefined) {
      throw invalidArgument(`${f}.TimestampRange.EndTimestamp is required when PlaybackMode is ON_DEMAND.`);
    }
    startMs = range.StartTimestamp;
    endMs = range.EndTimestamp;
    if (endMs !== undefined) {
      if (endMs <= startMs) throw invalidArgument(`${f}.TimestampRange.EndTimestamp must be later than StartTimestamp.`);
      if (endMs - startMs > DAY_MS) throw invalidArgument(`${f}.TimestampRange must not span more than 24 hours.`);
      if (timestamps === 'server' && endMs > Date.now()) {
        throw invalidArgument(`${f}.TimestampRange.EndTimestamp must be in the past with SERVER_TIMESTAMP.`);
      }
    }
  }
  if (r.stream.retentionHours === 0) {
    throw new KvsApiError('NoDataRetentionException', `Stream ${r.stream.name} has no data retention (DataRetentionInHours is 0), so it cannot be played back.`);
  }
  const session: PlaybackSession = {
    token: `${randomBytes(24).toString('base64url')}~`,
    kind,
    stream: r.stream,
    mode,
    timestamps,
    startMs,
    endMs,
    expiresAtMs: Date.now() + (r.expires ?? 300) * 1000,
    maxFragments: r.maxFragments ?? (mode === 'ON_DEMAND' ? 1000 : 5),
    options: r.options,
    liveIndex: new Map(),
    nextLiveIndex: 0,
  };
  let first: StoredFragment | undefined;
  if (mode === 'LIVE') {
    const last = ctx.store.last(r.stream.id);
    if (last && Date.now() - last.serverTimestampMs <= LIVE_WINDOW_MS) first = last;
  } else {
    first = ctx.store.list(r.stream.id, { kind: timestamps, startMs: startMs!, endMs: endMs ?? Number.MAX_SAFE_INTEGER, limit: 1 })[0];
  }
  if (!first) throw new KvsApiError('ResourceNotFoundException', 'No fragments found in the stream for the streaming request.');
  layoutOf(ctx, first.headerId); // refuses unsupported codecs / missing codec private data now
  const t = table(ctx);
  for (const [k, s] of t) if (s.expiresAtMs <= Date.now()) t.delete(k);
  t.set(session.token, session);
  return session;
}

export class SessionError extends Error {
  constructor(readonly status: 403 | 404, message: string) {
    super(message);
  }
}

export function findSession(ctx: ServiceContext, token: string | undefined, kind: 'hls' | 'dash'): PlaybackSession {
  if (!token) throw new SessionError(404, 'SessionToken is required.');
  const s = table(ctx).get(token);
  if (!s || s.kind !== kind) throw new SessionError(404, 'The session token is not valid (unknown session).');
  if (s.expiresAtMs <= Date.now()) {
    table(ctx).delete(token);
    throw new SessionError(403, 'The session token has expired.');
  }
  return s;
}

export interface WindowEntry {
  fragment: StoredFragment;
  /** Media sequence number of the fragment in this session. */
  index: number;
}

/** Fragments the playlist/manifest shows now, oldest first; `complete` when no more will come. */
export function sessionWindow(ctx: ServiceContext, s: PlaybackSession): { entries: WindowEntry[]; complete: boolean } {
  const id = s.stream.id;
  if (s.mode === 'LIVE') {
    const last = ctx.store.last(id);
    if (!last) return { entries: [], complete: false };
    const frags = ctx.store
      .list(id, { kind: 'server', startMs: last.serverTimestampMs - s.maxFragments * 20_000, endMs: Number.MAX_SAFE_INTEGER, limit: 1_000_000 })
      .slice(-s.maxFragments);
    const entries = frags.map((fragment) => {
      let index = s.liveIndex.get(fragment.seq);
      if (index === undefined) s.liveIndex.set(fragment.seq, (index = s.nextLiveIndex++));
      return { fragment, index };
    });
    return { entries, complete: false };
  }
  const frags = ctx.store.list(id, {
    kind: s.timestamps,
    startMs: s.startMs!,
    endMs: s.endMs ?? Number.MAX_SAFE_INTEGER,
    limit: s.maxFragments,
  });
  const complete = s.mode === 'ON_DEMAND' || (s.endMs !== undefined && s.endMs < Date.now() - 5000) || frags.length >= s.maxFragments;
  return { entries: frags.map((fragment, index) => ({ fragment, index })), complete };
}

/** The fragment a media-segment request names, if it belongs to the session's stream. */
export function sessionFragment(ctx: ServiceContext, s: PlaybackSession, seq: number | undefined): StoredFragment {
  const f = seq === undefined ? undefined : ctx.store.get(s.stream.id, seq);
  if (!f) throw new SessionError(404, 'The fragment is not in this stream (FragmentNumber unknown or expired).');
  return f;
}

export const timestampOf = (s: PlaybackSession, f: StoredFragment): number =>
  s.timestamps === 'producer' ? f.producerTimestampMs : f.serverTimestampMs;
