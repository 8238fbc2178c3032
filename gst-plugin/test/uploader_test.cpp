// Tests of kvs/uploader.h over real HTTP, without the control plane: the Uploader streams a
// content store to a PutMedia stub on 127.0.0.1 (loopback_server.h), with a test UploadHost that
// records every report.
//
// The stub decodes each chunked request body and finds the fragments in it: a Cluster (its ID,
// unknown size, then the 8-byte Timecode, as MkvWriter::clusterHeader writes it) starts one, and
// the next Cluster, a Tags element (the end-of-fragment tag) or the end of the body completes it
// (producer-protocol.md §5, §6.4). It answers with the ACK stream of §4.1, one ACK per chunk:
// BUFFERING when a fragment starts, RECEIVED and PERSISTED when it is complete. Frame payloads
// are zeros, so those IDs never occur inside them. A script per connection can keep the stub
// silent, cut the connection at a fragment, or send an ERROR ack for one.
#include "kvs/uploader.h"

#include <gtest/gtest.h>
#include <sys/socket.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kvs/mkv.h"
#include "kvs/store.h"
#include "loopback_server.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using kvs::Ack;
using kvs::AckType;

/// Generous bound for "happens" and "returns promptly"; never a performance assertion.
constexpr auto kDeadline = 20s;
/// Nothing listens there: connections are refused at once.
constexpr const char* kUnreachable = "http://127.0.0.1:1";

bool waitUntil(const std::function<bool()>& done, Clock::duration timeout = kDeadline) {
  for (const auto until = Clock::now() + timeout; !done();) {
    if (Clock::now() >= until) return false;
    std::this_thread::sleep_for(5ms);
  }
  return true;
}

/// Timecode of the i-th test fragment (milliseconds, the writer's timecode scale).
uint64_t tc(int i) { return 1000 + 1000 * static_cast<uint64_t>(i); }

std::vector<uint64_t> timecodes(int first, int count) {
  std::vector<uint64_t> out;
  for (int i = first; i < first + count; i++) out.push_back(tc(i));
  return out;
}

// ------------------------------------------------------------------------------------ stub

/// What the stub does on one connection.
struct Script {
  enum class Kind { Acks, Silent, CutAt, ErrorAt };
  Kind kind = Kind::Acks;
  uint64_t timecode = 0;  // CutAt, ErrorAt: when this fragment starts
  /// CutAt: the cut waits until this is true (the client has read the ACKs already sent, which
  /// a reset could otherwise destroy in its receive buffer).
  std::function<bool()> cutWhen;
  uint32_t errorId = 0;  // ErrorAt
  std::string errorCode;

  static Script silent() { return {Kind::Silent, 0, {}, 0, ""}; }
  /// Resets the connection when fragment `at` starts, after the ACKs of the fragments before.
  static Script cutAt(uint64_t at, std::function<bool()> when) { return {Kind::CutAt, at, std::move(when), 0, ""}; }
  /// An ERROR ack for fragment `at` when it starts; then the stub only reads until the client
  /// closes the connection.
  static Script errorAt(uint64_t at, uint32_t id, std::string code) {
    return {Kind::ErrorAt, at, {}, id, std::move(code)};
  }
};

/// What the stub saw on one connection.
struct SeenConnection {
  std::string head;  // request line and headers
  bool startsWithStreamHeader = false;
  std::vector<uint64_t> fragments;  // cluster timecodes, in the order they started
  bool bodyEnded = false;           // the terminating chunk arrived
};

class PutMediaStub {
 public:
  /// Connection i follows scripts[i]; connections past the list get ACKs.
  explicit PutMediaStub(std::vector<Script> scripts = {}) : scripts_(std::move(scripts)) {}

