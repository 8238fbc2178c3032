#include "kvs/spool.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

using namespace kvs;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> bytesOf(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }
std::vector<Chunk> chunks(const std::string& a, const std::string& b = "") {
  std::vector<Chunk> out{Chunk::copyOf(bytesOf(a))};
  if (!b.empty()) out.push_back(Chunk::copyOf(bytesOf(b)));
  return out;
}
std::string text(const std::vector<uint8_t>& v) { return std::string(v.begin(), v.end()); }

class SpoolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = (fs::temp_directory_path() / ("spool-test-" + std::to_string(::getpid()) + "-" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name()))
               .string();
    fs::remove_all(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  size_t filesUnder() const {
    size_t n = 0;
    for (const auto& e : fs::recursive_directory_iterator(dir_)) n += e.is_regular_file() && e.path().extension() == ".frag";
    return n;
  }
  std::string dir_;
};

}  // namespace

TEST_F(SpoolTest, WhatARunLeftIsSentByTheNextWithItsHeaderAndThenGoes) {
  {
    Spool run1(dir_, 1 << 20);
    run1.setHeader(bytesOf("HEADER-1"));
    run1.write(1000, chunks("[c1]", "frames-1"));
    run1.write(2000, chunks("[c2]", "frames-2"));
    run1.write(3000, chunks("[c3]"));
    run1.remove(1000);  // persisted
    EXPECT_EQ(run1.fragments(), 2u);
  }
  Spool run2(dir_, 1 << 20);
  EXPECT_EQ(run2.fragments(), 2u);
  auto batch = run2.nextBatch(UINT64_MAX, 1 << 20);
  ASSERT_TRUE(batch);
  EXPECT_FALSE(batch->currentSession);
  EXPECT_EQ(text(batch->header), "HEADER-1");
  ASSERT_EQ(batch->fragments.size(), 2u);
  EXPECT_EQ(batch->fragments[0].first, 2000u);
  EXPECT_EQ(text(batch->fragments[0].second), "[c2]frames-2");
  EXPECT_EQ(batch->fragments[1].first, 3000u);
  run2.remove(2000);
  run2.remove(3000);
  EXPECT_FALSE(run2.nextBatch(UINT64_MAX, 1 << 20));
  size_t sessions = 0;
  for (const auto& e : fs::directory_iterator(dir_)) sessions += e.is_directory();
  EXPECT_EQ(sessions, 1u) << "run 1's directory is gone once empty; run 2's remains while it runs";
}

TEST_F(SpoolTest, BatchesAreBoundedAndTheCurrentSessionGivesOnlyWhatIsOlderThanMemory) {
  Spool spool(dir_, 1 << 20);
  spool.setHeader(bytesOf("H"));
  for (uint64_t tc : {100u, 200u, 300u, 400u}) spool.write(tc, chunks(std::string(100, 'x')));
  auto batch = spool.nextBatch(300, 1 << 20);  // memory still holds 300 and later
  ASSERT_TRUE(batch);
  EXPECT_TRUE(batch->currentSession);
  ASSERT_EQ(batch->fragments.size(), 2u);
  EXPECT_EQ(batch->fragments[1].first, 200u);
  batch = spool.nextBatch(UINT64_MAX, 150);  // at most 150 bytes, but always one fragment
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->fragments.size(), 1u);
  EXPECT_FALSE(spool.nextBatch(100, 1 << 20));
}

TEST_F(SpoolTest, AboveItsSizeTheOldestFragmentsAreDeletedAndReported) {
  Spool spool(dir_, 250);
  spool.setHeader(bytesOf("H"));
  EXPECT_TRUE(spool.write(1, chunks(std::string(100, 'a'))).empty());
  EXPECT_TRUE(spool.write(2, chunks(std::string(100, 'b'))).empty());
  auto dropped = spool.write(3, chunks(std::string(100, 'c')));
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].timecode, 1u);
  EXPECT_EQ(dropped[0].bytes, 100u);
  EXPECT_EQ(spool.bytes(), 200u);
  EXPECT_EQ(filesUnder(), 2u);
}

TEST_F(SpoolTest, AFragmentAcknowledgedBeforeItIsWrittenIsNotWritten) {
  Spool spool(dir_, 1 << 20);
  spool.setHeader(bytesOf("H"));
  spool.remove(500);
  spool.write(500, chunks("late"));
  EXPECT_EQ(spool.fragments(), 0u);
  EXPECT_EQ(filesUnder(), 0u);
}

TEST_F(SpoolTest, OneRunAtATimeOwnsTheDirectory) {
  Spool first(dir_, 1 << 20);
  try {
    Spool second(dir_, 1 << 20);
    FAIL() << "a second spool on the same directory";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("in use"), std::string::npos) << e.what();
  }
}

TEST_F(SpoolTest, InterruptedWritesAndSessionsWithoutAHeaderAreCleanedUp) {
  fs::create_directories(fs::path(dir_) / "0000000000000001");
  std::ofstream(fs::path(dir_) / "0000000000000001" / "00000000000000000007.frag") << "no header for me";
  fs::create_directories(fs::path(dir_) / "0000000000000002");
  std::ofstream(fs::path(dir_) / "0000000000000002" / "header.mkv") << "H2";
  std::ofstream(fs::path(dir_) / "0000000000000002" / "00000000000000000009.frag") << "whole";
  std::ofstream(fs::path(dir_) / "0000000000000002" / "00000000000000000010.frag.tmp") << "half";
  Spool spool(dir_, 1 << 20);
  EXPECT_EQ(spool.fragments(), 1u);
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "0000000000000001"));
  EXPECT_FALSE(fs::exists(fs::path(dir_) / "0000000000000002" / "00000000000000000010.frag.tmp"));
  auto batch = spool.nextBatch(UINT64_MAX, 1 << 20);
  ASSERT_TRUE(batch);
  EXPECT_EQ(text(batch->fragments.at(0).second), "whole");
}

TEST_F(SpoolTest, AnUnusableDirectoryIsAClearError) {
  std::ofstream(dir_) << "a file, not a directory";
  try {
    Spool spool(dir_ + "/sub", 1 << 20);
    FAIL() << "a spool under a file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("storage-path"), std::string::npos) << e.what();
  }
  fs::remove(dir_);
}
