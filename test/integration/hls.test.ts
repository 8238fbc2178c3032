/**
 * HLS (and DASH) playback: sessions opened with the real AWS SDK, playlists and fMP4 segments fetched over
 * HTTP, and the session URL played by ffprobe.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import {
  GetDASHStreamingSessionURLCommand,
  GetHLSStreamingSessionURLCommand,
  type GetHLSStreamingSessionURLCommandInput,
} from '@aws-sdk/client-kinesis-video-archived-media';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { h264Fragments } from '../helpers/media.js';
import { body, sendBody } from '../helpers/producer.js';
import { type TestServer, startTestServer } from '../helpers/server.js';

const run = promisify(execFile);
let t: TestServer;
const stream = 'hls-cam';
const producerStart = Date.now() - 20_000;
let ingestStart: number;
let ingestEnd: number;

beforeAll(async () => {
  t = await startTestServer();
  const frags = await h264Fragments({ frames: 150, gop: 30 }); // 5 fragments of 1 s
  await t.createStream(stream);
  await t.createStream('hls-empty');
  await t.createStream('hls-noretention', 0);
  ingestStart = Date.now() - 1000;
  await sendBody(t.url, stream, body(frags), { producerStartMs: producerStart });
  ingestEnd = Date.now() + 1000;
  await new Promise((r) => setTimeout(r, 1100)); // server-timestamp End must be in the past
});
afterAll(() => t?.close());

async function sessionUrl(input: GetHLSStreamingSessionURLCommandInput): Promise<string> {
  const out = await t.archived.send(new GetHLSStreamingSessionURLCommand(input));
  return out.HLSStreamingSessionURL!;
}

const onDemand = (extra: Partial<GetHLSStreamingSessionURLCommandInput> = {}): GetHLSStreamingSessionURLCommandInput => ({
  StreamName: stream,
  PlaybackMode: 'ON_DEMAND',
  HLSFragmentSelector: {
    FragmentSelectorType: 'SERVER_TIMESTAMP',
    TimestampRange: { StartTimestamp: new Date(ingestStart), EndTimestamp: new Date(ingestEnd) },
  },
  ...extra,
});

async function text(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return res.text();
}

const resolve = (base: string, rel: string): string => new URL(rel, base).toString();
const uris = (playlist: string): string[] => playlist.split('\n').filter((l) => l !== '' && !l.startsWith('#'));

describe('GetHLSStreamingSessionURL', () => {
  it('LIVE_REPLAY: an EVENT playlist of the fragments from the start time on, without ENDLIST', async () => {
    const url = await sessionUrl({
      StreamName: stream,
      PlaybackMode: 'LIVE_REPLAY',
      HLSFragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: { StartTimestamp: new Date(producerStart + 2000) },
      },
      MaxMediaPlaylistFragmentResults: 10,
    });
    const master = await text(url);
    const media = await text(resolve(url, uris(master)[0]!));
    expect(media).toContain('#EXT-X-PLAYLIST-TYPE:EVENT');
    expect(media).not.toContain('#EXT-X-ENDLIST');
    expect(uris(media)).toHaveLength(3); // the fragments starting at +2 s, +3 s and +4 s
  });

  it('ON_DEMAND: master and VOD media playlists, init and media fragments; ffprobe plays every ingested frame', async () => {
    const url = await sessionUrl(onDemand());
    expect(url).toMatch(new RegExp(`^${t.url}/hls/v1/getHLSMasterPlaylist\\.m3u8\\?SessionToken=[A-Za-z0-9_-]+~$`));
    const master = await text(url);
    expect(master).toMatch(/^#EXTM3U\n/);
    expect(master).toMatch(/#EXT-X-STREAM-INF:BANDWIDTH=\d+,CODECS="avc1\.[0-9a-f]{6}",RESOLUTION=320x240/);
    const mediaUrl = resolve(url, uris(master)[0]!);
    const media = await text(mediaUrl);
    expect(media).toContain('#EXT-X-PLAYLIST-TYPE:VOD');
    expect(media).toContain('#EXT-X-ENDLIST');
    expect(media).toMatch(/#EXT-X-MAP:URI="getMP4InitFragment\.mp4\?SessionToken=/);
    expect(media.match(/#EXTINF:1\.\d{3},/g)).toHaveLength(5);
    expect(media).not.toContain('PROGRAM-DATE-TIME');
    const segs = uris(media);
    expect(segs).toHaveLength(5);
    const init = await fetch(resolve(url, /URI="([^"]+)"/.exec(media)![1]!));
    expect(init.headers.get('content-type')).toBe('video/mp4');
    expect(Buffer.from(await init.arrayBuffer()).toString('latin1', 4, 8)).toBe('ftyp');
    const seg = Buffer.from(await (await fetch(resolve(url, segs[0]!))).arrayBuffer());
    expect(seg.toString('latin1', 4, 8)).toBe('moof');

    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=nb_read_packets,codec_name', '-of', 'json', url]);
    const streams = (JSON.parse(stdout) as { streams: Array<{ codec_name: string; nb_read_packets: string }> }).streams;
    expect(streams).toEqual([{ codec_name: 'h264', nb_read_packets: '150' }]);
  });

  it('PRODUCER_TIMESTAMP with DisplayFragmentTimestamp ALWAYS and MaxMediaPlaylistFragmentResults: oldest N, program date-time', async () => {
    const url = await sessionUrl({
      StreamName: stream,
      PlaybackMode: 'ON_DEMAND',
      DisplayFragmentTimestamp: 'ALWAYS',
      MaxMediaPlaylistFragmentResults: 3,
      HLSFragmentSelector: {
        FragmentSelectorType: 'PRODUCER_TIMESTAMP',
        TimestampRange: { StartTimestamp: new Date(producerStart - 1000), EndTimestamp: new Date(producerStart + 60_000) },
      },
    });
    const media = await text(resolve(url, uris(await text(url))[0]!));
    const times = [...media.matchAll(/#EXT-X-PROGRAM-DATE-TIME:(\S+)/g)].map((m) => Date.parse(m[1]!));
    expect(times).toEqual([producerStart, producerStart + 1000, producerStart + 2000]);
    expect(media).not.toContain('#EXT-X-DISCONTINUITY\n'); // NEVER is the default with producer timestamps
    expect(uris(media)).toHaveLength(3);
  });

  it('LIVE: sliding window of the newest N fragments without ENDLIST', async () => {
    const url = await sessionUrl({ StreamName: stream, MaxMediaPlaylistFragmentResults: 2, Expires: 43200 });
    const media = await text(resolve(url, uris(await text(url))[0]!));
    expect(media).not.toContain('#EXT-X-ENDLIST');
    expect(media).not.toContain('PLAYLIST-TYPE');
    const segs = uris(media);
    expect(segs).toHaveLength(2);
    const all = uris(await text(resolve(url, uris(await text(await sessionUrl(onDemand())))[0]!)));
    const fn = (u: string) => /FragmentNumber=(\d+)/.exec(u)![1];
    expect(segs.map(fn)).toEqual(all.slice(-2).map(fn));
  });

  it('LIVE: the window slides as new fragments arrive (consecutive media sequence numbers)', async () => {
    const live = 'hls-live';
    await t.createStream(live);
    const frags = await h264Fragments({ frames: 150, gop: 30 });
    const t0 = Date.now() - 5000;
    await sendBody(t.url, live, body(frags, { to: 3 }), { producerStartMs: t0 });
    const url = await sessionUrl({ StreamName: live, MaxMediaPlaylistFragmentResults: 2 });
    const mediaUrl = resolve(url, uris(await text(url))[0]!);
    const before = await text(mediaUrl);
    expect(before).toContain('#EXT-X-MEDIA-SEQUENCE:0');
    await sendBody(t.url, live, body(frags, { from: 3, to: 4 }), { producerStartMs: t0 + 3000 });
    const after = await text(mediaUrl);
    expect(after).toContain('#EXT-X-MEDIA-SEQUENCE:1');
    expect(after).not.toContain('#EXT-X-ENDLIST');
    const fn = (u: string) => /FragmentNumber=(\d+)/.exec(u)![1];
    expect(uris(after).map(fn)[0]).toBe(uris(before).map(fn)[1]);
    expect(uris(after)).toHaveLength(2);
  });

  it('refuses bad requests with clear errors', async () => {
    const fail = (input: GetHLSStreamingSessionURLCommandInput) =>
      t.archived.send(new GetHLSStreamingSessionURLCommand(input)).then(
        () => { throw new Error('expected a failure'); },
        (e: Error) => `${e.name}: ${e.message}`,
      );
    expect(await fail({ ...onDemand(), StreamName: 'nope' })).toBe('ResourceNotFoundException: The requested stream is not found or not active.');
    expect(await fail({ ...onDemand(), StreamName: 'hls-empty' })).toBe(
      'ResourceNotFoundException: No fragments found in the stream for the streaming request.',
    );
    expect(await fail({ StreamName: 'hls-empty' })).toMatch(/^ResourceNotFoundException: No fragments found/);
    expect(await fail(onDemand({ Expires: 100 }))).toBe('InvalidArgumentException: Invalid value for Expires: expected 300-43200 seconds.');
    expect(await fail(onDemand({ Expires: 43201 }))).toBe('InvalidArgumentException: Invalid value for Expires: expected 300-43200 seconds.');
    expect(await fail(onDemand({ MaxMediaPlaylistFragmentResults: 0 }))).toBe(
      'InvalidArgumentException: Invalid value for MaxMediaPlaylistFragmentResults: expected 1-5000.',
    );
    expect(await fail(onDemand({ ContainerFormat: 'MPEG_TS' }))).toMatch(/^InvalidArgumentException: ContainerFormat MPEG_TS is not supported/);
    expect(await fail({ ...onDemand(), PlaybackMode: 'LIVE' })).toBe(
      'InvalidArgumentException: HLSFragmentSelector.TimestampRange must not be set when PlaybackMode is LIVE.',
    );
    expect(
      await fail({ StreamName: stream, PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(ingestStart) } } }),
    ).toBe('InvalidArgumentException: HLSFragmentSelector.TimestampRange.EndTimestamp is required when PlaybackMode is ON_DEMAND.');
    expect(
      await fail({ StreamName: stream, PlaybackMode: 'ON_DEMAND', HLSFragmentSelector: { FragmentSelectorType: 'SERVER_TIMESTAMP', TimestampRange: { StartTimestamp: new Date(ingestEnd), EndTimestamp: new Date(ingestStart) } } }),
    ).toBe('InvalidArgumentException: HLSFragmentSelector.TimestampRange.EndTimestamp must be later than StartTimestamp.');
    expect(await fail({ ...onDemand(), PlaybackMode: 'FAST' as never })).toMatch(/^InvalidArgumentException: Invalid value for PlaybackMode/);
    expect(await fail({ ...onDemand(), StreamName: 'hls-noretention' })).toMatch(/^NoDataRetentionException: Stream hls-noretention has no data retention/);
  });

  it('refuses unknown and expired session tokens', async () => {
    const unknown = await fetch(`${t.url}/hls/v1/getHLSMediaPlaylist.m3u8?SessionToken=bogus~`);
    expect(unknown.status).toBe(404);
    expect(await unknown.json()).toEqual({ Message: 'The session token is not valid (unknown session).' });
    const url = await sessionUrl(onDemand({ Expires: 300 }));
    expect((await fetch(url)).status).toBe(200);
    const now = Date.now();
    const spy = vi.spyOn(Date, 'now').mockReturnValue(now + 301_000);
    try {
      const expired = await fetch(url);
      expect(expired.status).toBe(403);
      expect(await expired.json()).toEqual({ Message: 'The session token has expired.' });
    } finally {
      spy.mockRestore();
    }
  });
});

describe('GetDASHStreamingSessionURL', () => {
  it('ON_DEMAND: static manifest with a SegmentTimeline (kvs:ts, kvs:fn); ffprobe plays every ingested frame', async () => {
    const out = await t.archived.send(
      new GetDASHStreamingSessionURLCommand({
        StreamName: stream,
        PlaybackMode: 'ON_DEMAND',
        DisplayFragmentTimestamp: 'ALWAYS',
        DisplayFragmentNumber: 'ALWAYS',
        DASHFragmentSelector: {
          FragmentSelectorType: 'PRODUCER_TIMESTAMP',
          TimestampRange: { StartTimestamp: new Date(producerStart), EndTimestamp: new Date(producerStart + 60_000) },
        },
      }),
    );
    const url = out.DASHStreamingSessionURL!;
    expect(url).toMatch(new RegExp(`^${t.url}/dash/v1/getDASHManifest\\.mpd\\?SessionToken=[A-Za-z0-9_-]+~$`));
    const mpd = await text(url);
    expect(mpd).toContain('type="static"');
    expect(mpd.match(/<S t="\d+" d="\d+" kvs:ts="[\d.]+" kvs:fn="\d+"\/>/g)).toHaveLength(5);
    expect(mpd.match(/<SegmentURL /g)).toHaveLength(5);
    expect(mpd).toContain(`kvs:ts="${(producerStart / 1000).toFixed(3)}"`);
    const { stdout } = await run('ffprobe', ['-v', 'error', '-count_packets', '-show_entries', 'stream=nb_read_packets,codec_name', '-of', 'json', url]);
    const streams = (JSON.parse(stdout) as { streams: Array<{ codec_name: string; nb_read_packets: string }> }).streams;
    expect(streams).toEqual([{ codec_name: 'h264', nb_read_packets: '150' }]);
  });

  it('LIVE: dynamic manifest of the newest N; bad Expires, unknown token and unknown stream refused', async () => {
    const out = await t.archived.send(new GetDASHStreamingSessionURLCommand({ StreamName: stream, MaxManifestFragmentResults: 2 }));
    const mpd = await text(out.DASHStreamingSessionURL!);
    expect(mpd).toContain('type="dynamic"');
    expect(mpd.match(/<SegmentURL /g)).toHaveLength(2);
    await expect(t.archived.send(new GetDASHStreamingSessionURLCommand({ StreamName: stream, Expires: 299 }))).rejects.toThrow(
      'Invalid value for Expires: expected 300-43200 seconds.',
    );
    await expect(t.archived.send(new GetDASHStreamingSessionURLCommand({ StreamName: 'nope' }))).rejects.toThrow(
      'The requested stream is not found or not active.',
    );
    const bad = await fetch(`${t.url}/dash/v1/getDASHManifest.mpd?SessionToken=bogus~`);
    expect(bad.status).toBe(404);
    // an HLS token is not a DASH session
    const hls = new URL(await sessionUrl(onDemand())).searchParams.get('SessionToken')!;
    expect((await fetch(`${t.url}/dash/v1/getDASHManifest.mpd?SessionToken=${hls}`)).status).toBe(404);
  });
});
