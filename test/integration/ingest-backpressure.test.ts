/**
 * When storage falls behind, PutMedia stops reading (TCP back-pressure) instead of queueing
 * without bound — and every fragment is still stored once it catches up.
 */
import { expect, it } from 'vitest';
import { h264Fragments } from '../helpers/media.js';
import { acksOf, body, sendBody } from '../helpers/producer.js';
import { startTestServer } from '../helpers/server.js';

it('stores every fragment of several connections with a one-byte server-wide ingest queue', async () => {
  const t = await startTestServer({ limits: { maxIngestQueueBytes: 1 } });
  try {
    const frags = await h264Fragments({ frames: 150, gop: 15 }); // 10 fragments
    await Promise.all(['bp1', 'bp2', 'bp3'].map((s) => t.createStream(s)));
    const results = await Promise.all(['bp1', 'bp2', 'bp3'].map((s) => sendBody(t.url, s, body(frags))));
    for (const acks of results) {
      expect(acksOf(acks, 'ERROR')).toEqual([]);
      expect(acksOf(acks, 'PERSISTED').length).toBe(10);
    }
  } finally {
    await t.close();
  }
});
