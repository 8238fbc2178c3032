#include "kvs/fragmenter.h"

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
  if (start) {
    if (sessionStartNs_ < 0 || waitingForKeyFrame_) sessionStartNs_ = frame.timeNs;
    const int64_t sinceBase = frame.timeNs - (settings.absoluteTimecodes ? 0 : sessionStartNs_);
    out.newFragment = true;
    out.fragmentTimecode = static_cast<uint64_t>(sinceBase / scale);
    fragmentOpen_ = true;
    fragmentStartNs_ = frame.timeNs - sinceBase % scale;
    waitingForKeyFrame_ = false;
  }
  out.relativeTimecode = static_cast<int16_t>((frame.timeNs - fragmentStartNs_) / scale);
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
