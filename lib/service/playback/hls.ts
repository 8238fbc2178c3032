/**
 * HLS (service-api.md §5.3): GetHLSStreamingSessionURL and the session's player resources,
 * served with unsigned GETs authorised by the session token only:
 * `/hls/v1/getHLSMasterPlaylist.m3u8`, `getHLSMediaPlaylist.m3u8`, `getMP4InitFragment.mp4`,
 * `getMP4MediaFragment.mp4?FragmentNumber=…`. Segments are fMP4 remuxed from the stored
 * fragments (one media segment per KVS fragment; video and audio muxed together).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import { invalidArgument } from '../../errors.js';
import type { ServiceContext } from '../context.js';
import type { JsonOperation } from '../operations.js';
import { parseFragmentNumber } from '../storage/fragment-number.js';
import { parseInput, streamArn, streamName } from '../validation.js';
import { initSegment, mediaSegment } from './fmp4.js';
import { fragmentRuns } from './remux.js';
import {
  SessionError,
  createSession,
  expiresSchema,
  findSession,
  fragmentSelectorSchema,
  layoutOf,
  maxResultsSchema,
  playbackModeSchema,
  sessionFragment,
  sessionWindow,
  timestampOf,
  type PlaybackSession,
} from './session.js';

const HlsInput = z.strictObject({
  StreamName: streamName.optional(),
  StreamARN: streamArn.optional(),
  PlaybackMode: playbackModeSchema.optional(),
  HLSFragmentSelector: fragmentSelectorSchema.optional(),
  ContainerFormat: z.enum(['FRAGMENTED_MP4', 'MPEG_TS']).optional(),
  DiscontinuityMode: z.enum(['ALWAYS', 'NEVER', 'ON_DISCONTINUITY']).optional(),
  DisplayFragmentTimestamp: z.enum(['ALWAYS', 'NEVER']).optional(),
  Expires: expiresSchema.optional(),
  MaxMediaPlaylistFragmentResults: maxResultsSchema.optional(),
});

export const getHLSStreamingSessionURL: JsonOperation = (ctx, input, request) => {
  const body = parseInput(HlsInput, input);
  if (body.ContainerFormat === 'MPEG_TS') {
    throw invalidArgument('ContainerFormat MPEG_TS is not supported by openkvs; use FRAGMENTED_MP4.');
  }
  const stream = ctx.streams.resolve(body);
  const producer = body.HLSFragmentSelector?.FragmentSelectorType === 'PRODUCER_TIMESTAMP';
  const s = createSession(ctx, 'hls', {
    stream,
    mode: body.PlaybackMode,
    selector: body.HLSFragmentSelector,
    selectorField: 'HLSFragmentSelector',
    expires: body.Expires,
    maxFragments: body.MaxMediaPlaylistFragmentResults,
    options: {
      discontinuity: body.DiscontinuityMode ?? (producer ? 'NEVER' : 'ALWAYS'),
      timestamps: body.DisplayFragmentTimestamp ?? 'NEVER',
    },
  });
  return { HLSStreamingSessionURL: `${request.baseUrl}/hls/v1/getHLSMasterPlaylist.m3u8?SessionToken=${s.token}` };
};

const tok = (s: PlaybackSession): string => encodeURIComponent(s.token);

function masterPlaylist(ctx: ServiceContext, s: PlaybackSession): string {
  const { entries } = sessionWindow(ctx, s);
  const first = entries[0]?.fragment ?? ctx.store.last(s.stream.id);
  const layout = first ? layoutOf(ctx, first.headerId) : undefined;
  const video = layout?.tracks.find((t) => t.kind === 'video');
  const codecs = layout?.tracks.map((t) => t.codecString).join(',') ?? 'avc1.42e01e';
  const bytes = entries.reduce((a, e) => a + e.fragment.sizeBytes, 0);
  const ms = entries.reduce((a, e) => a + e.fragment.durationMs, 0);
  const bandwidth = ms > 0 ? Math.max(1, Math.round((bytes * 8 * 1000) / ms)) : 1_000_000;
  const attrs = [`BANDWIDTH=${bandwidth}`, `CODECS="${codecs}"`];
  if (video?.width && video.height) attrs.push(`RESOLUTION=${video.width}x${video.height}`);
  return [
    '#EXTM3U',
    '#EXT-X-VERSION:7',
    '#EXT-X-INDEPENDENT-SEGMENTS',
    `#EXT-X-STREAM-INF:${attrs.join(',')}`,
    `getHLSMediaPlaylist.m3u8?SessionToken=${tok(s)}&TrackNumber=1`,
    '',
  ].join('\n');
}

function mediaPlaylist(ctx: ServiceContext, s: PlaybackSession): string {
  const { entries, complete } = sessionWindow(ctx, s);
  const mode = s.options['discontinuity'];
  const showTime = s.options['timestamps'] === 'ALWAYS';
  const target = Math.max(1, ...entries.map((e) => Math.ceil(e.fragment.durationMs / 1000)));
  const lines = ['#EXTM3U', '#EXT-X-VERSION:7'];
  if (s.mode === 'ON_DEMAND') lines.push('#EXT-X-PLAYLIST-TYPE:VOD');
  else if (s.mode === 'LIVE_REPLAY') lines.push('#EXT-X-PLAYLIST-TYPE:EVENT');
  const firstIndex = entries[0]?.index ?? 0;
  lines.push(`#EXT-X-TARGETDURATION:${target}`, `#EXT-X-MEDIA-SEQUENCE:${firstIndex}`);
  if (mode === 'ALWAYS' && firstIndex > 0) lines.push(`#EXT-X-DISCONTINUITY-SEQUENCE:${firstIndex}`);
  lines.push('#EXT-X-INDEPENDENT-SEGMENTS');
  let prevEnd: number | undefined;
  let mapHeader: number | undefined;
  for (const { fragment: f } of entries) {
    const start = f.producerTimestampMs;
    const gap = prevEnd !== undefined && Math.abs(start - prevEnd) > 50;
    if (mode === 'ALWAYS' || (mode === 'ON_DISCONTINUITY' && gap) || (mapHeader !== undefined && mapHeader !== f.headerId)) {
      lines.push('#EXT-X-DISCONTINUITY');
    }
    if (mapHeader !== f.headerId) {
      lines.push(`#EXT-X-MAP:URI="getMP4InitFragment.mp4?SessionToken=${tok(s)}&TrackNumber=1&FragmentNumber=${f.fragmentNumber}"`);
      mapHeader = f.headerId;
    }
    if (showTime) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(timestampOf(s, f)).toISOString()}`);
    lines.push(`#EXTINF:${(f.durationMs / 1000).toFixed(3)},`);
    lines.push(`getMP4MediaFragment.mp4?FragmentNumber=${f.fragmentNumber}&SessionToken=${tok(s)}&TrackNumber=1`);
    prevEnd = start + f.durationMs;
  }
  if (complete) lines.push('#EXT-X-ENDLIST');
  return `${lines.join('\n')}\n`;
}

/** The init segment of the session (of the header a given fragment was stored with, if named). */
export function sessionInit(ctx: ServiceContext, s: PlaybackSession, fragmentNumber: string | undefined): Buffer {
  let headerId: number | undefined;
  if (fragmentNumber !== undefined) headerId = sessionFragment(ctx, s, parseFragmentNumber(fragmentNumber)).headerId;
  headerId ??= (sessionWindow(ctx, s).entries[0]?.fragment ?? ctx.store.last(s.stream.id))?.headerId;
  if (headerId === undefined) throw new SessionError(404, 'The stream has no fragments.');
  return initSegment(layoutOf(ctx, headerId).tracks);
}

