/**
 * DASH (service-api.md §5.4): GetDASHStreamingSessionURL and the session's resources
 * `/dash/v1/getDASHManifest.mpd`, `getMP4InitFragment.mp4`, `getMP4MediaFragment.mp4`, served with
 * unsigned GETs authorised by the token only. Same sessions and fMP4 segments as HLS; the
 * manifest lists each KVS fragment in a SegmentList/SegmentTimeline (media time = epoch ms).
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { ServiceContext } from '../context.js';
import type { JsonOperation } from '../operations.js';
import { parseInput, streamArn, streamName } from '../validation.js';
import { registerSessionRoutes } from './hls.js';
import {
  SessionError,
  createSession,
  expiresSchema,
  fragmentSelectorSchema,
  layoutOf,
  maxResultsSchema,
  playbackModeSchema,
  sessionWindow,
  timestampOf,
  type PlaybackSession,
} from './session.js';

const DashInput = z.strictObject({
  StreamName: streamName.optional(),
  StreamARN: streamArn.optional(),
  PlaybackMode: playbackModeSchema.optional(),
  DASHFragmentSelector: fragmentSelectorSchema.optional(),
  DisplayFragmentTimestamp: z.enum(['ALWAYS', 'NEVER']).optional(),
  DisplayFragmentNumber: z.enum(['ALWAYS', 'NEVER']).optional(),
  Expires: expiresSchema.optional(),
  MaxManifestFragmentResults: maxResultsSchema.optional(),
});

export const getDASHStreamingSessionURL: JsonOperation = (ctx, input, request) => {
  const body = parseInput(DashInput, input);
  const stream = ctx.streams.resolve(body);
  const s = createSession(ctx, 'dash', {
    stream,
    mode: body.PlaybackMode,
    selector: body.DASHFragmentSelector,
    selectorField: 'DASHFragmentSelector',
    expires: body.Expires,
    maxFragments: body.MaxManifestFragmentResults,
    options: { timestamps: body.DisplayFragmentTimestamp ?? 'NEVER', numbers: body.DisplayFragmentNumber ?? 'NEVER' },
  });
  return { DASHStreamingSessionURL: `${request.baseUrl}/dash/v1/getDASHManifest.mpd?SessionToken=${s.token}` };
};

const xml = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
const isoDuration = (ms: number): string => `PT${(ms / 1000).toFixed(3)}S`;

function manifest(ctx: ServiceContext, s: PlaybackSession): string {
  const { entries, complete } = sessionWindow(ctx, s);
  if (entries.length === 0 && s.mode !== 'LIVE') throw new SessionError(404, 'No fragments found in the stream for the streaming request.');
  const first = entries[0]?.fragment ?? ctx.store.last(s.stream.id);
  if (!first) throw new SessionError(404, 'The stream has no fragments.');
  const layout = layoutOf(ctx, first.headerId);
  const video = layout.tracks.find((t) => t.kind === 'video');
  const audio = layout.tracks.find((t) => t.kind === 'audio');
  const tok = encodeURIComponent(s.token);
  const timeline = entries
    .map(({ fragment: f }) => {
      let attrs = `t="${f.producerTimestampMs}" d="${f.durationMs}"`;
      if (s.options['timestamps'] === 'ALWAYS') attrs += ` kvs:ts="${(timestampOf(s, f) / 1000).toFixed(3)}"`;
      if (s.options['numbers'] === 'ALWAYS') attrs += ` kvs:fn="${f.fragmentNumber}"`;
      return `          <S ${attrs}/>`;
    })
    .join('\n');
  const urls = entries
    .map(({ fragment: f }) => `        <SegmentURL media="${xml(`getMP4MediaFragment.mp4?FragmentNumber=${f.fragmentNumber}&SessionToken=${tok}`)}"/>`)
    .join('\n');
  const totalMs = entries.reduce((a, e) => a + e.fragment.durationMs, 0);
  const maxMs = Math.max(1000, ...entries.map((e) => e.fragment.durationMs));
  const bytes = entries.reduce((a, e) => a + e.fragment.sizeBytes, 0);
  const bandwidth = totalMs > 0 ? Math.max(1, Math.round((bytes * 8000) / totalMs)) : 1_000_000;
  const live = !complete;
  const mpdAttrs = live
    ? `type="dynamic" availabilityStartTime="1970-01-01T00:00:00Z" publishTime="${new Date().toISOString()}" minimumUpdatePeriod="${isoDuration(maxMs)}" timeShiftBufferDepth="${isoDuration(Math.max(totalMs, maxMs))}" suggestedPresentationDelay="${isoDuration(maxMs * 2)}"`
    : `type="static" mediaPresentationDuration="${isoDuration(totalMs)}"`;
  const codecs = layout.tracks.map((t) => t.codecString).join(',');
  const rep = [
    `id="1" bandwidth="${bandwidth}" codecs="${codecs}"`,
    video?.width ? `width="${video.width}" height="${video.height}"` : '',
    audio ? `audioSamplingRate="${audio.sampleRate}"` : '',
  ].filter(Boolean).join(' ');
  return `<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:kvs="https://kinesisvideo.amazonaws.com/dash/kvs" profiles="urn:mpeg:dash:profile:isoff-live:2011" minBufferTime="${isoDuration(maxMs)}" ${mpdAttrs}>
  <Period id="0" start="PT0S">
    <AdaptationSet id="0" contentType="${video ? 'video' : 'audio'}" mimeType="${video ? 'video' : 'audio'}/mp4" segmentAlignment="true" startWithSAP="1">
      <Representation ${rep}>
        <SegmentList timescale="1000" presentationTimeOffset="${entries[0]?.fragment.producerTimestampMs ?? 0}">
        <Initialization sourceURL="${xml(`getMP4InitFragment.mp4?SessionToken=${tok}&FragmentNumber=${first.fragmentNumber}`)}"/>
        <SegmentTimeline>
${timeline}
        </SegmentTimeline>
${urls}
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
`;
}

export function registerDashRoutes(app: FastifyInstance, ctx: ServiceContext): void {
  registerSessionRoutes(app, ctx, 'dash', {
    'getDASHManifest.mpd': ['application/dash+xml', (s) => manifest(ctx, s)],
  });
}
