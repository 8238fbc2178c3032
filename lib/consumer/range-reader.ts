/**
 * Batch reading of a time range: ListFragments (every page, sorted, since the service lists in
 * no particular order) then GetMediaForFragmentList in batches of up to 1000 fragments, parsed as
 * it streams in. `exportRange` writes the range as one playable file: Matroska (the stream
 * header once, then every fragment's Cluster) or fragmented MP4 (remuxed, no re-encoding).
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import { type Fragment, GetMediaForFragmentListCommand, paginateListFragments } from '@aws-sdk/client-kinesis-video-archived-media';
import { z } from 'zod';
import { ConsumerError, KvsApiError } from '../errors.js';
import { ID, SEGMENT_UNKNOWN_SIZE, element, encodeId, encodeSize, uintElement } from '../mkv/ebml.js';
import { initSegment, mediaSegment } from '../service/playback/fmp4.js';
import { fragmentRuns, streamLayout } from '../service/playback/remux.js';
import type { StoredFragment } from '../service/storage/fragment-store.js';
import { type ConsumedFragment, type ConsumedFrame, GetMediaParser } from './get-media-parser.js';
import { MediaClients, type StreamSource, hasStream, parseOptions, streamLabel, streamRef, streamSourceShape, toConsumerError } from './media-clients.js';

export interface RangeOptions extends StreamSource {
  start: Date;
  end: Date;
  /** Which timestamps the range is in (default 'producer'). */
  timestamps?: 'producer' | 'server';
}

/** A fragment of a range: what GetMediaForFragmentList gave, with the listing's duration and size. */
export interface RangeFragment extends ConsumedFragment {
  durationMs: number;
  sizeBytes: number;
  /** The stream header this fragment came with (EBML header, Info, Tracks), to write it standalone. */
  header: { ebml: Buffer; info: Buffer; tracks: Buffer };
}

const rangeShape = {
  ...streamSourceShape,
  start: z.date(),
  end: z.date(),
  timestamps: z.enum(['producer', 'server']).optional(),
};
const endAfterStart = [(o: { start: Date; end: Date }) => o.end.getTime() > o.start.getTime(), { message: 'end must be later than start', path: ['end'] as PropertyKey[] }] as const;
const rangeSchema = z.strictObject(rangeShape).refine(...hasStream).refine(...endAfterStart);
const exportSchema = z
  .strictObject({
    ...rangeShape,
    format: z.enum(['mkv', 'mp4']),
    output: z.union([z.string().min(1), z.custom<Writable>((v) => typeof (v as Writable)?.write === 'function', 'expected a file path or a Writable')]),
  })
  .refine(...hasStream)
  .refine(...endAfterStart);

const BATCH = 1000;

/** The fragments of the range in producer-timestamp order, each with its frames. */
export async function* readRange(options: RangeOptions): AsyncGenerator<RangeFragment> {
  const o = parseOptions(rangeSchema, options, 'readRange') as RangeOptions;
  const clients = new MediaClients(o);
  const what = `range of ${streamLabel(o)}`;
  try {
    const listed = await listRange(clients, o);
    const archived = await clients.archived('GET_MEDIA_FOR_FRAGMENT_LIST');
    try {
      for (let i = 0; i < listed.length; i += BATCH) {
        const batch = listed.slice(i, i + BATCH);
        const byNumber = new Map(batch.map((f) => [f.FragmentNumber!, f]));
        let payload: Readable;
        try {
          const out = await archived.send(new GetMediaForFragmentListCommand({ ...streamRef(o), Fragments: batch.map((f) => f.FragmentNumber!) }));
          payload = out.Payload as unknown as Readable;
        } catch (err) {
          throw toConsumerError(err, `GetMediaForFragmentList for the ${what}`);
        }
        const ready: RangeFragment[] = [];
        let header: RangeFragment['header'] = { ebml: Buffer.alloc(0), info: Buffer.alloc(0), tracks: Buffer.alloc(0) };
        const parser = new GetMediaParser({
          onElement: (e) => {
            if (e.kind === 'ebml-header') header = { ebml: e.data, info: Buffer.alloc(0), tracks: Buffer.alloc(0) };
            else if (e.kind === 'element' && e.id === ID.Info) header.info = e.data;
            else if (e.kind === 'element' && e.id === ID.Tracks) header.tracks = e.data;
          },
          onFragment: (f) => {
            if (f.errorCode !== undefined) {
              throw new ConsumerError('CONSUMER_STREAM_ERROR', `GetMediaForFragmentList for the ${what}: error ${f.errorId ?? '?'} (${f.errorCode}) at fragment ${f.fragmentNumber ?? '?'}`, { serviceCode: f.errorCode });
            }
            const l = byNumber.get(f.fragmentNumber ?? '');
            ready.push(Object.assign(f, { durationMs: l?.FragmentLengthInMilliseconds ?? 0, sizeBytes: l?.FragmentSizeInBytes ?? 0, header }));
          },
        });
        try {
          for await (const chunk of payload as AsyncIterable<Buffer>) {
            parser.push(chunk);
            while (ready.length > 0) yield ready.shift()!;
          }
          parser.end();
        } catch (err) {
          if (err instanceof ConsumerError) throw err;
          throw new ConsumerError('CONSUMER_MALFORMED_MEDIA', `GetMediaForFragmentList for the ${what}: ${(err as Error).message}`, { cause: err });
        } finally {
          payload.destroy();
        }
        while (ready.length > 0) yield ready.shift()!;
      }
    } finally {
      archived.destroy();
    }
  } finally {
    clients.destroy();
  }
}