  std::string url() const { return server_.url(); }
  std::vector<SeenConnection> connections() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }
  /// How many PERSISTED acks were sent for each fragment timecode.
  std::map<uint64_t, int> persisted() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return persisted_;
  }

 private:
  static bool sendAck(int fd, const std::string& json) {
    const std::string line = json + "\n";
    char size[24];
    std::snprintf(size, sizeof size, "%zx\r\n", line.size());
    return kvstest::LoopbackServer::sendAll(fd, size + line + "\r\n");
  }

  static std::string ackJson(const char* type, uint64_t timecode) {
    return std::string(R"({"EventType":")") + type + R"(","FragmentTimecode":)" + std::to_string(timecode) +
           R"(,"FragmentNumber":"9134385233318143239268206)" + std::to_string(timecode) + "\"}";
  }

  /// Moves the complete chunks at the front of `raw` to `body`; true once the last chunk came.
  static bool decodeChunks(std::string& raw, std::string& body) {
    for (;;) {
      const size_t eol = raw.find("\r\n");
      if (eol == std::string::npos) return false;
      const size_t size = std::stoul(raw.substr(0, eol), nullptr, 16);
      if (size == 0) return true;
      if (raw.size() < eol + 2 + size + 2) return false;
      body.append(raw, eol + 2, size);
      raw.erase(0, eol + 2 + size + 2);
    }
  }

  void serve(int fd) {
    size_t index = 0;
    Script script;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      index = seen_.size();
      seen_.emplace_back();
      if (index < scripts_.size()) script = scripts_[index];
    }
    std::string raw;
    size_t headEnd = std::string::npos;
    while ((headEnd = raw.find("\r\n\r\n")) == std::string::npos) {
      if (!server_.readSome(fd, raw)) return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      seen_[index].head = raw.substr(0, headEnd);
    }
    raw.erase(0, headEnd + 4);
    // The service answers 200 at once and streams the ACKs in a chunked body (§4.1).
    if (!kvstest::LoopbackServer::sendAll(
            fd, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")) {
      return;
    }
    const bool acks = script.kind != Script::Kind::Silent;
    std::optional<uint64_t> open;  // the fragment whose end has not arrived yet
    auto complete = [&] {
      if (!open) return;
      if (acks) {
        sendAck(fd, ackJson("RECEIVED", *open));
        sendAck(fd, ackJson("PERSISTED", *open));
        std::lock_guard<std::mutex> lock(mutex_);
        persisted_[*open]++;
      }
      open.reset();
    };

    static const std::string kEbmlId("\x1A\x45\xDF\xA3", 4);
    static const std::string kClusterId("\x1F\x43\xB6\x75", 4);
    static const std::string kTagsId("\x12\x54\xC3\x67", 4);
    constexpr size_t kClusterStart = 4 + 1 + 2 + 8;  // ID, unknown size, Timecode ID + size + value
    std::string body;
    size_t scanned = 0;
    for (;;) {
      const bool ended = decodeChunks(raw, body);
      if (scanned == 0 && body.size() >= 4) {
        std::lock_guard<std::mutex> lock(mutex_);
        seen_[index].startsWithStreamHeader = body.compare(0, 4, kEbmlId) == 0;
      }
      while (scanned + 4 <= body.size()) {
        if (body.compare(scanned, 4, kTagsId) == 0) {
          complete();
          scanned += 4;
        } else if (body.compare(scanned, 4, kClusterId) == 0) {
          if (body.size() < scanned + kClusterStart) break;  // the rest has not arrived
          const auto* p = reinterpret_cast<const uint8_t*>(body.data()) + scanned;
          if (p[4] != 0xFF || p[5] != 0xE7 || p[6] != 0x88) ADD_FAILURE() << "unexpected cluster header";
          uint64_t timecode = 0;
          for (int i = 7; i < 15; i++) timecode = (timecode << 8) | p[i];
          scanned += kClusterStart;
          complete();
          {
            std::lock_guard<std::mutex> lock(mutex_);
            seen_[index].fragments.push_back(timecode);
          }
          if (script.kind == Script::Kind::CutAt && timecode == script.timecode) {
            if (!waitUntil(script.cutWhen)) ADD_FAILURE() << "the condition of the cut never came";
            const linger reset{1, 0};  // close() sends a reset
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
            return;
          }
          if (script.kind == Script::Kind::ErrorAt && timecode == script.timecode) {
            sendAck(fd, R"({"EventType":"ERROR","FragmentTimecode":)" + std::to_string(timecode) +
                            R"(,"ErrorId":)" + std::to_string(script.errorId) + R"(,"ErrorCode":")" +
                            script.errorCode + "\"}");
            for (std::string ignored; server_.readSome(fd, ignored); ignored.clear()) {
            }
            return;
          }
          open = timecode;
          if (acks) sendAck(fd, ackJson("BUFFERING", timecode));
        } else {
          scanned++;
        }
      }
      if (ended) {
        complete();
        {
          std::lock_guard<std::mutex> lock(mutex_);
          seen_[index].bodyEnded = true;
        }
        kvstest::LoopbackServer::sendAll(fd, "0\r\n\r\n");
        return;
      }
      if (!server_.readSome(fd, raw)) return;
    }
  }

  mutable std::mutex mutex_;
  std::vector<Script> scripts_;
  std::vector<SeenConnection> seen_;
  std::map<uint64_t, int> persisted_;
  kvstest::LoopbackServer server_{[this](int fd) { serve(fd); },
                                  kvstest::LoopbackServer::Connections::Concurrent};  // last: destroyed first
};

