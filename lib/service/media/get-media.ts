/**
 * `POST /getMedia` (service-api.md §4): stored fragments from the chosen start, then the live
 * tail — the fragment being ingested is written frame by frame as its bytes arrive. The response
 * stays open until the client leaves, the stream is deleted, the server stops, or the session
 * reaches `getMediaMaxDurationMs`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { KvsApiError, invalidArgument } from '../../errors.js';
import type { ServiceContext } from '../context.js';
import { IntegrityError } from '../storage/fragment-cipher.js';
import { parseFragmentNumber } from '../storage/fragment-number.js';
import type { StoredFragment } from '../storage/fragment-store.js';
import { epochSeconds, parseInput, streamArn, streamName } from '../validation.js';
import { LIVE_CLUSTER_HEADER, documentHead, endTags, errorDocument, startTags, storedDocument } from './fragment-document.js';
import type { LiveFragment } from './live-hub.js';
import { ResponseWriter } from './response-writer.js';

const GetMediaInput = z.strictObject({
  StreamName: streamName.optional(),
  StreamARN: streamArn.optional(),
  StartSelector: z.strictObject({
    StartSelectorType: z.enum(['FRAGMENT_NUMBER', 'SERVER_TIMESTAMP', 'PRODUCER_TIMESTAMP', 'NOW', 'EARLIEST', 'CONTINUATION_TOKEN']),
    AfterFragmentNumber: z.string().min(1).max(128).regex(/^[0-9]+$/, 'expected a fragment number').optional(),
    StartTimestamp: epochSeconds.optional(),
    ContinuationToken: z.string().min(1).max(128).regex(/^[a-zA-Z0-9_.-]+$/, 'expected a continuation token').optional(),
  }),
});

/** The seq after which reading starts, per the StartSelector. */
function startAfter(ctx: ServiceContext, streamId: number, sel: z.infer<typeof GetMediaInput>['StartSelector']): number {
  const seqOf = (value: string | undefined, field: string): number => {
    if (value === undefined) throw invalidArgument(`StartSelector.${field} is required for StartSelectorType ${sel.StartSelectorType}.`);
    const seq = parseFragmentNumber(value);
    if (seq === undefined) throw invalidArgument(`StartSelector.${field} is not a fragment number of this server: ${value}.`);
    return seq;
  };
  switch (sel.StartSelectorType) {
    case 'EARLIEST':
      return 0;
    case 'NOW': {
      const live = ctx.live.newest(streamId);
      return live ? live.seq - 1 : (ctx.store.last(streamId)?.seq ?? 0);
    }
    case 'FRAGMENT_NUMBER':
      return seqOf(sel.AfterFragmentNumber, 'AfterFragmentNumber');
    case 'CONTINUATION_TOKEN':
      return seqOf(sel.ContinuationToken, 'ContinuationToken');
    case 'SERVER_TIMESTAMP':
    case 'PRODUCER_TIMESTAMP': {
      if (sel.StartTimestamp === undefined) {
        throw invalidArgument(`StartSelector.StartTimestamp is required for StartSelectorType ${sel.StartSelectorType}.`);
      }
      const kind = sel.StartSelectorType === 'SERVER_TIMESTAMP' ? 'server' : 'producer';
      const f = ctx.store.atTimestamp(streamId, kind, sel.StartTimestamp);
      if (f) return f.seq - 1;
      const live = ctx.live.newest(streamId);
      return live ? live.seq - 1 : (ctx.store.last(streamId)?.seq ?? 0);
    }
  }
}

export async function getMedia(ctx: ServiceContext, input: unknown, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  const body = parseInput(GetMediaInput, input);
  const stream = ctx.streams.resolve(body);
  let lastSeq = startAfter(ctx, stream.id, body.StartSelector);

  const readers = ctx.live.addReader(stream.id);
  if (readers >= ctx.config.limits.maxGetMediaConnections) {
    ctx.live.removeReader(stream.id);
    throw new KvsApiError(
      'ConnectionLimitExceededException',
      `Stream ${stream.name} already has ${readers} GetMedia connections (limit ${ctx.config.limits.maxGetMediaConnections}).`,
    );
  }

  const out = new ResponseWriter(res);
  const timer = setTimeout(() => out.close(), ctx.config.limits.getMediaMaxDurationMs);
  timer.unref();
  out.onClose(() => ctx.live.wake(stream.id));
  res.writeHead(200, { 'content-type': 'video/webm' });
  res.flushHeaders();

  const latestServerMs = () =>
    Math.max(ctx.live.latestServerTimestampMs(stream.id), ctx.store.last(stream.id)?.serverTimestampMs ?? 0);

  /** false: the fragment cannot be served; the stream was stopped with error tags. */
  const writeStored = async (f: StoredFragment): Promise<boolean> => {
    let bytes: Buffer;
    try {
      bytes = await ctx.store.read(f);
    } catch (err) {
      if (!(err instanceof IntegrityError)) throw err;
      await out.write(errorDocument(ctx.store.header(f.headerId), f.fragmentNumber, err.message));
      return false;
    }
    await out.write(storedDocument(ctx.store.header(f.headerId), bytes, f, latestServerMs() - f.serverTimestampMs));
    return true;
  };

  const writeLive = async (f: LiveFragment) => {
    await out.write([...documentHead(f.header), ...f.producerTags, startTags(f), LIVE_CLUSTER_HEADER]);
    let sent = 0;
    for (;;) {
      const state = f.state; // read before the chunks: 'received' means every chunk is there
      if (sent < f.chunks.length) {
        const next = f.chunks.slice(sent);
        sent += next.length;
        await out.write(next);
        continue;
      }
      if (state === 'received') return out.write([endTags(latestServerMs() - f.serverTimestampMs, f.fragmentNumber)]);
      if (state === 'aborted' || out.closed || ctx.live.isClosed(stream.id)) return;
      await ctx.live.changed(stream.id);
    }
  };

  try {
    while (!out.closed && !ctx.live.isClosed(stream.id)) {
      const stored = ctx.store.after(stream.id, lastSeq, 1)[0];
      const live = ctx.live.nextAfter(stream.id, lastSeq);
      if (stored && (!live || stored.seq <= live.seq)) {
        if (!(await writeStored(stored))) break;
        lastSeq = stored.seq;
      } else if (live) {
        await writeLive(live);
        lastSeq = live.seq;
      } else {
        await ctx.live.changed(stream.id);
      }
    }
  } finally {
    clearTimeout(timer);
    ctx.live.removeReader(stream.id);
    out.end();
  }
}
