// Helpers of the kvssink element tests: a fixture that owns one kvssink with a bus, bus waits,
// H.264 access units from the test data, environment guards, a watchdog for "never hangs"
// checks, and a tiny control-plane stub that hands out an unreachable data endpoint.
//
// main.cpp makes the process hermetic before gst_init(): no system or user plugins (kvssink is
// registered statically), a private registry, HOME an empty temporary directory and no AWS_*
// variable, so the element only finds the credentials a test gives it.
#pragma once

#include <arpa/inet.h>
#include <gst/check/gstharness.h>
#include <gst/gst.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <future>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "gstkvssink.h"
#include "kvs/nal.h"

namespace kvstest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// An endpoint nothing listens on: connections are refused at once.
inline constexpr const char* kUnreachable = "http://127.0.0.1:1";
/// Generous bound for "returns promptly / never hangs"; not a performance assertion.
inline constexpr auto kNeverHangs = 10s;

// ---------------------------------------------------------------------------------- messages

struct MessageUnref {
  void operator()(GstMessage* m) const { gst_message_unref(m); }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageUnref>;

/// Pops messages until one matches (the others are dropped) or the timeout passes.
inline MessagePtr waitForMessage(GstBus* bus, std::chrono::milliseconds timeout,
                                 const std::function<bool(GstMessage*)>& match) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    if (left.count() <= 0) return nullptr;
    GstMessage* m = gst_bus_timed_pop(bus, static_cast<GstClockTime>(left.count()));
    if (m == nullptr) return nullptr;
    if (match(m)) return MessagePtr(m);
    gst_message_unref(m);
  }
}

/// The next element message whose structure is `name` and that satisfies `extra`.
inline MessagePtr waitForElementMessage(GstBus* bus, const char* name, std::chrono::milliseconds timeout,
                                        const std::function<bool(const GstStructure*)>& extra = {}) {
  return waitForMessage(bus, timeout, [&](GstMessage* m) {
    if (GST_MESSAGE_TYPE(m) != GST_MESSAGE_ELEMENT) return false;
    const GstStructure* s = gst_message_get_structure(m);
    return s != nullptr && gst_structure_has_name(s, name) && (!extra || extra(s));
  });
}

inline MessagePtr waitForType(GstBus* bus, GstMessageType type, std::chrono::milliseconds timeout) {
  return waitForMessage(bus, timeout, [type](GstMessage* m) { return GST_MESSAGE_TYPE(m) == type; });
}

/// An ERROR message, parsed.
struct ErrorInfo {
  GQuark domain = 0;
  int code = 0;
  std::string message;
  std::string debug;
};

inline std::optional<ErrorInfo> parseError(GstMessage* m) {
  if (m == nullptr || GST_MESSAGE_TYPE(m) != GST_MESSAGE_ERROR) return std::nullopt;
  GError* err = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(m, &err, &debug);
  ErrorInfo e{err->domain, err->code, err->message ? err->message : "", debug ? debug : ""};
  g_error_free(err);
  g_free(debug);
  return e;
}

inline std::string fieldString(const GstStructure* s, const char* field) {
  const gchar* v = gst_structure_get_string(s, field);
  return v ? v : "<absent>";
}

// ---------------------------------------------------------------------------------- media

struct AccessUnit {
  std::vector<uint8_t> annexB;  // 4-byte start codes
  bool key = false;
};

