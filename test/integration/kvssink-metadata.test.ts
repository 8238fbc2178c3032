/**
 * The `kvs-add-metadata` custom downstream event (the AWS element's putFragmentMetadata): sent by
 * an application (here a Python GStreamer program, as applications do) before a key frame, its
 * name/value becomes a tag of that fragment; with persist=true, of every fragment from then on;
 * persist=true with an empty value stops a persistent tag. Read back through GetMedia.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { readRange, type RangeFragment } from '../../lib/consumer/range-reader.js';
import { awsEnv, runPythonGst } from '../helpers/gst.js';
import { credentials, startTestServer, type TestServer } from '../helpers/server.js';

// Sends the events just before the 2nd, 3rd and 5th key frames (fragments 1, 2 and 4, from 0).
const PROGRAM = `
import sys, gi
gi.require_version("Gst", "1.0")
from gi.repository import Gst
Gst.init(None)
pipeline = Gst.parse_launch(sys.argv[1])
keyframes = {"n": 0}
EVENTS = {
    2: ["kvs-add-metadata, name=(string)door, value=(string)open, persist=(boolean)false"],
    3: ["kvs-add-metadata, name=(string)site, value=(string)north, persist=(boolean)true"],
    5: ["kvs-add-metadata, name=(string)site, value=(string)\\"\\", persist=(boolean)true"],
}
def probe(pad, info):
    buf = info.get_buffer()
    if not buf.has_flags(Gst.BufferFlags.DELTA_UNIT):
        keyframes["n"] += 1
        for text in EVENTS.get(keyframes["n"], []):
            pad.push_event(Gst.Event.new_custom(Gst.EventType.CUSTOM_DOWNSTREAM, Gst.Structure.new_from_string(text)))
    return Gst.PadProbeReturn.OK
pipeline.get_by_name("parse").get_static_pad("src").add_probe(Gst.PadProbeType.BUFFER, probe)
pipeline.set_state(Gst.State.PLAYING)
msg = pipeline.get_bus().timed_pop_filtered(60 * Gst.SECOND, Gst.MessageType.EOS | Gst.MessageType.ERROR)
pipeline.set_state(Gst.State.NULL)
sys.exit(0 if msg is not None and msg.type == Gst.MessageType.EOS else 1)
`;

let t: TestServer;
let fragments: RangeFragment[] = [];
beforeAll(async () => {
  t = await startTestServer();
  const description =
    'videotestsrc num-buffers=180 ! video/x-raw,format=I420,width=320,height=240,framerate=30/1 ! ' +
    `x264enc key-int-max=30 speed-preset=ultrafast tune=zerolatency ! h264parse name=parse ! kvssink stream-name=tags endpoint=${t.url}`;
  const { code, output: out } = await runPythonGst(PROGRAM, [description], awsEnv);
  expect(code, out).toBe(0);
  for await (const f of readRange({ streamName: 'tags', endpoint: t.url, region: 'us-east-1', credentials, start: new Date(0), end: new Date(Date.now() + 60_000) })) {
    fragments.push(f);
  }
});
afterAll(() => t?.close());

const producerTags = (f: RangeFragment) => Object.fromEntries(Object.entries(f.tags).filter(([k]) => !k.startsWith('AWS_KINESISVIDEO_')));

it('tags the next fragment once, or every fragment while persistent', () => {
  expect(fragments.length).toBe(6);
  expect(fragments.map(producerTags)).toEqual([{}, { door: 'open' }, { site: 'north' }, { site: 'north' }, {}, {}]);
});
