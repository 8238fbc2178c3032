/**
 * GetImages (service-api.md §5.6): JPEG or PNG images sampled every SamplingInterval ms over
 * [StartTimestamp, EndTimestamp), each decoded by ffmpeg (frame-decoder.ts) from the frame at or
 * just before the sample time in the fragment containing it.
 */
import { z } from 'zod';
import { KvsApiError, invalidArgument } from '../../errors.js';
import { ID, elementPayload, readBlockHeader, readChildren, readUint } from '../../mkv/ebml.js';
import type { ServiceContext } from '../context.js';
import { clusterOffset, storedDocument } from '../media/fragment-document.js';
import type { JsonOperation } from '../operations.js';
import type { FragmentHeader, StoredFragment, TimestampKind } from '../storage/fragment-store.js';
import { epochSeconds, parseInput, streamArn, streamName, toEpochSeconds } from '../validation.js';
import { DecodeError, FrameDecoder, type ImageFormat } from './frame-decoder.js';
import { pageToken } from './page-token.js';

export const GET_IMAGES_LIMITS = {
  maxRangeMs: 300_000,
  minSamplingMs: 200,
  maxSamplingMs: 20_000,
  /** The §8 example's value (and the older documented minimum). */
  defaultSamplingMs: 3_000,
  maxResults: 100,
  defaultMaxResults: 25,
  defaultJpegQuality: 80,
  maxImageContentChars: 6_291_456,
} as const;
const L = GET_IMAGES_LIMITS;

const int = (field: string, min: number, max: number) =>
  z
    .number({ error: `expected an integer ${min}-${max}` })
    .int({ error: `expected an integer ${min}-${max}` })
    .min(min, { error: `expected an integer ${min}-${max}` })
    .max(max, { error: `expected an integer ${min}-${max}` })
    .describe(field);

const GetImagesInput = z.strictObject({
  StreamName: streamName.optional(),
  StreamARN: streamArn.optional(),
  ImageSelectorType: z.enum(['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP'], { error: 'expected PRODUCER_TIMESTAMP or SERVER_TIMESTAMP' }),
  StartTimestamp: epochSeconds,
  EndTimestamp: epochSeconds,
  SamplingInterval: int('SamplingInterval', L.minSamplingMs, L.maxSamplingMs).optional(),
  Format: z.enum(['JPEG', 'PNG'], { error: 'expected JPEG or PNG' }),
  FormatConfig: z
    .strictObject({
      JPEGQuality: z
        .string({ error: 'expected a string "1".."100"' })
        .regex(/^(100|[1-9][0-9]?)$/, { error: 'expected a string "1".."100"' })
        .optional(),
    })
    .optional(),
  WidthPixels: int('WidthPixels', 1, 3840).optional(),
  HeightPixels: int('HeightPixels', 1, 2160).optional(),
  MaxResults: int('MaxResults', 1, L.maxResults).optional(),
  NextToken: z
    .string()
    .min(1)
    .max(4096)
    .regex(/^[a-zA-Z0-9+/]+={0,2}$/, 'expected a token from a previous response')
    .optional(),
});

const TokenBody = z.strictObject({
  s: z.number().int(), // stream id
  n: z.number().int(), // next sample, ms
  f: z.number().int(), // StartTimestamp ms
  t: z.number().int(), // EndTimestamp ms
  i: z.number().int(), // SamplingInterval ms
  k: z.enum(['producer', 'server']),
});
type Token = z.infer<typeof TokenBody>;

const { encode: encodeToken, decode: decodeToken } = pageToken(TokenBody, 'GetImages');

/** One decoder (and image cache) per server. */
const decoders = new WeakMap<ServiceContext, FrameDecoder>();
export function frameDecoderFor(ctx: ServiceContext): FrameDecoder {
  let d = decoders.get(ctx);
  if (!d) decoders.set(ctx, (d = new FrameDecoder()));
  return d;
}

interface FragmentFrames {
  document: Buffer[];
  /** Video frame presentation times from the fragment's start (cluster timecode), ms, ascending. */
  frames: number[];
  /** Earliest block time of any track from the fragment's start, ms (ffmpeg's time zero). */
  zeroMs: number;
}

function videoTrackAndScale(header: FragmentHeader): { track: number | undefined; scaleMs: number } {
  let track: number | undefined;
  let scaleMs = 1;
  for (const top of readChildren(header.tracks)) {
    if (top.id === ID.Info) {
      for (const f of readChildren(top.data)) if (f.id === ID.TimecodeScale) scaleMs = readUint(f.data) / 1e6;
    } else if (top.id === ID.Tracks) {
      for (const entry of readChildren(top.data)) {
        if (entry.id !== ID.TrackEntry) continue;
        let number = 0;
        let type = 0;
        for (const f of readChildren(entry.data)) {
          if (f.id === ID.TrackNumber) number = readUint(f.data);
          else if (f.id === ID.TrackType) type = readUint(f.data);
        }
        if (type === 1 && track === undefined) track = number;
      }
    }
  }
  return { track, scaleMs };
}

