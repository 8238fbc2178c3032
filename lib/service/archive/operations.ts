/**
 * Archived media (service-api.md §5): ListFragments and GetMediaForFragmentList.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { KvsApiError, invalidArgument } from '../../errors.js';
import type { ServiceContext } from '../context.js';
import { errorDocument, storedDocument } from '../media/fragment-document.js';
import { ResponseWriter } from '../media/response-writer.js';
import { getImagesOperations } from './get-images.js';
import type { JsonOperation, StreamingOperation } from '../operations.js';
import { IntegrityError } from '../storage/fragment-cipher.js';
import { parseFragmentNumber } from '../storage/fragment-number.js';
import type { StoredFragment } from '../storage/fragment-store.js';
import { epochSeconds, parseInput, streamArn, streamName, toEpochSeconds } from '../validation.js';
import { pageToken } from './page-token.js';

const TimestampRange = z.strictObject({ StartTimestamp: epochSeconds, EndTimestamp: epochSeconds });

const ListFragmentsInput = z.strictObject({
  StreamName: streamName.optional(),
  StreamARN: streamArn.optional(),
  MaxResults: z.number().int().min(1).max(1000).optional(),
  NextToken: z.string().min(1).max(4096).regex(/^[a-zA-Z0-9+/]+={0,2}$/, 'expected a token from a previous response').optional(),
  FragmentSelector: z
    .strictObject({
      FragmentSelectorType: z.enum(['PRODUCER_TIMESTAMP', 'SERVER_TIMESTAMP']),
      TimestampRange,
    })
    .optional(),
});

const TokenBody = z.strictObject({
  s: z.number().int(), // stream id
  a: z.number().int(), // after seq
  k: z.enum(['producer', 'server']),
  f: z.number(), // range start ms
  t: z.number(), // range end ms
});
type Token = z.infer<typeof TokenBody>;

const { encode: encodeToken, decode: decodeToken } = pageToken(TokenBody, 'ListFragments');

const fragmentJson = (f: StoredFragment) => ({
  FragmentNumber: f.fragmentNumber,
  FragmentSizeInBytes: f.sizeBytes,
  ProducerTimestamp: toEpochSeconds(f.producerTimestampMs),
  ServerTimestamp: toEpochSeconds(f.serverTimestampMs),
  FragmentLengthInMilliseconds: f.durationMs,
});

const listFragments: JsonOperation = (ctx, input) => {
  const body = parseInput(ListFragmentsInput, input);
  const stream = ctx.streams.resolve(body);
  let cursor: Token;
  if (body.NextToken !== undefined) {
    cursor = decodeToken(body.NextToken);
    if (cursor.s !== stream.id) throw invalidArgument('NextToken belongs to another stream.');
  } else {
    const sel = body.FragmentSelector;
    if (!sel) throw invalidArgument('FragmentSelector is required when NextToken is not given.');
    const { StartTimestamp: f, EndTimestamp: t } = sel.TimestampRange;
    if (t < f) throw invalidArgument('FragmentSelector.TimestampRange.EndTimestamp must not be before StartTimestamp.');
    cursor = { s: stream.id, a: 0, k: sel.FragmentSelectorType === 'SERVER_TIMESTAMP' ? 'server' : 'producer', f, t };
  }
  const limit = body.MaxResults ?? 1000;
  const page = ctx.store.list(stream.id, { kind: cursor.k, startMs: cursor.f, endMs: cursor.t, afterSeq: cursor.a, limit: limit + 1 });
  const more = page.length > limit;
  const fragments = more ? page.slice(0, limit) : page;
  return {
    Fragments: fragments.map(fragmentJson),
    ...(more ? { NextToken: encodeToken({ ...cursor, a: fragments[fragments.length - 1]!.seq }) } : {}),
  };
};

const GetMediaForFragmentListInput = z.strictObject({
  StreamName: streamName.optional(),
  StreamARN: streamArn.optional(),
  Fragments: z.array(z.string().min(1).max(128).regex(/^[0-9]+$/, 'expected fragment numbers')).min(1).max(1000),
});

const getMediaForFragmentList: StreamingOperation = async (ctx, input, _req, res) => {
  const body = parseInput(GetMediaForFragmentListInput, input);
  const stream = ctx.streams.resolve(body);
  const fragments = body.Fragments.map((n) => {
    const seq = parseFragmentNumber(n);
    const f = seq === undefined ? undefined : ctx.store.get(stream.id, seq);
    if (!f) throw new KvsApiError('ResourceNotFoundException', `Fragment ${n} was not found in stream ${stream.name}.`);
    return f;
  });
  // The first fragment is read before the status line, so a fragment that cannot be served is
  // an error response; later ones stop the stream with error tags.
  let next: Promise<Buffer> = ctx.store.read(fragments[0]!);
  await next;
  const out = new ResponseWriter(res);
  res.writeHead(200, { 'content-type': 'video/webm' });
  const newest = ctx.store.last(stream.id)?.serverTimestampMs ?? 0;
  for (let i = 0; i < fragments.length && !out.closed; i++) {
    const f = fragments[i]!;
    let bytes: Buffer;
    try {
      bytes = await next;
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      await out.write(errorDocument(ctx.store.header(f.headerId), f.fragmentNumber, err.message));
      break;
    }
    if (i + 1 < fragments.length) next = ctx.store.read(fragments[i + 1]!);
    next.catch(() => {}); // handled when its turn comes
    await out.write(storedDocument(ctx.store.header(f.headerId), bytes, f, newest - f.serverTimestampMs));
  }
  out.end();
};

export const archiveOperations: { json: Record<string, JsonOperation>; streaming: Record<string, StreamingOperation> } = {
  json: { listFragments, ...getImagesOperations },
  streaming: { getMediaForFragmentList },
};

