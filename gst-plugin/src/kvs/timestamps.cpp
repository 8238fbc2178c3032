#include "kvs/timestamps.h"

namespace kvs {

namespace {
constexpr int64_t kSecondNs = 1000000000;
}

int64_t TimestampMapper::frameTime(const TimestampSettings& settings, std::optional<uint64_t> pts, int64_t dtsNs,
                                   int64_t nowNs) {
  if (!settings.frameTimecodes || !pts) return nowNs;
  if (settings.useOriginalPts) return dtsNs;
  if (settings.offline) {
    return static_cast<int64_t>(*pts) + static_cast<int64_t>(settings.fileStartTimeSeconds) * kSecondNs;
  }
  if (firstPtsNs_ < 0) {
    firstPtsNs_ = static_cast<int64_t>(*pts);
    wallclockAtFirstNs_ = nowNs;
  }
  return static_cast<int64_t>(*pts) - firstPtsNs_ + wallclockAtFirstNs_;
}

DecodeOrder::Verdict DecodeOrder::check(int64_t decodeNs, bool canRestart) {
  if (lastNs_ != INT64_MIN && decodeNs < lastNs_) {
    const bool first = !dropping_;
    dropping_ = true;
    return first ? Verdict::WentBack : Verdict::Drop;
  }
  if (dropping_ && !canRestart) return Verdict::Drop;
  dropping_ = false;
  lastNs_ = decodeNs;
  return Verdict::Keep;
}

}  // namespace kvs