async function loadFragment(ctx: ServiceContext, f: StoredFragment): Promise<FragmentFrames> {
  const header = ctx.store.header(f.headerId);
  const stored = await ctx.store.read(f);
  const { track, scaleMs } = videoTrackAndScale(header);
  if (track === undefined) throw new DecodeError('the fragment has no video track');
  const frames: number[] = [];
  let zero = Infinity;
  const at = clusterOffset(stored);
  for (const child of readChildren(elementPayload(stored.subarray(at)))) {
    const block = child.id === ID.SimpleBlock ? child.data : child.id === ID.BlockGroup ? blockOf(child.data) : undefined;
    if (!block) continue;
    const h = readBlockHeader(block);
    const ms = h.timecode * scaleMs;
    zero = Math.min(zero, ms);
    if (h.track === track) frames.push(ms);
  }
  if (frames.length === 0) throw new DecodeError('the fragment has no video frames');
  frames.sort((a, b) => a - b);
  return { document: storedDocument(header, stored, f, 0), frames, zeroMs: zero };
}

function blockOf(group: Buffer): Buffer | undefined {
  for (const c of readChildren(group)) if (c.id === ID.Block) return c.data;
  return undefined;
}

const startOf = (f: StoredFragment, kind: TimestampKind): number => (kind === 'server' ? f.serverTimestampMs : f.producerTimestampMs);

type ImageJson = { TimeStamp: number; ImageContent?: string; Error?: 'NO_MEDIA' | 'MEDIA_ERROR' };

const getImages: JsonOperation = async (ctx, input) => {
  const body = parseInput(GetImagesInput, input);
  const start = body.StartTimestamp;
  const end = body.EndTimestamp;
  if (end <= start) throw invalidArgument('EndTimestamp must be after StartTimestamp.');
  if (end - start > L.maxRangeMs) {
    throw invalidArgument(`The range from StartTimestamp to EndTimestamp must not exceed ${L.maxRangeMs / 1000} seconds.`);
  }
  const kind: TimestampKind = body.ImageSelectorType === 'SERVER_TIMESTAMP' ? 'server' : 'producer';
  const interval = body.SamplingInterval ?? L.defaultSamplingMs;
  const stream = ctx.streams.resolve(body);
  if (stream.retentionHours === 0) {
    throw new KvsApiError('NoDataRetentionException', `Stream ${stream.name} has no data retention (DataRetentionInHours is 0); GetImages needs stored media.`);
  }

  let next = start;
  if (body.NextToken !== undefined) {
    const tok = decodeToken(body.NextToken);
    if (tok.s !== stream.id) throw invalidArgument('NextToken belongs to another stream.');
    if (tok.f !== start || tok.t !== end || tok.i !== interval || tok.k !== kind) {
      throw invalidArgument('NextToken belongs to a request with another ImageSelectorType, time range or SamplingInterval.');
    }
    next = tok.n;
  } else {
    // No fragment overlapping the range at all (service-api.md §10 item 9).
    const last = ctx.store.atTimestamp(stream.id, kind, end - 1);
    if (!last || startOf(last, kind) >= end || startOf(last, kind) + Math.max(1, last.durationMs) <= start) {
      throw new KvsApiError('ResourceNotFoundException', `No fragments of stream ${stream.name} have media in the requested range.`);
    }
  }

  const limit = body.MaxResults ?? L.defaultMaxResults;
  const samples: number[] = [];
  for (let t = next; t < end && samples.length < limit; t += interval) samples.push(t);
  const after = samples.length > 0 ? samples[samples.length - 1]! + interval : end;

  const format: ImageFormat = body.Format;
  const quality = Number(body.FormatConfig?.JPEGQuality ?? L.defaultJpegQuality);
  const decoder = frameDecoderFor(ctx);
  const loaded = new Map<number, Promise<FragmentFrames>>();

  const one = async (t: number): Promise<ImageJson> => {
    const TimeStamp = toEpochSeconds(t);
    const f = ctx.store.atTimestamp(stream.id, kind, t);
    const fStart = f && startOf(f, kind);
    if (!f || fStart === undefined || t < fStart || t >= fStart + f.durationMs) return { TimeStamp, Error: 'NO_MEDIA' };
    try {
      let p = loaded.get(f.seq);
      if (!p) loaded.set(f.seq, (p = loadFragment(ctx, f)));
      const frag = await p;
      const offset = t - fStart;
      let frame = frag.frames[0]!;
      for (const ms of frag.frames) if (ms <= offset + 1e-6) frame = ms;
      const image = await decoder.decode(`${stream.id}/${f.seq}`, {
        document: frag.document,
        offsetMs: frame - frag.zeroMs,
        format,
        width: body.WidthPixels,
        height: body.HeightPixels,
        quality,
      });
      const ImageContent = image.toString('base64');
      if (ImageContent.length > L.maxImageContentChars) return { TimeStamp, Error: 'MEDIA_ERROR' };
      return { TimeStamp, ImageContent };
    } catch (err) {
      ctx.log.warn({ err, stream: stream.name, fragment: f.fragmentNumber, at: t }, 'GetImages: decoding a frame failed');
      return { TimeStamp, Error: 'MEDIA_ERROR' };
    }
  };

  const Images = await Promise.all(samples.map(one));
  return {
    Images,
    ...(after < end ? { NextToken: encodeToken({ s: stream.id, n: after, f: start, t: end, i: interval, k: kind }) } : {}),
  };
};

export const getImagesOperations = { getImages };
