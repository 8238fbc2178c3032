// Fragment boundaries of kvssink (producer-protocol.md §6.4, §6.5, §7.2): which frame starts a
// fragment (an MKV Cluster), the fragment's timecode, each frame's timecode relative to it, and
// which frames cannot be sent.
//
//   - A fragment starts at a key frame: at every key frame with key-frame-fragmentation, else at
//     the first key frame fragment-duration or more after the fragment start.
//   - Audio-only streams: audio key frames (buffers not flagged as delta units) start fragments,
//     cut on fragment-duration (key-frame-fragmentation does not apply), and every audio frame is
//     marked as a key frame. In a stream with video, audio frames never start a fragment and are
//     not marked as key frames.
//   - Frames before the first key frame (after start, and after endFragment()) are dropped.
//   - A frame whose relative timecode would not fit the SimpleBlock's 16 bits starts a fragment
//     if it is a key frame and is dropped otherwise; a frame before its fragment start (B-frames
//     out of order) is dropped.
//   - Timecodes are in units of the timecode scale: absolute (the frame time since the epoch), or
//     relative to the first frame of the session's first fragment (absolute-fragment-times false;
//     after endFragment(), of the next fragment).
//   - Frames of a track come out with increasing timecodes: a frame that rounds to its track's
//     last timecode (frames under a timecode-scale apart, as in an RTSP camera's burst after a
//     reconnect) gets the next one, and so does the next frame that would then fall behind.
//     Frames whose time goes back (B-frames' presentation order) keep their own.
//
// Plain C++, no GStreamer types: the element passes the epoch-based frame times of
// kvs/timestamps.h and writes what it is told to into the content store. Not thread-safe (the
// element calls it with its media lock held).
#pragma once

#include <cstdint>
#include <limits>

namespace kvs {

struct FragmenterSettings {
  bool audioOnly = false;                      // the stream has no video track
  bool keyFrameFragmentation = true;           // key-frame-fragmentation
  int64_t fragmentDurationNs = 2'000'000'000;  // fragment-duration
  bool absoluteTimecodes = true;               // absolute-fragment-times (or a file-start-time)
  int64_t timecodeScaleNs = 1'000'000;         // timecode-scale, at least 1 ms
};

/// One frame to place.
struct FragmenterFrame {
  int64_t timeNs = 0;  // epoch-based frame time (kvs/timestamps.h)
  bool keyframe = false;
  bool video = false;  // from the video track
};

enum class FrameDrop {
  None,
  BeforeFirstKeyFrame,      // waiting for a key frame to start a fragment
  TooFarFromFragmentStart,  // relative timecode beyond 16 bits, and not a key frame
  BeforeFragmentStart,      // earlier than its fragment start (B-frames are not supported)
};

/// Where a frame goes.
struct Placement {
  FrameDrop drop = FrameDrop::None;  // anything else: the frame is not sent
  bool newFragment = false;          // the frame starts a fragment
  uint64_t fragmentTimecode = 0;     // the new fragment's cluster timecode (newFragment only)
  int16_t relativeTimecode = 0;      // the SimpleBlock timecode, relative to the fragment
  bool keyframe = false;             // the SimpleBlock key-frame flag
};

/// One per upload session.
class Fragmenter {
 public:
  /// Places the next frame to send.
  Placement place(const FragmenterSettings& settings, const FragmenterFrame& frame);
  /// Ends the open fragment (EOS): the next fragment starts at a key frame. Returns whether a
  /// fragment was open.
  bool endFragment();

 private:
  bool waitingForKeyFrame_ = true;  // after start and after endFragment()
  bool fragmentOpen_ = false;
  int64_t fragmentStartNs_ = 0;  // the start of the open fragment's first frame's tick, in ns
  int64_t fragmentTick_ = 0;     // the open fragment's timecode
  int64_t sessionStartNs_ = -1;  // base of relative timecodes

  struct TrackTicks {
    int64_t lastRaw = std::numeric_limits<int64_t>::max();  // the last frame's own timecode
    int64_t last = std::numeric_limits<int64_t>::min();     // ...and the one it was given
  };
  TrackTicks video_, audio_;
};

}  // namespace kvs