// ------------------------------------------------------------------------------------ host

class TestHost : public kvs::UploadHost {
 public:
  explicit TestHost(std::vector<uint8_t> header) : header_(std::move(header)) {}

  void requestStop(bool drain, Clock::time_point deadline) {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = {true, drain, deadline};
  }
  /// What refreshDataEndpoint() returns; empty: it throws.
  void refreshTo(std::string endpoint) {
    std::lock_guard<std::mutex> lock(mutex_);
    refreshTo_ = std::move(endpoint);
  }
  int refreshes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return refreshes_;
  }
  std::vector<Ack> acks() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return acks_;
  }
  /// Timecodes of the PERSISTED acks, in the order they came.
  std::vector<uint64_t> persisted() const {
    std::vector<uint64_t> out;
    for (const auto& a : acks()) {
      if (a.type == AckType::Persisted) out.push_back(*a.timecode);
    }
    return out;
  }
  std::vector<kvs::StreamError> errors() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return errors_;
  }
  std::vector<kvs::ConnectionEvent> events() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return events_;
  }
  std::vector<std::string> states() const {
    std::vector<std::string> out;
    for (const auto& e : events()) out.push_back(e.state);
    return out;
  }
  std::optional<kvs::UploadStats> lastStats() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }

  kvs::UploadStop stopRequest() const override {
    std::lock_guard<std::mutex> lock(mutex_);
    return stop_;
  }
  std::vector<uint8_t> streamHeader() override { return header_; }
  kvs::Credentials credentials() override { return {"AKIDUPLOADERTEST", "uploader-test-secret", "", std::nullopt}; }
  std::string refreshDataEndpoint() override {
    std::lock_guard<std::mutex> lock(mutex_);
    refreshes_++;
    if (refreshTo_.empty()) throw std::runtime_error("no control plane in this test");
    return refreshTo_;
  }
  void reportAck(const Ack& ack, std::chrono::milliseconds) override {
    std::lock_guard<std::mutex> lock(mutex_);
    acks_.push_back(ack);
  }
  void reportError(const kvs::StreamError& error) override {
    std::lock_guard<std::mutex> lock(mutex_);
    errors_.push_back(error);
  }
  void reportConnection(const kvs::ConnectionEvent& event) override {
    std::lock_guard<std::mutex> lock(mutex_);
    events_.push_back(event);
  }
  void reportStats(const kvs::UploadStats& stats) override {
    std::lock_guard<std::mutex> lock(mutex_);
    stats_ = stats;
  }
  void reportLatencyPressure(std::chrono::nanoseconds) override {}

 private:
  const std::vector<uint8_t> header_;
  mutable std::mutex mutex_;
  kvs::UploadStop stop_;
  std::string refreshTo_;
  int refreshes_ = 0;
  std::vector<Ack> acks_;
  std::vector<kvs::StreamError> errors_;
  std::vector<kvs::ConnectionEvent> events_;
  std::optional<kvs::UploadStats> stats_;
};

