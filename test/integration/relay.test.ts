/**
 * The relay against real RTSP cameras (GstRtspServer serving live H.264) and a real openkvs
 * server: two cameras at once, one camera's outage, status and metrics; H.265 and AAC audio
 * passed through (the stored MKV names their codecs).
 */
import type { Fragment } from '@aws-sdk/client-kinesis-video-archived-media';
import { GetMediaCommand } from '@aws-sdk/client-kinesis-video-media';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CameraStatus } from '../../lib/relay/camera.js';
import { parseRelayConfig } from '../../lib/relay/config.js';
import { Relay } from '../../lib/relay/relay.js';
import { startStatusServer } from '../../lib/relay/status-server.js';
import { startRtspServer, type RtspServer } from '../helpers/rtsp-server.js';
import { credentials, listAllFragments, startTestServer, type TestServer, until } from '../helpers/server.js';

let t: TestServer;
let cams: RtspServer[] = [];
beforeAll(async () => {
  t = await startTestServer();
  cams = await Promise.all([startRtspServer(), startRtspServer()]);
});
afterAll(async () => {
  await Promise.all(cams.map((c) => c.stop()));
  await t?.close();
});

const fragments = (stream: string): Promise<Fragment[]> => listAllFragments(t.archived, stream);

/** Gaps between consecutive fragments (start of one minus end of the previous), seconds. */
function gaps(frags: Fragment[]): number[] {
  return frags.slice(1).map((f, i) => {
    const prev = frags[i]!;
    return (f.ProducerTimestamp!.getTime() - prev.ProducerTimestamp!.getTime() - prev.FragmentLengthInMilliseconds!) / 1000;
  });
}

const byName = (relay: Relay, name: string): CameraStatus => relay.status().find((c) => c.name === name)!;

