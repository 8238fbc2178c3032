#include "kvs/fragmenter.h"

#include <gtest/gtest.h>

#include <vector>

using namespace kvs;

namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSec = 1000 * kMs;
constexpr int64_t kEpoch = 1'700'000'000 * kSec;  // a frame time, ns since the epoch

FragmenterFrame videoKey(int64_t t) { return {t, true, true}; }
FragmenterFrame videoDelta(int64_t t) { return {t, false, true}; }
FragmenterFrame audio(int64_t t, bool key = true) { return {t, key, false}; }

FragmenterSettings onDuration(int64_t durationNs = 2 * kSec) {
  FragmenterSettings s;
  s.keyFrameFragmentation = false;
  s.fragmentDurationNs = durationNs;
  return s;
}

FragmenterSettings audioOnly() {
  FragmenterSettings s;
  s.audioOnly = true;
  return s;
}

}  // namespace

TEST(Fragmenter, FramesBeforeTheFirstKeyFrameAreDropped) {
  Fragmenter f;
  const FragmenterSettings s;
  EXPECT_EQ(f.place(s, videoDelta(kEpoch)).drop, FrameDrop::BeforeFirstKeyFrame);
  EXPECT_EQ(f.place(s, audio(kEpoch + 10 * kMs)).drop, FrameDrop::BeforeFirstKeyFrame) << "audio cannot start one";
  const Placement p = f.place(s, videoKey(kEpoch + 40 * kMs));
  EXPECT_EQ(p.drop, FrameDrop::None);
  EXPECT_TRUE(p.newFragment);
}

TEST(Fragmenter, AFragmentStartsAtAKeyFrameWithItsAbsoluteTimecode) {
  Fragmenter f;
  const Placement p = f.place(FragmenterSettings{}, videoKey(kEpoch + 123 * kMs + 456));
  EXPECT_TRUE(p.newFragment);
  EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>((kEpoch + 123 * kMs) / kMs));
  EXPECT_EQ(p.relativeTimecode, 0);
  EXPECT_TRUE(p.keyframe);
}

TEST(Fragmenter, FramesGetTimecodesRelativeToTheirFragment) {
  Fragmenter f;
  const FragmenterSettings s;
  f.place(s, videoKey(kEpoch));
  Placement p = f.place(s, videoDelta(kEpoch + 40 * kMs));
  EXPECT_FALSE(p.newFragment);
  EXPECT_EQ(p.drop, FrameDrop::None);
  EXPECT_EQ(p.relativeTimecode, 40);
  EXPECT_FALSE(p.keyframe);
  p = f.place(s, videoDelta(kEpoch + 80 * kMs + 999'999));
  EXPECT_EQ(p.relativeTimecode, 80) << "rounded down to the scale";
}

TEST(Fragmenter, KeyFrameFragmentationStartsAFragmentAtEveryKeyFrame) {
  Fragmenter f;
  const FragmenterSettings s;  // key-frame-fragmentation is the default
  EXPECT_TRUE(f.place(s, videoKey(kEpoch)).newFragment);
  EXPECT_FALSE(f.place(s, videoDelta(kEpoch + 40 * kMs)).newFragment);
  const Placement p = f.place(s, videoKey(kEpoch + 80 * kMs));
  EXPECT_TRUE(p.newFragment) << "well before fragment-duration";
  EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>((kEpoch + 80 * kMs) / kMs));
  EXPECT_EQ(p.relativeTimecode, 0);
}

TEST(Fragmenter, WithoutKeyFrameFragmentationFragmentsLastAtLeastFragmentDuration) {
  Fragmenter f;
  const FragmenterSettings s = onDuration(2 * kSec);
  EXPECT_TRUE(f.place(s, videoKey(kEpoch)).newFragment);
  EXPECT_FALSE(f.place(s, videoKey(kEpoch + 1 * kSec)).newFragment) << "a key frame before the duration";
  EXPECT_FALSE(f.place(s, videoDelta(kEpoch + 2 * kSec)).newFragment) << "a delta frame never starts one";
  const Placement p = f.place(s, videoKey(kEpoch + 2 * kSec + 40 * kMs));
  EXPECT_TRUE(p.newFragment) << "the first key frame at or after the duration";
  EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>((kEpoch + 2 * kSec + 40 * kMs) / kMs));
  EXPECT_FALSE(f.place(s, videoKey(kEpoch + 4 * kSec)).newFragment);
  EXPECT_TRUE(f.place(s, videoKey(kEpoch + 4 * kSec + 40 * kMs)).newFragment) << "exactly the duration";
}