// ------------------------------------------------------------------------------------ fixture

kvs::MkvWriter testWriter() {
  kvs::TrackConfig video;
  video.name = "kinesis_video";
  video.codecId = "V_MPEG4/ISO/AVC";
  video.width = 320;
  video.height = 240;
  return kvs::MkvWriter({video}, 1000000, std::array<uint8_t, 16>{});
}

class UploaderTest : public ::testing::Test {
 protected:
  UploaderTest() : writer_(testWriter()), host_(writer_.streamHeader()) {}

  void TearDown() override {
    if (runner_.valid()) stop(false);
    store_.setDataCallback({});
    if (HasFailure()) {
      std::lock_guard<std::mutex> lock(logMutex_);
      for (const auto& line : log_) std::fprintf(stderr, "  uploader: %s\n", line.c_str());
    }
  }

  static kvs::UploadSettings settings() {
    kvs::UploadSettings s;
    s.streamName = "uploader-test";
    s.region = "us-east-1";
    s.userAgent = "uploader-test";
    return s;
  }

  /// A fragment of three frames of zeros; the last one stays open until the next begins or
  /// close() is called.
  void addFragment(int i) {
    const uint64_t timecode = tc(i);
    const int64_t ptsNs = static_cast<int64_t>(timecode) * 1000000;
    store_.beginFragment(timecode, ptsNs, kvs::Chunk::adopt(writer_.clusterHeader(timecode)));
    for (int16_t frame = 0; frame < 3; frame++) {
      std::vector<uint8_t> block(kvs::MkvWriter::kSimpleBlockHeaderSize + kFrameBytes, 0);
      size_t len = 0;
      kvs::MkvWriter::simpleBlockHeader(block.data(), len, 1, static_cast<int16_t>(frame * 40), frame == 0, kFrameBytes);
      store_.appendFrame(ptsNs + frame * 40000000, {kvs::Chunk::adopt(std::move(block))});
    }
  }
  void addFragments(int first, int count) {
    for (int i = first; i < first + count; i++) addFragment(i);
  }
  /// Ends the last fragment with the end-of-fragment tag, as the element does at EOS.
  void close() { store_.closeFragment(kvs::Chunk::adopt(kvs::MkvWriter::endOfFragmentTags())); }

  void start(kvs::UploadSettings s, std::string endpoint) {
    uploader_ = std::make_unique<kvs::Uploader>(std::move(s), store_, host_, [this](kvs::LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> lock(logMutex_);
      log_.push_back(m);
    });
    store_.setDataCallback([this] { uploader_->wake(); });
    runner_ = std::async(std::launch::async, [this, endpoint = std::move(endpoint)] { return uploader_->run(endpoint); });
  }
  /// run()'s result once it returned on its own.
  bool finished() {
    if (runner_.wait_for(kDeadline) != std::future_status::ready) {
      ADD_FAILURE() << "Uploader::run did not return";
      std::fprintf(stderr, "Uploader::run hangs; aborting\n");
      std::abort();  // the test cannot go on while run() uses the fixture
    }
    return runner_.get();
  }
  /// Asks run() to stop (a drain has `drainFor`) and returns its result.
  bool stop(bool drain, Clock::duration drainFor = kDeadline) {
    host_.requestStop(drain, Clock::now() + drainFor);
    uploader_->wake();
    return finished();
  }
  std::vector<std::string> connectionStates() const { return host_.states(); }

