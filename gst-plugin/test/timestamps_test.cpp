#include "kvs/timestamps.h"

#include <gtest/gtest.h>

using namespace kvs;

namespace {

constexpr int64_t kSec = 1'000'000'000;
constexpr int64_t kNow = 1'700'000'000 * kSec;  // a wall clock, ns since the epoch
constexpr int64_t kNoDts = -1;                  // GST_CLOCK_TIME_NONE as the element passes it

TimestampSettings realtime() { return TimestampSettings{}; }

}  // namespace

TEST(TimestampMapper, RealtimeShiftsTheFirstFrameToTheWallClockOfItsArrival) {
  TimestampMapper m;
  EXPECT_EQ(m.frameTime(realtime(), 5 * kSec, kNoDts, kNow), kNow);
  // Later frames keep their spacing, whatever the wall clock says when they arrive.
  EXPECT_EQ(m.frameTime(realtime(), 5 * kSec + 40'000'000, kNoDts, kNow + 3 * kSec), kNow + 40'000'000);
  EXPECT_EQ(m.frameTime(realtime(), 7 * kSec, kNoDts, kNow), kNow + 2 * kSec);
}

TEST(TimestampMapper, RealtimeUsesTheSameShiftForEveryPad) {
  TimestampMapper m;
  const int64_t video = m.frameTime(realtime(), 10 * kSec, kNoDts, kNow);
  // An audio buffer 20 ms earlier in running time, arriving 100 ms later on the other pad.
  const int64_t audio = m.frameTime(realtime(), 10 * kSec - 20'000'000, kNoDts, kNow + 100'000'000);
  EXPECT_EQ(video, kNow);
  EXPECT_EQ(audio, kNow - 20'000'000);
}

TEST(TimestampMapper, NearRealtimeIsShiftedLikeRealtime) {
  // near-realtime is not offline: the element passes offline = false for it.
  TimestampMapper m;
  TimestampSettings s;
  s.offline = false;
  EXPECT_EQ(m.frameTime(s, 0, kNoDts, kNow), kNow);
  EXPECT_EQ(m.frameTime(s, kSec, kNoDts, kNow), kNow + kSec);
}

