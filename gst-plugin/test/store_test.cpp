#include "kvs/store.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

using namespace kvs;
using namespace std::chrono_literals;

namespace {

Chunk bytes(const std::string& s) { return Chunk::copyOf(std::vector<uint8_t>(s.begin(), s.end())); }

std::string readAll(ContentStore& store, ReadCursor& c) {
  std::string out;
  uint8_t buf[7];  // small on purpose: reads span chunks
  for (;;) {
    size_t n = store.read(c, buf, sizeof buf);
    if (n == 0) break;
    out.append(reinterpret_cast<char*>(buf), n);
  }
  return out;
}

constexpr int64_t kSec = 1'000'000'000;

}  // namespace

TEST(ContentStore, ReadsFragmentsInOrderAcrossChunks) {
  ContentStore store(1 << 20, 120s);
  store.beginFragment(1000, 0, bytes("[C1]"));
  store.appendFrame(0, {bytes("h1"), bytes("payload-1")});
  store.appendFrame(33, {bytes("h2"), bytes("payload-2")});
  ReadCursor c;
  EXPECT_EQ(readAll(store, c), "[C1]h1payload-1h2payload-2");
  EXPECT_FALSE(store.atFragmentBoundary(c));  // fragment still open
  store.beginFragment(2000, kSec, bytes("[C2]"));
  store.appendFrame(kSec, {bytes("k")});
  EXPECT_EQ(readAll(store, c), "[C2]k");
  store.closeFragment(bytes("<EOFR>"));
  EXPECT_EQ(readAll(store, c), "<EOFR>");
  EXPECT_TRUE(store.atFragmentBoundary(c));
  EXPECT_TRUE(store.drained(c));  // nothing left to read and no fragment open
  EXPECT_FALSE(store.allPersisted());
}

TEST(ContentStore, PersistedAckTrimsThroughTheFragment) {
  ContentStore store(1 << 20, 120s);
  store.beginFragment(1000, 0, bytes("A"));
  store.beginFragment(2000, kSec, bytes("B"));
  store.beginFragment(3000, 2 * kSec, bytes("C"));
  ReadCursor c;
  readAll(store, c);
  ASSERT_TRUE(store.ack(FragmentState::Persisted, 2000).has_value());
  EXPECT_EQ(store.stats().fragments, 1u);
  EXPECT_FALSE(store.allPersisted());
  EXPECT_FALSE(store.ack(FragmentState::Persisted, 9999).has_value());
  store.closeFragment();
  store.ack(FragmentState::Persisted, 3000);
  EXPECT_TRUE(store.allPersisted());
}

TEST(ContentStore, RollbackAfterReceivedWhenHostAliveElseReplayWindow) {
  ContentStore store(1 << 20, 120s);
  for (int i = 0; i < 5; i++) store.beginFragment(1000u * (i + 1), i * kSec, bytes(std::string(1, char('A' + i))));
  store.closeFragment();
  ReadCursor c;
  EXPECT_EQ(readAll(store, c), "ABCDE");
  store.ack(FragmentState::Received, 1000);
  store.ack(FragmentState::Received, 2000);
  ReadCursor alive = store.rollback(c, true, 40s);
  EXPECT_EQ(readAll(store, alive), "CDE");
  ReadCursor replay = store.rollback(c, false, 1500ms);
  EXPECT_EQ(readAll(store, replay), "DE");  // fragments starting within 1.5 s of the cursor's
  store.ack(FragmentState::Persisted, 1000);
  ReadCursor all = store.rollback(c, false, 100s);
  EXPECT_EQ(readAll(store, all), "BCDE");  // never before the tail
}

TEST(ContentStore, SkippedFragmentsAreNotResent) {
  ContentStore store(1 << 20, 120s);
  store.beginFragment(1, 0, bytes("A"));
  store.beginFragment(2, kSec, bytes("B"));
  store.beginFragment(3, 2 * kSec, bytes("C"));
  store.closeFragment();
  store.skip(2);
  ReadCursor c = store.tailCursor();
  EXPECT_EQ(readAll(store, c), "AC");
}

TEST(ContentStore, DropsOldestWholeFragmentWhenFullButNotTheOneBeingSent) {
  ContentStore store(10, 120s);
  std::vector<uint64_t> dropped;
  store.setDropCallback([&](const FragmentInfo& f) { dropped.push_back(f.timecode); });
  store.beginFragment(1, 0, bytes("AAAA"));
  ReadCursor c;
  uint8_t b[2];
  ASSERT_EQ(store.read(c, b, 2), 2u);  // fragment 1 is being transmitted
  store.beginFragment(2, kSec, bytes("BBBB"));
  store.beginFragment(3, 2 * kSec, bytes("CCCC"));  // 12 bytes > 10: drop 2 (1 is in flight)
  EXPECT_EQ(dropped, std::vector<uint64_t>{2});
  EXPECT_EQ(readAll(store, c), "AACCCC");
  EXPECT_EQ(store.stats().droppedFragments, 1u);
}

TEST(ContentStore, DropsByDuration) {
  ContentStore store(1 << 20, 2s);
  std::vector<uint64_t> dropped;
  store.setDropCallback([&](const FragmentInfo& f) { dropped.push_back(f.timecode); });
  for (int i = 0; i < 5; i++) store.beginFragment(uint64_t(i), i * kSec, bytes("x"));
  EXPECT_EQ(dropped, (std::vector<uint64_t>{0, 1}));
  EXPECT_LE(store.stats().bufferedDuration, 2s);
}

TEST(ContentStore, WaitForDataWakesOnAppendAndOnWake) {
  ContentStore store(1 << 20, 120s);
  ReadCursor c;
  std::thread producer([&] {
    std::this_thread::sleep_for(20ms);
    store.beginFragment(1, 0, bytes("A"));
  });
  auto t0 = std::chrono::steady_clock::now();
  store.waitForData(c, 5s);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  producer.join();
  std::thread waker([&] {
    std::this_thread::sleep_for(20ms);
    store.wake();
  });
  t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(store.waitAllPersisted(std::chrono::steady_clock::now() + 5s));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 4s);
  waker.join();
}

TEST(ContentStore, ReadCanStopAtTheNextFragmentBoundary) {
  ContentStore store(1 << 20, 120s);
  store.beginFragment(1, 0, bytes("AA"));
  store.beginFragment(2, kSec, bytes("BB"));
  ReadCursor c;
  uint8_t buf[16];
  size_t n = store.read(c, buf, sizeof buf, true);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), n), "AA");
  EXPECT_TRUE(store.atFragmentBoundary(c));
  EXPECT_EQ(store.read(c, buf, sizeof buf, false), 2u);
}