  static constexpr size_t kFrameBytes = 3000;
  kvs::MkvWriter writer_;
  TestHost host_;
  kvs::ContentStore store_{64u << 20, std::chrono::hours(1)};
  std::unique_ptr<kvs::Uploader> uploader_;
  std::future<bool> runner_;
  std::mutex logMutex_;
  std::vector<std::string> log_;
};

std::string lowercase(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ------------------------------------------------------------------------------------ tests

TEST_F(UploaderTest, PersistedFragmentsLeaveTheStore) {
  PutMediaStub stub;
  addFragments(0, 4);
  close();
  start(settings(), stub.url());

  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == 4; }));
  EXPECT_EQ(host_.persisted(), timecodes(0, 4));
  EXPECT_TRUE(waitUntil([&] { return store_.stats().fragments == 0; })) << "persisted fragments are trimmed";
  EXPECT_TRUE(store_.allPersisted());
  // Each fragment went BUFFERING -> RECEIVED -> PERSISTED.
  std::vector<AckType> first;
  for (const auto& a : host_.acks()) {
    if (a.timecode == tc(0)) first.push_back(a.type);
  }
  EXPECT_EQ(first, (std::vector<AckType>{AckType::Buffering, AckType::Received, AckType::Persisted}));

  const auto seen = stub.connections();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].startsWithStreamHeader);
  EXPECT_EQ(seen[0].fragments, timecodes(0, 4));
  const std::string head = lowercase(seen[0].head);
  EXPECT_EQ(head.rfind("post /putmedia http/1.1\r\n", 0), 0u) << seen[0].head;
  EXPECT_NE(head.find("\r\nx-amzn-stream-name: uploader-test"), std::string::npos) << seen[0].head;
  EXPECT_NE(head.find("\r\nauthorization: aws4-hmac-sha256 credential=akiduploadertest/"), std::string::npos)
      << seen[0].head;

  // The statistics catch up within a report or two.
  EXPECT_TRUE(waitUntil([&] {
    auto s = host_.lastStats();
    return s && s->fragmentsPersisted == 4 && s->fragmentsReceived == 4 && s->connections == 1 && s->bytesSent > 0;
  }));
  EXPECT_TRUE(stop(false)) << "everything was persisted";
  EXPECT_TRUE(host_.errors().empty());
  EXPECT_EQ(connectionStates(), std::vector<std::string>{"connecting"});
}

TEST_F(UploaderTest, ACutConnectionIsResentFromTheFirstUnpersistedFragment) {
  PutMediaStub stub({Script::cutAt(tc(2), [&] { return host_.persisted().size() == 2; })});
  addFragments(0, 5);
  close();
  start(settings(), stub.url());

  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == 5; })) << ::testing::PrintToString(host_.persisted());
  EXPECT_TRUE(stop(true));
  const auto seen = stub.connections();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].fragments, timecodes(0, 3));  // cut when the third one started
  EXPECT_TRUE(seen[1].startsWithStreamHeader);
  EXPECT_EQ(seen[1].fragments, timecodes(2, 3)) << "the second connection starts at the first unpersisted fragment";
  // Nothing lost, nothing persisted twice.
  const std::map<uint64_t, int> once{{tc(0), 1}, {tc(1), 1}, {tc(2), 1}, {tc(3), 1}, {tc(4), 1}};
  EXPECT_EQ(stub.persisted(), once);
  EXPECT_EQ(host_.persisted(), timecodes(0, 5));
  const auto events = host_.events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[1].state, "dropped");
  EXPECT_EQ(events[1].id, 1u);
}