inline std::vector<uint8_t> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// The access units of an Annex-B H.264 file: a new unit starts at an access unit delimiter,
/// at SPS/PPS/SEI after a slice, or at a slice with first_mb_in_slice == 0 after a slice.
inline std::vector<AccessUnit> h264AccessUnits(const std::string& name = "h264_320x240.h264") {
  const std::vector<uint8_t> data = readFile(std::string(KVS_TEST_DATA_DIR) + "/" + name);
  std::vector<AccessUnit> units;
  bool sawSlice = false;
  for (const auto& [nal, size] : kvs::splitAnnexB(data.data(), data.size())) {
    if (size == 0) continue;
    const int type = nal[0] & 0x1f;
    const bool slice = type >= 1 && type <= 5;
    const bool firstSliceOfPicture = slice && size > 1 && (nal[1] & 0x80) != 0;
    const bool prefix = type == 6 || type == 7 || type == 8;
    if (units.empty() || type == 9 || (sawSlice && (prefix || firstSliceOfPicture))) {
      units.emplace_back();
      sawSlice = false;
    }
    AccessUnit& au = units.back();
    static const uint8_t startCode[] = {0, 0, 0, 1};
    au.annexB.insert(au.annexB.end(), std::begin(startCode), std::end(startCode));
    au.annexB.insert(au.annexB.end(), nal, nal + size);
    if (type == 5) au.key = true;
    if (slice) sawSlice = true;
  }
  return units;
}

inline constexpr GstClockTime kFrameDuration = GST_SECOND / 25;

inline GstBuffer* makeBuffer(const std::vector<uint8_t>& bytes, bool key, GstClockTime pts,
                             GstClockTime duration = kFrameDuration) {
  GstBuffer* b = gst_buffer_new_memdup(bytes.data(), bytes.size());
  GST_BUFFER_PTS(b) = pts;
  GST_BUFFER_DTS(b) = pts;
  GST_BUFFER_DURATION(b) = duration;
  if (!key) GST_BUFFER_FLAG_SET(b, GST_BUFFER_FLAG_DELTA_UNIT);
  return b;
}

inline constexpr const char* kByteStreamCaps =
    "video/x-h264, stream-format=(string)byte-stream, alignment=(string)au, width=(int)320, height=(int)240, "
    "framerate=(fraction)25/1";

/// Sends caps to the element's pad, then pushes a TIME segment, as an upstream element would;
/// returns whether the element accepted the caps. (The caps go straight to the pad because
/// gst_pad_push_event() reports a sticky event as handled once it is stored on the source pad,
/// whatever the peer answered.)
inline bool pushCaps(GstHarness* h, GstCaps* caps) {
  GstPad* peer = gst_pad_get_peer(h->srcpad);
  // stream-start first (the harness's own one was pushed while the element was still in NULL,
  // and a pad forgets its sticky events when it is deactivated).
  if (GstEvent* started = peer ? gst_pad_get_sticky_event(peer, GST_EVENT_STREAM_START, 0) : nullptr) {
    gst_event_unref(started);
  } else {
    gst_harness_push_event(h, gst_event_new_stream_start("kvssink-element-test"));
  }
  const bool accepted = peer != nullptr && gst_pad_send_event(peer, gst_event_new_caps(caps)) != FALSE;
  if (peer != nullptr) gst_object_unref(peer);
  gst_caps_unref(caps);
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  gst_harness_push_event(h, gst_event_new_segment(&segment));
  return accepted;
}

inline bool pushCaps(GstHarness* h, const char* caps) { return pushCaps(h, gst_caps_from_string(caps)); }

// ---------------------------------------------------------------------------------- environment

