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

}  // namespace kvs