TEST_F(UploaderTest, AnErrorAckIsReportedAndItsFragmentResent) {
  PutMediaStub stub({Script::errorAt(tc(2), 5000, "INTERNAL_ERROR")});
  addFragments(0, 5);
  close();
  start(settings(), stub.url());

  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == 5; })) << ::testing::PrintToString(host_.persisted());
  EXPECT_TRUE(stop(true));
  const auto errors = host_.errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].serviceCode, "INTERNAL_ERROR");
  EXPECT_EQ(errors[0].errorId, 5000u);
  EXPECT_EQ(errors[0].httpStatus, 200);
  EXPECT_EQ(errors[0].fragmentTimecode, tc(2));
  EXPECT_TRUE(errors[0].retryable);
  EXPECT_FALSE(errors[0].fatal);
  EXPECT_NE(errors[0].message.find("5000"), std::string::npos) << errors[0].message;

  // 5000 is retried: the next connection rolls back to the errored fragment.
  const auto seen = stub.connections();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].fragments, timecodes(0, 3));
  EXPECT_EQ(seen[1].fragments, timecodes(2, 3));
  const std::map<uint64_t, int> once{{tc(0), 1}, {tc(1), 1}, {tc(2), 1}, {tc(3), 1}, {tc(4), 1}};
  EXPECT_EQ(stub.persisted(), once);
  const auto states = connectionStates();
  ASSERT_GE(states.size(), 2u);
  EXPECT_EQ(states[1], "dropped");
}

TEST_F(UploaderTest, AFragmentTheServiceRefusesIsSkipped) {
  PutMediaStub stub({Script::errorAt(tc(2), 4006, "INVALID_MKV_DATA")});
  addFragments(0, 5);
  close();
  start(settings(), stub.url());

  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == 4; })) << ::testing::PrintToString(host_.persisted());
  EXPECT_TRUE(stop(true)) << "a skipped fragment counts as done";
  EXPECT_TRUE(store_.allPersisted());
  const auto errors = host_.errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].serviceCode, "INVALID_MKV_DATA");
  EXPECT_EQ(errors[0].errorId, 4006u);
  EXPECT_EQ(errors[0].fragmentTimecode, tc(2));
  EXPECT_FALSE(errors[0].fatal);
  const auto seen = stub.connections();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[1].fragments, timecodes(3, 2)) << "the refused fragment is not sent again";
  EXPECT_EQ(host_.persisted(), (std::vector<uint64_t>{tc(0), tc(1), tc(3), tc(4)}));
}

TEST_F(UploaderTest, AFatalErrorAckEndsTheUpload) {
  PutMediaStub stub({Script::errorAt(tc(1), 4008, "STREAM_NOT_ACTIVE")});
  addFragments(0, 3);
  close();
  start(settings(), stub.url());

  EXPECT_FALSE(finished()) << "run() returns on its own, with fragments unsent";
  const auto errors = host_.errors();
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0].errorId, 4008u);
  EXPECT_EQ(errors[0].serviceCode, "STREAM_NOT_ACTIVE");
  EXPECT_TRUE(errors[0].fatal);
  EXPECT_FALSE(errors[0].retryable);
  EXPECT_EQ(stub.connections().size(), 1u) << "no connection after a fatal error";
  EXPECT_EQ(host_.persisted(), timecodes(0, 1));
}