/** One media segment (moof + mdat) for a stored fragment; media time is epoch ms in track ticks. */
export async function sessionMedia(ctx: ServiceContext, s: PlaybackSession, fragmentNumber: string | undefined): Promise<Buffer> {
  const f = sessionFragment(ctx, s, fragmentNumber === undefined ? undefined : parseFragmentNumber(fragmentNumber));
  const stored = await ctx.store.read(f);
  return mediaSegment(f.seq >>> 0 || 1, fragmentRuns(layoutOf(ctx, f.headerId), stored, f, 0));
}

type Query = Record<string, string | undefined>;

export async function serve(reply: FastifyReply, type: string, make: () => string | Buffer | Promise<string | Buffer>): Promise<FastifyReply> {
  reply.header('access-control-allow-origin', '*').header('cache-control', 'no-cache');
  try {
    const out = await make();
    return reply.code(200).header('content-type', type).send(out);
  } catch (err) {
    if (err instanceof SessionError) {
      return reply
        .code(err.status)
        .header('content-type', 'application/json')
        .header('x-amzn-errortype', err.status === 403 ? 'ExpiredTokenException' : 'ResourceNotFoundException')
        .send(JSON.stringify({ Message: err.message }));
    }
    throw err;
  }
}

/** A session document (playlist, manifest): its content type and how it is made. */
export type SessionDocument = readonly [contentType: string, make: (s: PlaybackSession) => string | Promise<string>];

/**
 * GET routes of a playback protocol under `base` (`/hls/v1`, `/dash/v1`): its documents, plus the
 * fMP4 init and media fragments every session serves. Authorised by the session token only.
 */
export function registerSessionRoutes(
  app: FastifyInstance,
  ctx: ServiceContext,
  kind: 'hls' | 'dash',
  documents: Readonly<Record<string, SessionDocument>>,
): void {
  app.get(`/${kind}/v1/:resource`, async (req, reply) => {
    const q = req.query as Query;
    const resource = (req.params as { resource: string }).resource;
    const session = () => findSession(ctx, q['SessionToken'], kind);
    const doc = documents[resource];
    if (doc) return serve(reply, doc[0], () => doc[1](session()));
    switch (resource) {
      case 'getMP4InitFragment.mp4':
        return serve(reply, 'video/mp4', () => sessionInit(ctx, session(), q['FragmentNumber']));
      case 'getMP4MediaFragment.mp4':
        return serve(reply, 'video/mp4', () => sessionMedia(ctx, session(), q['FragmentNumber']));
      default:
        return serve(reply, 'text/plain', () => {
          throw new SessionError(404, `Unknown ${kind.toUpperCase()} resource ${resource}.`);
        });
    }
  });
}

/** GET routes of the HLS player resources. */
export function registerHlsRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  registerSessionRoutes(app, ctx, 'hls', {
    'getHLSMasterPlaylist.m3u8': ['application/vnd.apple.mpegurl', (s) => masterPlaylist(ctx, s)],
    'getHLSMediaPlaylist.m3u8': ['application/vnd.apple.mpegurl', (s) => mediaPlaylist(ctx, s)],
  });
}