/// Sets (or unsets, with nullopt) environment variables and restores them when destroyed.
/// Only change the environment while no uploader thread runs (elements in NULL).
class EnvGuard {
 public:
  EnvGuard() = default;
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  ~EnvGuard() {
    for (const auto& [name, value] : saved_) {
      if (value) {
        g_setenv(name.c_str(), value->c_str(), TRUE);
      } else {
        g_unsetenv(name.c_str());
      }
    }
  }
  void set(const std::string& name, std::optional<std::string> value) {
    if (saved_.find(name) == saved_.end()) {
      const gchar* old = g_getenv(name.c_str());
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    if (value) {
      g_setenv(name.c_str(), value->c_str(), TRUE);
    } else {
      g_unsetenv(name.c_str());
    }
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

/// A fresh empty directory, removed (with its content) when destroyed.
class TempDir {
 public:
  TempDir() {
    gchar* d = g_dir_make_tmp("kvssink-element-test-XXXXXX", nullptr);
    path_ = d ? d : "";
    g_free(d);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (!path_.empty()) {
      std::string cmd = "rm -rf '" + path_ + "'";
      if (std::system(cmd.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", path_.c_str());
    }
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------- watchdog

/// Runs `fn` on another thread and waits at most `limit`. If it does not return in time the
/// test cannot go on (the thread is stuck inside the element): report and abort instead of
/// hanging the test run. Returns the time taken.
inline std::chrono::milliseconds mustReturnWithin(std::chrono::seconds limit, const char* what,
                                                  const std::function<void()>& fn) {
  const auto start = Clock::now();
  std::packaged_task<void()> task(fn);
  auto done = task.get_future();
  std::thread t(std::move(task));
  if (done.wait_for(limit) != std::future_status::ready) {
    ADD_FAILURE() << what << " did not return within " << limit.count() << " s";
    std::fprintf(stderr, "%s hangs; aborting\n", what);
    std::fflush(stderr);
    std::abort();
  }
  t.join();
  done.get();
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

// ---------------------------------------------------------------------------------- stub

/// A control plane on 127.0.0.1 that says every stream exists and is ACTIVE and whose data
/// endpoint is `dataEndpoint`: with an unreachable one, the element gets past its start-up and
/// then fails to connect for PutMedia. Without one, the data endpoint is the stub itself, which
/// records each PutMedia request's headers and answers HTTP 500. One request per connection.
struct StubRequest {
  std::string path;
  std::string head;  // request line and headers
};

class StubControlPlane {
 public:
  explicit StubControlPlane(std::string dataEndpoint = "") : dataEndpoint_(std::move(dataEndpoint)) {
    listenFd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listenFd_ < 0 || bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listenFd_, 8) != 0) {
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { run(); });
  }
  StubControlPlane(const StubControlPlane&) = delete;
  StubControlPlane& operator=(const StubControlPlane&) = delete;
  ~StubControlPlane() {
    stop_ = true;
    thread_.join();
    close(listenFd_);
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Control-plane answers are sent this long after the request (a slow start-up).
  void setDelay(std::chrono::milliseconds delay) { delayMs_ = delay.count(); }
  std::vector<std::string> paths() const {
    std::lock_guard<std::mutex> lock(mutex_);
    std::vector<std::string> out;
    for (const auto& r : requests_) out.push_back(r.path);
    return out;
  }
  std::vector<StubRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }

 private:
  bool readable(int fd) const {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int n = poll(&p, 1, 20);
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return false;
    }
    return false;
  }

  void run() {
    while (readable(listenFd_)) {
      const int fd = accept(listenFd_, nullptr, nullptr);
      if (fd < 0) continue;
      serve(fd);
      close(fd);
    }
  }

  void serve(int fd) {
    std::string in;
    size_t headerEnd;
    while ((headerEnd = in.find("\r\n\r\n")) == std::string::npos) {
      if (!readSome(fd, in)) return;
    }
    size_t contentLength = 0;
    const std::string head = in.substr(0, headerEnd);
    for (const char* key : {"\r\nContent-Length:", "\r\ncontent-length:"}) {
      const size_t at = head.find(key);
      if (at != std::string::npos) contentLength = std::stoul(head.substr(at + std::strlen(key)));
    }
    const size_t sp1 = head.find(' ');
    const std::string path = head.substr(sp1 + 1, head.find(' ', sp1 + 1) - sp1 - 1);
    while (path != "/putMedia" && in.size() < headerEnd + 4 + contentLength) {
      if (!readSome(fd, in)) return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back({path, head});
    }
    if (path != "/putMedia") std::this_thread::sleep_for(std::chrono::milliseconds(delayMs_.load()));
    std::string body;
    int status = 200;
    if (path == "/describeStream") {
      body = R"({"StreamInfo":{"StreamName":"element-test","StreamARN":"arn:aws:kinesisvideo:us-west-2:123456789012:)"
             R"(stream/element-test/1","Status":"ACTIVE","DataRetentionInHours":2,"Version":"1"}})";
    } else if (path == "/getDataEndpoint") {
      body = R"({"DataEndpoint":")" + (dataEndpoint_.empty() ? url() : dataEndpoint_) + R"("})";
    } else if (path == "/putMedia") {
      status = 500;
      body = R"({"message":"this stub stores nothing"})";
    } else {
      status = 404;
      body = R"({"message":"not in this stub"})";
    }
    const char* reason = status == 200 ? " OK" : status == 404 ? " Not Found" : " Internal Server Error";
    const std::string out = "HTTP/1.1 " + std::to_string(status) + reason +
                            "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
                            "\r\nConnection: close\r\n\r\n" + body;
    size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = send(fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<size_t>(n);
    }
  }

  bool readSome(int fd, std::string& into) const {
    if (!readable(fd)) return false;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    into.append(buf, static_cast<size_t>(n));
    return true;
  }

  std::string dataEndpoint_;
  int listenFd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<std::chrono::milliseconds::rep> delayMs_{0};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<StubRequest> requests_;
};

// ---------------------------------------------------------------------------------- fixture

/// One kvssink with its own bus, credentials in the environment (fake keys), an unreachable
/// endpoint and a credential-path that does not exist. harness() links a request pad to a
/// GstHarness (which sets the element to PLAYING).
class KvsSinkTest : public ::testing::Test {
 protected:
  void SetUp() override {
    env_.set("AWS_ACCESS_KEY_ID", "AKIDELEMENTTEST");
    env_.set("AWS_SECRET_ACCESS_KEY", "element-test-secret");
    sink_ = gst_element_factory_make("kvssink", nullptr);
    ASSERT_NE(sink_, nullptr);
    gst_object_ref_sink(sink_);
    bus_ = gst_bus_new();
    gst_element_set_bus(sink_, bus_);
    g_object_set(sink_, "stream-name", "element-test", "endpoint", kUnreachable, "credential-path",
                 "/nonexistent/kvssink-element-test/credential", nullptr);
  }