TEST_F(UploaderTest, AStaleConnectionIsDroppedAndResent) {
  PutMediaStub stub({Script::silent()});
  auto s = settings();
  s.connectionStaleness = 300ms;
  s.replayDuration = std::chrono::hours(1);  // the rollback reaches the oldest fragment
  addFragment(0);
  start(s, stub.url());

  // Live media keeps flowing to a server that acknowledges nothing.
  int next = 1;
  const auto stale = [&] {
    for (const auto& e : host_.events()) {
      if (e.state == "dropped") return true;
    }
    return false;
  };
  while (!stale() && next < 200) {
    addFragment(next++);
    waitUntil(stale, 50ms);
  }
  ASSERT_TRUE(stale()) << "no drop after " << next << " fragments";
  close();
  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == static_cast<size_t>(next); }))
      << ::testing::PrintToString(host_.persisted());
  EXPECT_TRUE(stop(true));

  const auto events = host_.events();
  ASSERT_GE(events.size(), 2u);
  EXPECT_EQ(events[1].state, "dropped");
  EXPECT_EQ(events[1].id, 1u);
  EXPECT_EQ(events[1].reason, "stale: no acknowledgement for 300 ms");
  const auto seen = stub.connections();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_FALSE(seen[0].fragments.empty());
  EXPECT_EQ(seen[1].fragments, timecodes(0, next)) << "nothing was acknowledged: everything is sent again";
  for (const auto& [timecode, count] : stub.persisted()) EXPECT_EQ(count, 1) << timecode;
  EXPECT_TRUE(host_.errors().empty());
}

TEST_F(UploaderTest, ADrainingStopEndsTheBodyOnceEverythingIsPersisted) {
  PutMediaStub stub;
  addFragments(0, 5);  // the last one stays open: its end is not known yet
  start(settings(), stub.url());
  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == 4; }));
  close();
  EXPECT_TRUE(stop(true));

  EXPECT_EQ(host_.persisted(), timecodes(0, 5));
  EXPECT_TRUE(store_.allPersisted());
  const auto seen = stub.connections();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_TRUE(seen[0].bodyEnded) << "the body ended with its last chunk";
  EXPECT_EQ(connectionStates(), (std::vector<std::string>{"connecting", "closed"}));
}

TEST_F(UploaderTest, AStopWithoutDrainReturnsAtOnce) {
  PutMediaStub stub({Script::silent()});
  addFragments(0, 3);
  close();
  start(settings(), stub.url());
  ASSERT_TRUE(waitUntil([&] {
    auto seen = stub.connections();
    return !seen.empty() && seen[0].fragments.size() == 3;
  }));
  EXPECT_FALSE(stop(false)) << "nothing was persisted";
  EXPECT_FALSE(store_.allPersisted());
  EXPECT_FALSE(stub.connections()[0].bodyEnded);
}

TEST_F(UploaderTest, ADrainGivesUpAtItsDeadline) {
  PutMediaStub stub({Script::silent()});
  addFragments(0, 3);
  close();
  start(settings(), stub.url());
  ASSERT_TRUE(waitUntil([&] { return !stub.connections().empty(); }));
  EXPECT_FALSE(stop(true, 300ms));
  EXPECT_FALSE(store_.allPersisted());
  EXPECT_FALSE(stub.connections()[0].bodyEnded);
}

TEST_F(UploaderTest, AnOldDataEndpointIsAskedForAgainBeforeAConnectionOpens) {
  PutMediaStub stub;
  host_.refreshTo(stub.url());
  auto s = settings();
  s.endpointRefreshPeriod = 0ms;
  addFragments(0, 2);
  close();
  start(s, kUnreachable);

  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == 2; }));
  EXPECT_TRUE(stop(true));
  EXPECT_GE(host_.refreshes(), 1);
  EXPECT_EQ(stub.connections().size(), 1u);
  EXPECT_EQ(connectionStates(), (std::vector<std::string>{"connecting", "closed"})) << "the first connection went to the fresh endpoint";
}

TEST_F(UploaderTest, AFailedRefreshKeepsTheDataEndpoint) {
  PutMediaStub stub;
  auto s = settings();
  s.endpointRefreshPeriod = 0ms;
  addFragments(0, 2);
  close();
  start(s, stub.url());  // refreshDataEndpoint() throws

  ASSERT_TRUE(waitUntil([&] { return host_.persisted().size() == 2; }));
  EXPECT_TRUE(stop(true));
  EXPECT_GE(host_.refreshes(), 1);
  EXPECT_EQ(stub.connections().size(), 1u);
  EXPECT_TRUE(host_.errors().empty());
}

}  // namespace