describe('relay', () => {
  it('keeps two cameras streaming; one camera outage shows only on that camera, which resumes by itself', async () => {
    await t.createStream('relay-a');
    await t.createStream('relay-b');
    const config = parseRelayConfig({
      endpoint: t.url,
      region: 'us-east-1',
      credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
      backoff: { initialSeconds: 0.5, maxSeconds: 2 },
      cameras: [
        { name: 'a', url: cams[0]!.url, streamName: 'relay-a', noDataTimeoutSeconds: 3 },
        { name: 'b', url: cams[1]!.url, streamName: 'relay-b', noDataTimeoutSeconds: 3 },
      ],
    });
    const relay = new Relay();
    const logs: string[] = [];
    relay.on('log', (camera, message) => logs.push(`${camera}: ${message}`));
    const status = await startStatusServer(() => relay.status(), 0);
    let outage = 0;
    try {
      await relay.start(config);
      await until('both cameras streaming', () => relay.status().every((c) => c.state === 'streaming' && c.fragmentsPersisted >= 3));

      const before = byName(relay, 'a').fragmentsPersisted;
      const outageStart = Date.now();
      await cams[0]!.stop();
      await until('camera a reconnecting', () => byName(relay, 'a').state === 'reconnecting');
      await new Promise((r) => setTimeout(r, 5000 - (Date.now() - outageStart)));
      await cams[0]!.start();
      outage = (Date.now() - outageStart) / 1000;
      await until('camera a streaming again', () => byName(relay, 'a').state === 'streaming' && byName(relay, 'a').fragmentsPersisted >= before + 3, 30_000);

      const a = byName(relay, 'a');
      const b = byName(relay, 'b');
      expect(a.reconnects).toBeGreaterThanOrEqual(1);
      expect(b.reconnects, logs.join('\n')).toBe(0);
      expect(a.errorAcks + b.errorAcks).toBe(0);

      const json = (await (await fetch(`http://127.0.0.1:${status.port}/status`)).json()) as { cameras: CameraStatus[] };
      expect(json.cameras.map((c) => [c.name, c.streamName, c.state])).toEqual([
        ['a', 'relay-a', 'streaming'],
        ['b', 'relay-b', 'streaming'],
      ]);
      expect(json.cameras[1]!.bitrateBps).toBeGreaterThan(0);
      const metrics = await (await fetch(`http://127.0.0.1:${status.port}/metrics`)).text();
      expect(metrics).toContain('openkvs_relay_camera_state{camera="a",state="streaming"} 1');
      expect(metrics).toContain('openkvs_relay_camera_state{camera="a",state="reconnecting"} 0');
      expect(metrics).toMatch(/^openkvs_relay_reconnects_total\{camera="a"\} [1-9]\d*$/m);
      expect(metrics).toContain('openkvs_relay_reconnects_total{camera="b"} 0');
      expect(metrics).toMatch(/^openkvs_relay_fragments_persisted_total\{camera="b"\} \d+$/m);
      expect(metrics).toMatch(/^openkvs_relay_last_ack_age_seconds\{camera="b"\} \d+(\.\d+)?(e-\d+)?$/m);
      expect(metrics).toMatch(/^openkvs_relay_bitrate_bps\{camera="b"\} [1-9]/m);
      expect(metrics).toMatch(/^openkvs_relay_buffered_seconds\{camera="b"\} [\d.]+$/m);
    } finally {
      await relay.stop();
      await status.close();
    }
    expect(relay.status()).toEqual([]);

    const fa = await fragments('relay-a');
    const fb = await fragments('relay-b');
    // Producer timestamps only move forward on both streams (no timecode errors after the restart).
    for (const f of [fa, fb]) expect(gaps(f).every((g) => g >= -0.05)).toBe(true);
    // The outage is a gap of about its length on camera a, and nowhere on camera b.
    expect(Math.max(...gaps(fa))).toBeGreaterThanOrEqual(4);
    expect(Math.max(...gaps(fa))).toBeLessThan(outage + 10);
    expect(Math.max(...gaps(fb)), JSON.stringify(gaps(fb))).toBeLessThan(0.5);
    // Camera b kept sending fragments through camera a's outage.
    expect(fb.length).toBeGreaterThan(fa.length);
  });

  it('passes H.265 through (detected from the SDP, or configured), and carries AAC audio when enabled', async () => {
    const h265 = await startRtspServer({ codec: 'h265' });
    const withAudio = await startRtspServer({ audio: true });
    const relay = new Relay();
    const logs: string[] = [];
    relay.on('log', (camera, message) => logs.push(`${camera}: ${message}`));
    try {
      await relay.start(
        parseRelayConfig({
          endpoint: t.url,
          region: 'us-east-1',
          credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
          cameras: [
            { name: 'hevc', url: h265.url, streamName: 'relay-h265' },
            { name: 'hevc-explicit', url: h265.url, streamName: 'relay-h265b', codec: 'h265' },
            { name: 'av', url: withAudio.url, streamName: 'relay-av', audio: true },
          ],
        }),
      );
      await until('both streaming', () => relay.status().every((c) => c.state === 'streaming' && c.fragmentsPersisted >= 2), 30_000).catch((err: Error) => {
        throw new Error(`${err.message}\n${logs.join('\n')}`);
      });
    } finally {
      await relay.stop();
      await h265.stop();
      await withAudio.stop();
    }
    const media = await Promise.all(
      ['relay-h265', 'relay-h265b', 'relay-av'].map(async (stream) => {
        const r = await t.media.send(new GetMediaCommand({ StreamName: stream, StartSelector: { StartSelectorType: 'EARLIEST' } }));
        const reader = (r.Payload as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]();
        let bytes = Buffer.alloc(0);
        while (bytes.length < 64 * 1024) {
          const { value, done } = await reader.next();
          if (done) break;
          bytes = Buffer.concat([bytes, Buffer.from(value)]);
        }
        await reader.return?.();
        return bytes.toString('latin1');
      }),
    );
    expect(media[0]).toContain('V_MPEGH/ISO/HEVC');
    expect(media[1]).toContain('V_MPEGH/ISO/HEVC');
    expect(media[2]).toContain('V_MPEG4/ISO/AVC');
    expect(media[2]).toContain('A_AAC');
  });

  it('restarts a camera that stalls (connection open, no data) after noDataTimeoutSeconds', async () => {
    const cam = await startRtspServer();
    await t.createStream('relay-stall');
    const relay = new Relay();
    try {
      await relay.start(
        parseRelayConfig({
          endpoint: t.url,
          region: 'us-east-1',
          credentials: { accessKeyId: credentials.accessKeyId, secretAccessKey: credentials.secretAccessKey },
          backoff: { initialSeconds: 0.5, maxSeconds: 1 },
          cameras: [{ name: 'stall', url: cam.url, streamName: 'relay-stall', noDataTimeoutSeconds: 2 }],
        }),
      );
      await until('streaming', () => byName(relay, 'stall').state === 'streaming');
      // (Start-up may already have restarted once for another reason: count from here.)
      const before = byName(relay, 'stall').reconnects;
      cam.pause();
      await until(
        'the watchdog restart',
        () => byName(relay, 'stall').reconnects > before && byName(relay, 'stall').lastError === 'no data for 2 s',
        20_000,
      );
      cam.resume();
      const persisted = byName(relay, 'stall').fragmentsPersisted;
      await until('streaming again', () => byName(relay, 'stall').state === 'streaming' && byName(relay, 'stall').fragmentsPersisted > persisted + 2, 30_000);
      expect(byName(relay, 'stall').errorAcks).toBe(0);
    } finally {
      cam.resume();
      await relay.stop();
      await cam.stop();
    }
  });
});