TEST(TimestampMapper, OfflineAddsFileStartTimeToTheRunningTime) {
  TimestampMapper m;
  TimestampSettings s;
  s.offline = true;
  s.fileStartTimeSeconds = 1'600'000'000;
  EXPECT_EQ(m.frameTime(s, 0, kNoDts, kNow), 1'600'000'000 * kSec);
  EXPECT_EQ(m.frameTime(s, 2 * kSec + 5, kNoDts, kNow + kSec), 1'600'000'002 * kSec + 5);
}

TEST(TimestampMapper, OfflineWithoutFileStartTimeIsTheRunningTime) {
  TimestampMapper m;
  TimestampSettings s;
  s.offline = true;
  EXPECT_EQ(m.frameTime(s, 3 * kSec, kNoDts, kNow), 3 * kSec);
}

TEST(TimestampMapper, UseOriginalPtsTakesTheDtsAsIs) {
  TimestampMapper m;
  TimestampSettings s;
  s.useOriginalPts = true;
  const int64_t dts = 1'650'000'000 * kSec + 123;
  EXPECT_EQ(m.frameTime(s, static_cast<uint64_t>(dts) + 80'000'000, dts, kNow), dts);
  EXPECT_EQ(m.frameTime(s, static_cast<uint64_t>(dts), dts + 40'000'000, kNow), dts + 40'000'000);
}

TEST(TimestampMapper, UseOriginalPtsWinsOverOffline) {
  TimestampMapper m;
  TimestampSettings s;
  s.useOriginalPts = true;
  s.offline = true;
  s.fileStartTimeSeconds = 1'600'000'000;
  EXPECT_EQ(m.frameTime(s, 7 * kSec, 7 * kSec, kNow), 7 * kSec);
}

TEST(TimestampMapper, FrameTimecodesFalseUsesTheWallClock) {
  TimestampMapper m;
  TimestampSettings s;
  s.frameTimecodes = false;
  EXPECT_EQ(m.frameTime(s, 5 * kSec, 5 * kSec, kNow), kNow);
  EXPECT_EQ(m.frameTime(s, 6 * kSec, 6 * kSec, kNow + 7), kNow + 7);
  s.useOriginalPts = true;
  s.offline = true;
  s.fileStartTimeSeconds = 1'600'000'000;
  EXPECT_EQ(m.frameTime(s, 5 * kSec, 5 * kSec, kNow + 9), kNow + 9) << "whatever else is set";
}

TEST(TimestampMapper, FrameTimecodesFalseDoesNotFixTheRealtimeShift) {
  TimestampMapper m;
  TimestampSettings off;
  off.frameTimecodes = false;
  m.frameTime(off, 0, kNoDts, kNow);
  // The first frame stamped from its timestamp sets the shift.
  EXPECT_EQ(m.frameTime(realtime(), 4 * kSec, kNoDts, kNow + kSec), kNow + kSec);
  EXPECT_EQ(m.frameTime(realtime(), 5 * kSec, kNoDts, kNow + kSec), kNow + 2 * kSec);
}

TEST(TimestampMapper, BuffersWithoutTimestampGetTheWallClock) {
  for (bool offline : {false, true}) {
    for (bool original : {false, true}) {
      TimestampMapper m;
      TimestampSettings s;
      s.offline = offline;
      s.useOriginalPts = original;
      s.fileStartTimeSeconds = 1'600'000'000;
      EXPECT_EQ(m.frameTime(s, std::nullopt, kNoDts, kNow + 11), kNow + 11)
          << "offline " << offline << ", use-original-pts " << original;
    }
  }
}

TEST(TimestampMapper, BufferWithoutTimestampDoesNotFixTheRealtimeShift) {
  TimestampMapper m;
  EXPECT_EQ(m.frameTime(realtime(), std::nullopt, kNoDts, kNow), kNow);
  EXPECT_EQ(m.frameTime(realtime(), 2 * kSec, kNoDts, kNow + 500), kNow + 500);
  EXPECT_EQ(m.frameTime(realtime(), std::nullopt, kNoDts, kNow + 900), kNow + 900);
  EXPECT_EQ(m.frameTime(realtime(), 3 * kSec, kNoDts, kNow + 900), kNow + 500 + kSec);
}

TEST(TimestampMapper, EachMapperHasItsOwnShift) {
  TimestampMapper a, b;
  EXPECT_EQ(a.frameTime(realtime(), kSec, kNoDts, kNow), kNow);
  EXPECT_EQ(b.frameTime(realtime(), kSec, kNoDts, kNow + kSec), kNow + kSec);
  EXPECT_EQ(a.frameTime(realtime(), 2 * kSec, kNoDts, kNow), kNow + kSec);
}

TEST(DecodeOrder, KeepsFramesInDecodeOrder) {
  DecodeOrder d;
  EXPECT_EQ(d.check(10, true), DecodeOrder::Verdict::Keep);
  EXPECT_EQ(d.check(20, false), DecodeOrder::Verdict::Keep);
  EXPECT_EQ(d.check(20, false), DecodeOrder::Verdict::Keep) << "the same time is not going back";
  EXPECT_EQ(d.lastNs(), 20);
}

TEST(DecodeOrder, AJumpBackIsDroppedUntilItPassesTheLastFrameAndAKeyFrameComes) {
  DecodeOrder d;
  for (int64_t t : {100, 133, 166}) EXPECT_EQ(d.check(t, t == 100), DecodeOrder::Verdict::Keep);
  EXPECT_EQ(d.check(50, false), DecodeOrder::Verdict::WentBack);  // warned once
  EXPECT_EQ(d.check(83, false), DecodeOrder::Verdict::Drop);
  EXPECT_EQ(d.check(120, true), DecodeOrder::Verdict::Drop) << "a key frame still before the last one taken";
  EXPECT_EQ(d.check(200, false), DecodeOrder::Verdict::Drop) << "past it, but not decodable without its key frame";
  EXPECT_EQ(d.check(233, true), DecodeOrder::Verdict::Keep);
  EXPECT_EQ(d.check(266, false), DecodeOrder::Verdict::Keep);
  EXPECT_EQ(d.check(10, false), DecodeOrder::Verdict::WentBack) << "a second jump is warned about again";
}

TEST(DecodeOrder, AudioResumesAtTheFirstFrameAfterTheLastOneTaken) {
  DecodeOrder d;
  EXPECT_EQ(d.check(100, true), DecodeOrder::Verdict::Keep);
  EXPECT_EQ(d.check(40, true), DecodeOrder::Verdict::WentBack);
  EXPECT_EQ(d.check(120, true), DecodeOrder::Verdict::Keep);
}
