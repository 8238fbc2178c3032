#include "kvs/fragmenter.h"

#include <algorithm>
#include <limits>

namespace kvs {

Placement Fragmenter::place(const FragmenterSettings& settings, const FragmenterFrame& frame) {
  Placement out;
  const bool canStart = frame.keyframe && (frame.video || settings.audioOnly);
  const bool onKeyFrames = settings.keyFrameFragmentation && !settings.audioOnly;
  const int64_t scale = settings.timecodeScaleNs;
  if (waitingForKeyFrame_ && !canStart) {
    out.drop = FrameDrop::BeforeFirstKeyFrame;
    return out;
  }
  bool start = !fragmentOpen_ ||
               (canStart && (onKeyFrames || frame.timeNs - fragmentStartNs_ >= settings.fragmentDurationNs));
  if (!start && (frame.timeNs - fragmentStartNs_) / scale > std::numeric_limits<int16_t>::max()) {
    if (!canStart) {
      out.drop = FrameDrop::TooFarFromFragmentStart;
      return out;
    }
    start = true;
  }
  if (!start && frame.timeNs < fragmentStartNs_) {
    out.drop = FrameDrop::BeforeFragmentStart;
    return out;
  }
  if (start && (sessionStartNs_ < 0 || waitingForKeyFrame_)) {
    sessionStartNs_ = frame.timeNs;
    video_ = audio_ = TrackTicks{};
  }
  const int64_t base = settings.absoluteTimecodes ? 0 : sessionStartNs_;
  const int64_t raw = (frame.timeNs - base) / scale;
  // A frame that rounds to (or, after a nudge, below) its track's last timecode gets the next one.
  TrackTicks& track = frame.video ? video_ : audio_;
  const int64_t tick = raw >= track.lastRaw && raw <= track.last ? track.last + 1 : raw;
  track = {raw, tick};
  if (start) {
    out.newFragment = true;
    out.fragmentTimecode = static_cast<uint64_t>(tick);
    fragmentOpen_ = true;
    fragmentStartNs_ = base + raw * scale;
    fragmentTick_ = tick;
    waitingForKeyFrame_ = false;
  }
  // Never before the fragment's timecode (audio at a video key frame that was moved on).
  out.relativeTimecode = static_cast<int16_t>(
      std::clamp<int64_t>(tick - fragmentTick_, 0, std::numeric_limits<int16_t>::max()));
  out.keyframe = frame.video ? frame.keyframe : settings.audioOnly;
  return out;
}

bool Fragmenter::endFragment() {
  const bool wasOpen = fragmentOpen_;
  fragmentOpen_ = false;
  waitingForKeyFrame_ = true;
  return wasOpen;
}

}  // namespace kvs