/** Every fragment whose start is in [start, end] (inclusive, as the service's other range APIs). */
async function listRange(clients: MediaClients, o: RangeOptions): Promise<Fragment[]> {
  const client = await clients.archived('LIST_FRAGMENTS');
  const all: Fragment[] = [];
  try {
    const pages = paginateListFragments(
      { client, pageSize: BATCH },
      {
        ...streamRef(o),
        FragmentSelector: {
          FragmentSelectorType: o.timestamps === 'server' ? 'SERVER_TIMESTAMP' : 'PRODUCER_TIMESTAMP',
          TimestampRange: { StartTimestamp: o.start, EndTimestamp: o.end },
        },
      },
    );
    for await (const page of pages) all.push(...(page.Fragments ?? []));
  } catch (err) {
    throw toConsumerError(err, `ListFragments for the range of ${streamLabel(o)}`);
  } finally {
    client.destroy();
  }
  const ms = (d: Date | undefined) => d?.getTime() ?? 0;
  return all.sort((a, b) => ms(a.ProducerTimestamp) - ms(b.ProducerTimestamp) || compareNumbers(a.FragmentNumber!, b.FragmentNumber!));
}

const compareNumbers = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);

export interface ExportOptions extends RangeOptions {
  format: 'mkv' | 'mp4';
  /** A file path or a writable stream (not ended by exportRange). */
  output: string | Writable;
}

export interface ExportResult {
  fragments: number;
  frames: number;
  bytes: number;
  /** Producer time covered, ms (first fragment start to last fragment end). */
  durationMs: number;
}

/** A SimpleBlock of a frame, its timecode relative to the cluster's. */
function simpleBlock(frame: ConsumedFrame, clusterTimecode: number): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x80 | frame.track; // track numbers < 127: one-byte vint
  head.writeInt16BE(frame.timecode - clusterTimecode, 1);
  head[3] = frame.keyframe ? 0x80 : 0;
  return Buffer.concat([encodeId(ID.SimpleBlock), encodeSize(head.length + frame.data.length), head, frame.data]);
}

/** The fragment's Cluster rebuilt from its frames (the same blocks, as SimpleBlocks). */
function clusterOf(f: ConsumedFragment): Buffer {
  const tc = f.clusterTimecode ?? 0;
  return element(ID.Cluster, [uintElement(ID.Timecode, tc), ...f.frames.map((fr) => simpleBlock(fr, tc))]);
}

/** Writes the range as one MKV or MP4 file; resolves when every byte is written. */
export async function exportRange(options: ExportOptions): Promise<ExportResult> {
  const { format, output, ...range } = parseOptions(exportSchema, options, 'exportRange') as ExportOptions;
  const out = typeof output === 'string' ? createWriteStream(output) : output;
  const result: ExportResult = { fragments: 0, frames: 0, bytes: 0, durationMs: 0 };
  const write = async (b: Buffer) => {
    result.bytes += b.length;
    if (!out.write(b)) await once(out, 'drain');
  };
  let first: RangeFragment | undefined;
  let layout: ReturnType<typeof streamLayout> | undefined;
  try {
    for await (const f of readRange(range)) {
      if (!first) {
        first = f;
        if (format === 'mkv') {
          await write(Buffer.concat([f.header.ebml, SEGMENT_UNKNOWN_SIZE, f.header.info, f.header.tracks]));
        } else {
          layout = playable(() => streamLayout({ ebml: f.header.ebml, tracks: Buffer.concat([f.header.info, f.header.tracks]) }));
          await write(initSegment(layout.tracks));
        }
      } else if (!f.header.tracks.equals(first.header.tracks)) {
        throw new ConsumerError('CONSUMER_UNSUPPORTED_CODEC', `exportRange: the tracks change at fragment ${f.fragmentNumber} (one codec configuration per file); export the range in two parts`);
      }
      result.fragments++;
      result.frames += f.frames.length;
      result.durationMs = (f.producerTimestampMs ?? 0) + f.durationMs - (first.producerTimestampMs ?? 0);
      if (format === 'mkv') {
        await write(clusterOf(f));
      } else {
        const stored = { producerTimestampMs: f.producerTimestampMs ?? 0, durationMs: f.durationMs } as StoredFragment;
        await write(mediaSegment(result.fragments, playable(() => fragmentRuns(layout!, clusterOf(f), stored, first!.producerTimestampMs ?? 0))));
      }
    }
    if (!first) throw new ConsumerError('CONSUMER_STREAM_NOT_FOUND', `exportRange: no fragments of ${streamLabel(range)} between ${range.start.toISOString()} and ${range.end.toISOString()}`);
  } finally {
    if (typeof output === 'string') {
      out.end();
      await once(out, 'close');
    }
  }
  return result;
}

/** The remuxer's own errors (unsupported codec, missing codec private data) as ConsumerErrors. */
function playable<T>(make: () => T): T {
  try {
    return make();
  } catch (err) {
    if (err instanceof KvsApiError) throw new ConsumerError('CONSUMER_UNSUPPORTED_CODEC', `exportRange: ${err.message}`, { cause: err });
    throw err;
  }
}
