#!/usr/bin/env python3
"""A small RTSP server (GstRtspServer) for the relay tests and benchmark.

    python3 test/helpers/rtsp-server.py PORT [--codec h264|h265] [--file CLIP] [--audio]
                                        [--user NAME:PASSWORD [--digest]]

Serves rtsp://127.0.0.1:PORT/cam: by default a live test pattern encoded as 320x240 30 fps
H.264 (key frame every 15 frames), or H.265 with --codec h265; with --audio an AAC tone too.
--file serves a pre-encoded H.264 clip (byte-stream, MKV or MP4) in a loop, paced in real time without
re-encoding (the benchmark's 1080p 4 Mbps cameras). The media is shared: every client gets
the same stream. --user makes the camera ask for that user (Basic authentication, or Digest with
--digest). Prints "ready" once listening; killing the process is a camera outage.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

Gst.init(None)

RAW = "videotestsrc is-live=true ! video/x-raw,format=I420,width=320,height=240,framerate=30/1"
ENCODERS = {
    "h264": "x264enc tune=zerolatency key-int-max=15 speed-preset=ultrafast ! rtph264pay name=pay0 pt=96",
    "h265": "x265enc tune=zerolatency key-int-max=15 speed-preset=ultrafast ! rtph265pay name=pay0 pt=96",
}
AUDIO = "audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=48000,channels=1 ! avenc_aac ! rtpmp4gpay name=pay1 pt=97"


def load_clip(path):
    """The clip's access units, as (caps, [(pts, duration, is_delta, bytes)]), parsed once."""
    pipeline = Gst.parse_launch(
        f'filesrc location="{path}" ! parsebin ! h264parse ! video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=out sync=false'
    )
    out = pipeline.get_by_name("out")
    pipeline.set_state(Gst.State.PLAYING)
    frames, caps = [], None
    while True:
        sample = out.emit("pull-sample")
        if sample is None:
            break
        caps = sample.get_caps()
        buf = sample.get_buffer()
        ok, info = buf.map(Gst.MapFlags.READ)
        frames.append((buf.duration, buf.has_flags(Gst.BufferFlags.DELTA_UNIT), bytes(info.data)))
        buf.unmap(info)
    pipeline.set_state(Gst.State.NULL)
    return caps, frames


class LoopFactory(GstRtspServer.RTSPMediaFactory):
    """Plays the clip's access units forever from an appsrc, with increasing timestamps."""

    def __init__(self, clip):
        super().__init__()
        self.caps, self.frames = clip
        self.set_shared(True)

    def do_create_element(self, url):
        bin_ = Gst.parse_launch(
            "( appsrc name=src is-live=true format=time do-timestamp=false ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1 )"
        )
        src = bin_.get_by_name("src")
        src.set_property("caps", self.caps)
        state = {"i": 0, "pts": 0}
        frame_ns = Gst.SECOND // 30

        def need_data(appsrc, _length):
            for _ in range(30):
                duration, delta, data = self.frames[state["i"] % len(self.frames)]
                buf = Gst.Buffer.new_wrapped(data)
                buf.pts = buf.dts = state["pts"]
                buf.duration = duration if duration != Gst.CLOCK_TIME_NONE else frame_ns
                if delta:
                    buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
                state["pts"] += buf.duration
                state["i"] += 1
                if appsrc.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                    return

        src.set_property("max-bytes", 4_000_000)
        src.connect("need-data", need_data)
        return bin_


def require_user(server, factory, name, password, digest):
    """Only `name` may DESCRIBE and PLAY /cam."""
    auth = GstRtspServer.RTSPAuth()
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", name)
    if digest:
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(name, password, token)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(name, password), token)
    server.set_auth(auth)
    permissions = GstRtspServer.RTSPPermissions()
    permissions.add_role_from_structure(Gst.Structure.new_from_string(f"{name},media.factory.access=true,media.factory.construct=true"))
    factory.set_permissions(permissions)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--codec", choices=["h264", "h265"], default="h264")
    parser.add_argument("--file")
    parser.add_argument("--audio", action="store_true")
    parser.add_argument("--user")
    parser.add_argument("--digest", action="store_true")
    args = parser.parse_args()

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.file:
        factory = LoopFactory(load_clip(args.file))
    else:
        factory = GstRtspServer.RTSPMediaFactory()
        launch = f"{RAW} ! {ENCODERS[args.codec]}"
        if args.audio:
            launch += f" {AUDIO}"
        factory.set_launch(f"( {launch} )")
        factory.set_shared(True)
    if args.user:
        require_user(server, factory, *args.user.split(":", 1), digest=args.digest)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on 127.0.0.1:{args.port}", file=sys.stderr)
        sys.exit(1)
    print("ready", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main()