  void TearDown() override {
    if (h_ != nullptr) {
      mustReturnWithin(kNeverHangs, "gst_harness_teardown", [this] { gst_harness_teardown(h_); });
      h_ = nullptr;
    }
    if (sink_ != nullptr) {
      EXPECT_EQ(gst_element_set_state(sink_, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
      gst_element_set_bus(sink_, nullptr);
      gst_object_unref(sink_);
      sink_ = nullptr;
    }
    if (bus_ != nullptr) {
      gst_bus_set_flushing(bus_, TRUE);
      gst_object_unref(bus_);
      bus_ = nullptr;
    }
  }

  GstHarness* harness(const char* pad = "video_%u") {
    h_ = gst_harness_new_with_element(sink_, pad, nullptr);
    return h_;
  }

  /// Pushes the access units of the test file as byte-stream H.264, 25 frames per second,
  /// starting at `firstPts`; every push must return GST_FLOW_OK.
  void pushH264(GstHarness* h, size_t count = SIZE_MAX, GstClockTime firstPts = 0) {
    static const std::vector<AccessUnit> units = h264AccessUnits();
    ASSERT_FALSE(units.empty());
    ASSERT_TRUE(units.front().key);
    for (size_t i = 0; i < count && i < units.size(); i++) {
      GstFlowReturn r = gst_harness_push(
          h, makeBuffer(units[i].annexB, units[i].key, firstPts + static_cast<GstClockTime>(i) * kFrameDuration));
      ASSERT_EQ(r, GST_FLOW_OK) << "buffer " << i << ": " << gst_flow_get_name(r);
    }
  }

  EnvGuard env_;
  GstElement* sink_ = nullptr;
  GstBus* bus_ = nullptr;
  GstHarness* h_ = nullptr;
};

}  // namespace kvstest
