// Frame timestamps of kvssink (producer-protocol.md §7.1): how a buffer's timestamp becomes the
// epoch-based time, in nanoseconds, that kvs/fragmenter.h turns into fragment and frame timecodes.
//
//   frame-timecodes false, or no timestamp  the wall clock at arrival
//   use-original-pts                        the buffer's DTS, as is (already epoch-based)
//   streaming-type offline                  the running time + file-start-time
//   otherwise (realtime, near-realtime)     the running time shifted so that the first frame
//                                           is at the wall clock of its arrival; the same
//                                           shift for every pad
//
// Plain C++, no GStreamer types: the element passes the running time it computed from the
// pad's segment. Not thread-safe (the element calls it with its media lock held).
#pragma once

#include <cstdint>
#include <optional>

namespace kvs {

struct TimestampSettings {
  bool frameTimecodes = true;         // frame-timecodes
  bool useOriginalPts = false;        // use-original-pts
  bool offline = false;               // streaming-type offline
  uint64_t fileStartTimeSeconds = 0;  // file-start-time, epoch seconds
};

/// One per upload session (the realtime shift is taken from its first timestamped frame).
class TimestampMapper {
 public:
  /// The epoch-based time of a frame. `pts`: the buffer's running time in ns (with
  /// useOriginalPts, its timestamp as is), nullopt when it has none; `dtsNs`: the buffer's DTS;
  /// `nowNs`: the wall clock, ns since the epoch.
  int64_t frameTime(const TimestampSettings& settings, std::optional<uint64_t> pts, int64_t dtsNs, int64_t nowNs);

 private:
  int64_t firstPtsNs_ = -1;  // running time of the first timestamped frame (realtime shift)
  int64_t wallclockAtFirstNs_ = 0;
};

/// One per pad: frames whose decode time goes back (an RTSP jitter buffer resynchronising after
/// a burst, a new segment) would give fragments that overlap what was sent, which the service
/// refuses (4004). They are dropped until the decode time passes the last one taken, and then,
/// on video, until a key frame, since what follows a dropped frame cannot be decoded. The decode
/// time is the DTS mapped like the PTS, so B-frames' PTS reordering is not taken for it.
class DecodeOrder {
 public:
  enum class Verdict {
    Keep,
    WentBack,  // dropped: the first frame of a jump back (worth a warning)
    Drop,      // dropped: still before the last frame taken, or waiting for a key frame
  };
  /// `canRestart`: a key frame, or any audio frame.
  Verdict check(int64_t decodeNs, bool canRestart);
  /// Decode time of the last frame taken.
  int64_t lastNs() const { return lastNs_; }

 private:
  int64_t lastNs_ = INT64_MIN;
  bool dropping_ = false;
};

}  // namespace kvs
