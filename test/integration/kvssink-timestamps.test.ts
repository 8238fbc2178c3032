/**
 * Timestamps that go backwards mid-stream (an RTSP jitter buffer resynchronising after a burst,
 * here a new segment pushed by the application) never reach the service as overlapping or
 * out-of-order frames: kvssink drops the frames until the timestamps pass the last one it sent
 * and a key frame comes, warns once on the bus, and every stored frame is later than the one
 * before it.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { awsEnv, runPythonGst } from '../helpers/gst.js';
import { startTestServer, steps, type TestServer, videoTimestamps } from '../helpers/server.js';

// Before the 71st buffer (mid-GOP), the segment again, starting 400 ms later: the running time
// jumps back 400 ms.
// Prints every WARNING message, exits 0 on EOS.
const PROGRAM = `
import sys, gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
pipeline = Gst.parse_launch(sys.argv[1])
count = {"n": 0}
def probe(pad, info):
    count["n"] += 1
    if count["n"] == 71:
        seg = pad.get_sticky_event(Gst.EventType.SEGMENT, 0).parse_segment()
        seg.start += 400 * Gst.MSECOND
        pad.push_event(Gst.Event.new_segment(seg))
    return Gst.PadProbeReturn.OK
pipeline.get_by_name("parse").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
pipeline.set_state(Gst.State.PLAYING)
bus = pipeline.get_bus()
while True:
    msg = bus.timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR | Gst.MessageType.WARNING)
    if msg is None or msg.type != Gst.MessageType.WARNING:
        break
    print("WARNING:", msg.parse_warning()[0].message, flush=True)
if msg is not None and msg.type == Gst.MessageType.ERROR:
    print("ERROR:", msg.parse_error()[0].message, msg.parse_error()[1], flush=True)
pipeline.set_state(Gst.State.NULL)
sys.exit(0 if msg is not None and msg.type == Gst.MessageType.EOS else 1)
`;

let t: TestServer;
let output = '';
let stamps: number[] = [];
beforeAll(async () => {
  t = await startTestServer();
  const description =
    'videotestsrc num-buffers=180 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ' +
    `x264enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h264parse name=parse ! kvssink stream-name=backwards endpoint=${t.url}`;
  const run = await runPythonGst(PROGRAM, [description], awsEnv);
  output = run.output;
  expect(run.code, output).toBe(0);
  stamps = await videoTimestamps(t.archived, 'backwards');
});
afterAll(() => t?.close());

it('stores only frames later than the one before, dropping from the jump to the next key frame', () => {
  expect(Math.min(...steps(stamps))).toBeGreaterThan(0);
  // Buffers 71-90 (the rest of that GOP) are dropped: the next key frame, buffer 91, is at
  // 3.0 s - 400 ms, past the last frame sent (2.333 s); from there on every frame is kept.
  expect(stamps.length).toBe(180 - 20);
  expect(Math.max(...steps(stamps))).toBeGreaterThan(250);
});

it('warns once, naming the pad and how far back (2.300 s to 1.933 s)', () => {
  const warnings = output.split('\n').filter((l) => l.startsWith('WARNING:'));
  expect(warnings, output).toHaveLength(1);
  expect(warnings[0]).toMatch(/timestamps on video_0 went back by 36\d ms/);
});