TEST(Fragmenter, AudioOnlyStreamsAreCutOnFragmentDurationWhateverKeyFrameFragmentationSays) {
  for (bool kff : {true, false}) {
    Fragmenter f;
    FragmenterSettings s = audioOnly();
    s.keyFrameFragmentation = kff;
    s.fragmentDurationNs = 1 * kSec;
    Placement p = f.place(s, audio(kEpoch));
    EXPECT_TRUE(p.newFragment);
    EXPECT_TRUE(p.keyframe);
    for (int64_t t = 20 * kMs; t < kSec; t += 20 * kMs) {
      p = f.place(s, audio(kEpoch + t));
      EXPECT_FALSE(p.newFragment) << "kff " << kff << " at " << t / kMs << " ms";
      EXPECT_TRUE(p.keyframe) << "every audio frame of an audio-only stream is a key frame";
    }
    p = f.place(s, audio(kEpoch + kSec));
    EXPECT_TRUE(p.newFragment) << "kff " << kff;
    EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>((kEpoch + kSec) / kMs));
  }
}

TEST(Fragmenter, AudioOnlyDeltaFramesAreSentAsKeyFramesButStartNothing) {
  Fragmenter f;
  FragmenterSettings s = audioOnly();
  s.fragmentDurationNs = 1 * kSec;
  EXPECT_EQ(f.place(s, audio(kEpoch, false)).drop, FrameDrop::BeforeFirstKeyFrame);
  f.place(s, audio(kEpoch + 20 * kMs));
  const Placement p = f.place(s, audio(kEpoch + 2 * kSec, false));
  EXPECT_FALSE(p.newFragment);
  EXPECT_EQ(p.drop, FrameDrop::None);
  EXPECT_TRUE(p.keyframe);
}

TEST(Fragmenter, AudioBesideVideoNeverStartsAFragmentAndIsNotAKeyFrame) {
  Fragmenter f;
  const FragmenterSettings s = onDuration(1 * kSec);
  f.place(s, videoKey(kEpoch));
  Placement p = f.place(s, audio(kEpoch + 10 * kMs));
  EXPECT_FALSE(p.newFragment);
  EXPECT_FALSE(p.keyframe);
  EXPECT_EQ(p.relativeTimecode, 10);
  p = f.place(s, audio(kEpoch + 3 * kSec));
  EXPECT_FALSE(p.newFragment) << "past the duration, but audio waits for the video key frame";
  EXPECT_EQ(p.relativeTimecode, 3000);
  EXPECT_TRUE(f.place(s, videoKey(kEpoch + 3 * kSec + 5 * kMs)).newFragment);
}

TEST(Fragmenter, TimecodeScaleRoundsTheFragmentStartDown) {
  Fragmenter f;
  FragmenterSettings s;
  s.timecodeScaleNs = 10 * kMs;
  Placement p = f.place(s, videoKey(kEpoch + 1234 * kMs));
  EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>((kEpoch + 1230 * kMs) / (10 * kMs)));
  p = f.place(s, videoDelta(kEpoch + 1234 * kMs + 40 * kMs));
  EXPECT_EQ(p.relativeTimecode, 4) << "(1274 - 1230) ms in 10 ms units";
}

TEST(Fragmenter, RelativeTimecodesCountFromTheSessionStart) {
  Fragmenter f;
  FragmenterSettings s;
  s.absoluteTimecodes = false;
  Placement p = f.place(s, videoKey(kEpoch + 7));
  EXPECT_TRUE(p.newFragment);
  EXPECT_EQ(p.fragmentTimecode, 0u);
  p = f.place(s, videoDelta(kEpoch + 40 * kMs));
  EXPECT_EQ(p.relativeTimecode, 39) << "the fragment starts at the session start, not at a scale boundary";
  p = f.place(s, videoKey(kEpoch + 2 * kSec + 7));
  EXPECT_EQ(p.fragmentTimecode, 2000u);
}

TEST(Fragmenter, RelativeTimecodesRestartAfterTheFragmentIsEnded) {
  Fragmenter f;
  FragmenterSettings s;
  s.absoluteTimecodes = false;
  f.place(s, videoKey(kEpoch));
  f.place(s, videoKey(kEpoch + 2 * kSec));
  f.endFragment();
  const Placement p = f.place(s, videoKey(kEpoch + 5 * kSec));
  EXPECT_TRUE(p.newFragment);
  EXPECT_EQ(p.fragmentTimecode, 0u);
}

TEST(Fragmenter, AFrameTooFarFromItsFragmentStartIsDroppedUnlessItIsAKeyFrame) {
  Fragmenter f;
  const FragmenterSettings s = onDuration(60 * kSec);  // longer than 16 bits of milliseconds
  f.place(s, videoKey(kEpoch));
  Placement p = f.place(s, videoDelta(kEpoch + 32767 * kMs + 999'999));
  EXPECT_EQ(p.drop, FrameDrop::None) << "32767 still fits";
  EXPECT_EQ(p.relativeTimecode, 32767);
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 32768 * kMs)).drop, FrameDrop::TooFarFromFragmentStart);
  EXPECT_EQ(f.place(s, audio(kEpoch + 40 * kSec)).drop, FrameDrop::TooFarFromFragmentStart);
  p = f.place(s, videoKey(kEpoch + 40 * kSec));
  EXPECT_EQ(p.drop, FrameDrop::None);
  EXPECT_TRUE(p.newFragment) << "before fragment-duration, but the only way to send it";
  EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>((kEpoch + 40 * kSec) / kMs));
}

