/**
 * GetClip (service-api.md §5.5): one MP4 for a time range, remuxed from the stored fragments
 * without re-encoding. The file is a fragmented MP4 (ftyp + moov with the movie duration, then
 * one moof/mdat per KVS fragment), timed from zero at the first fragment's start. Like the
 * service, the clip holds at most the first 200 fragments / 100 MB from the start of the range.
 */
import { z } from 'zod';
import { KvsApiError, invalidArgument } from '../../errors.js';
import { ResponseWriter } from '../media/response-writer.js';
import type { StreamingOperation } from '../operations.js';
import { epochSeconds, parseInput, streamArn, streamName } from '../validation.js';
import { initSegment, mediaSegment } from './fmp4.js';
import { fragmentRuns } from './remux.js';
import { layoutOf } from './session.js';

export const CLIP_MAX_FRAGMENTS = 200;
export const CLIP_MAX_BYTES = 100 * 1024 * 1024;
const DAY_MS = 24 * 3_600_000;

const GetClipInput = z.strictObject({
  StreamName: streamName.optional(),
  StreamARN: streamArn.optional(),
  ClipFragmentSelector: z.strictObject({
    FragmentSelectorType: z.enum(['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP']),
    TimestampRange: z.strictObject({ StartTimestamp: epochSeconds, EndTimestamp: epochSeconds }),
  }),
});

export const getClip: StreamingOperation = async (ctx, input, _req, res) => {
  const body = parseInput(GetClipInput, input);
  const stream = ctx.streams.resolve(body);
  const sel = body.ClipFragmentSelector;
  const { StartTimestamp: startMs, EndTimestamp: endMs } = sel.TimestampRange;
  const kind = sel.FragmentSelectorType === 'SERVER_TIMESTAMP' ? 'server' : 'producer';
  if (endMs <= startMs) throw invalidArgument('ClipFragmentSelector.TimestampRange.EndTimestamp must be later than StartTimestamp.');
  if (endMs - startMs > DAY_MS) throw invalidArgument('ClipFragmentSelector.TimestampRange must not span more than 24 hours.');
  if (kind === 'server' && endMs > Date.now()) {
    throw invalidArgument('ClipFragmentSelector.TimestampRange.EndTimestamp must be in the past with SERVER_TIMESTAMP.');
  }
  if (stream.retentionHours === 0) {
    throw new KvsApiError('NoDataRetentionException', `Stream ${stream.name} has no data retention (DataRetentionInHours is 0), so no clip can be made.`);
  }
  const listed = ctx.store.list(stream.id, { kind, startMs, endMs, limit: CLIP_MAX_FRAGMENTS });
  if (listed.length === 0) throw new KvsApiError('ResourceNotFoundException', 'No fragments found in the stream for the clip request.');
  const headerId = listed[0]!.headerId;
  const layout = layoutOf(ctx, headerId);
  // One codec configuration per file: stop at a header change; stop before 100 MB.
  const fragments = [];
  let bytes = 0;
  for (const f of listed) {
    if (f.headerId !== headerId || bytes + f.sizeBytes > CLIP_MAX_BYTES) break;
    bytes += f.sizeBytes;
    fragments.push(f);
  }
  if (fragments.length === 0) throw new KvsApiError('ClientLimitExceededException', `The first fragment is larger than the ${CLIP_MAX_BYTES} byte clip limit.`);
  const origin = fragments[0]!.producerTimestampMs;
  const last = fragments[fragments.length - 1]!;
  const durationMs = last.producerTimestampMs + last.durationMs - origin;
  // Read and remux the first fragment before answering, so media errors still get an API error.
  let next = fragmentRuns(layout, await ctx.store.read(fragments[0]!), fragments[0]!, origin);
  const out = new ResponseWriter(res);
  res.writeHead(200, { 'content-type': 'video/mp4' });
  await out.write([initSegment(layout.tracks, durationMs)]);
  for (let i = 0; i < fragments.length && !out.closed; i++) {
    await out.write([mediaSegment(i + 1, next)]);
    const f = fragments[i + 1];
    if (f) next = fragmentRuns(layout, await ctx.store.read(f), f, origin);
  }
  out.end();
};