TEST(Fragmenter, AFrameBeforeItsFragmentStartIsDropped) {
  Fragmenter f;
  const FragmenterSettings s = onDuration();
  f.place(s, videoKey(kEpoch + kSec));
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + kSec - 40 * kMs)).drop, FrameDrop::BeforeFragmentStart);
  EXPECT_EQ(f.place(s, audio(kEpoch + kSec - 1 * kMs)).drop, FrameDrop::BeforeFragmentStart);
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + kSec + 40 * kMs)).drop, FrameDrop::None) << "the fragment goes on";
}

TEST(Fragmenter, AnEarlierKeyFrameStartsAFragmentWithKeyFrameFragmentation) {
  Fragmenter f;
  const FragmenterSettings s;
  f.place(s, videoKey(kEpoch + kSec));
  const Placement p = f.place(s, videoKey(kEpoch));
  EXPECT_EQ(p.drop, FrameDrop::None);
  EXPECT_TRUE(p.newFragment);
  EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>(kEpoch / kMs));
}

TEST(Fragmenter, EndFragmentWaitsForTheNextKeyFrame) {
  Fragmenter f;
  const FragmenterSettings s;
  EXPECT_FALSE(f.endFragment()) << "nothing open yet";
  f.place(s, videoKey(kEpoch));
  f.place(s, videoDelta(kEpoch + 40 * kMs));
  EXPECT_TRUE(f.endFragment());
  EXPECT_FALSE(f.endFragment()) << "already ended";
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 80 * kMs)).drop, FrameDrop::BeforeFirstKeyFrame);
  const Placement p = f.place(s, videoKey(kEpoch + 120 * kMs));
  EXPECT_TRUE(p.newFragment);
  EXPECT_TRUE(f.endFragment());
}

TEST(Fragmenter, FramesUnderAMillisecondApartGetIncreasingTimecodes) {
  Fragmenter f;
  const FragmenterSettings s;
  EXPECT_EQ(f.place(s, videoKey(kEpoch)).relativeTimecode, 0);
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 300'000)).relativeTimecode, 1);
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 600'000)).relativeTimecode, 2);
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 1 * kMs + 200'000)).relativeTimecode, 3) << "1 ms, but 2 was taken";
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 40 * kMs)).relativeTimecode, 40) << "caught up";
}

TEST(Fragmenter, TracksDoNotMoveEachOthersTimecodes) {
  Fragmenter f;
  const FragmenterSettings s;
  f.place(s, videoKey(kEpoch));
  EXPECT_EQ(f.place(s, audio(kEpoch + 100'000)).relativeTimecode, 0);
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 33 * kMs)).relativeTimecode, 33);
  EXPECT_EQ(f.place(s, audio(kEpoch + 33 * kMs)).relativeTimecode, 33);
}

TEST(Fragmenter, FramesWhoseTimeGoesBackKeepTheirTimecodes) {
  Fragmenter f;
  const FragmenterSettings s;
  f.place(s, videoKey(kEpoch));
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 100 * kMs)).relativeTimecode, 100);
  EXPECT_EQ(f.place(s, videoDelta(kEpoch + 33 * kMs)).relativeTimecode, 33) << "a B-frame";
}

TEST(Fragmenter, AKeyFrameInTheLastFramesMillisecondStartsItsFragmentAfterIt) {
  Fragmenter f;
  const FragmenterSettings s;  // key-frame-fragmentation
  f.place(s, videoKey(kEpoch));
  f.place(s, videoDelta(kEpoch + 40 * kMs));
  const Placement p = f.place(s, videoKey(kEpoch + 40 * kMs + 500'000));
  EXPECT_TRUE(p.newFragment);
  EXPECT_EQ(p.fragmentTimecode, static_cast<uint64_t>(kEpoch / kMs + 41));
  EXPECT_EQ(p.relativeTimecode, 0);
  const Placement next = f.place(s, videoDelta(kEpoch + 40 * kMs + 800'000));
  EXPECT_EQ(next.drop, FrameDrop::None) << "not before its fragment";
  EXPECT_EQ(next.relativeTimecode, 1);
  EXPECT_EQ(f.place(s, audio(kEpoch + 40 * kMs + 900'000)).relativeTimecode, 0) << "audio never before its fragment";
}
