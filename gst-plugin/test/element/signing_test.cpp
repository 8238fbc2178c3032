// Credentials at work (docs/kvssink.md "Properties"): the property keys sign the requests, keys
// changed while streaming sign the next request without interrupting the upload, and no secret
// ever reaches the debug log.
#include "element_support.h"

namespace kvstest {
namespace {

/// The access key id of a request's SigV4 Authorization header ("" when absent).
std::string credentialOf(const StubRequest& r) {
  const std::string marker = "Credential=";
  const size_t at = r.head.find(marker);
  if (at == std::string::npos) return "";
  const size_t start = at + marker.size();
  return r.head.substr(start, r.head.find('/', start) - start);
}

/// Waits until the stub has received a request on `path` signed with `accessKey`.
bool waitForRequest(const StubControlPlane& stub, const std::string& path, const std::string& accessKey,
                    std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    for (const auto& r : stub.requests()) {
      if (r.path == path && credentialOf(r) == accessKey) return true;
    }
    std::this_thread::sleep_for(20ms);
  }
  return false;
}

/// Everything the element logs to its debug category, at every level, while alive.
class LogCapture {
 public:
  LogCapture() {
    GSList* all = gst_debug_get_all_categories();
    for (GSList* l = all; l != nullptr; l = l->next) {
      auto* c = static_cast<GstDebugCategory*>(l->data);
      if (g_str_equal(gst_debug_category_get_name(c), "kvssink")) category_ = c;
    }
    g_slist_free(all);
    if (category_ == nullptr) return;
    wasActive_ = gst_debug_is_active();
    threshold_ = gst_debug_category_get_threshold(category_);
    gst_debug_remove_log_function(gst_debug_log_default);  // no copy on stderr
    gst_debug_add_log_function(&LogCapture::log, this, nullptr);
    gst_debug_set_active(TRUE);
    gst_debug_category_set_threshold(category_, GST_LEVEL_MEMDUMP);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  ~LogCapture() {
    if (category_ == nullptr) return;
    gst_debug_category_set_threshold(category_, threshold_);
    gst_debug_set_active(wasActive_);
    gst_debug_remove_log_function_by_data(this);
    gst_debug_add_log_function(gst_debug_log_default, nullptr, nullptr);
  }
  bool ok() const { return category_ != nullptr; }
  std::string text() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return text_;
  }

 private:
  static void log(GstDebugCategory* category, GstDebugLevel, const gchar*, const gchar*, gint, GObject*,
                  GstDebugMessage* message, gpointer data) {
    auto* self = static_cast<LogCapture*>(data);
    if (category != self->category_) return;
    const gchar* text = gst_debug_message_get(message);
    std::lock_guard<std::mutex> lock(self->mutex_);
    self->text_ += text ? text : "";
    self->text_ += '\n';
  }

  GstDebugCategory* category_ = nullptr;
  gboolean wasActive_ = FALSE;
  GstDebugLevel threshold_ = GST_LEVEL_NONE;
  mutable std::mutex mutex_;
  std::string text_;
};

class Signing : public KvsSinkTest {
 protected:
  void SetUp() override {
    KvsSinkTest::SetUp();
    g_object_set(sink_, "endpoint", stub_.url().c_str(), "access-key", "AKIDPROPERTYONE", "secret-key",
                 "SECRETPROPERTYONE", "session-token", "TOKENPROPERTYONE", nullptr);
  }
  GstHarness* streaming() {
    GstHarness* h = harness();
    EXPECT_TRUE(pushCaps(h, kByteStreamCaps));
    mustReturnWithin(kNeverHangs, "pushing 60 buffers", [&] { pushH264(h); });
    return h;
  }

  StubControlPlane stub_;  // also the data endpoint: records PutMedia requests, answers 500
};

TEST_F(Signing, PropertyKeysWinOverTheEnvironment) {
  streaming();
  EXPECT_TRUE(waitForRequest(stub_, "/describeStream", "AKIDPROPERTYONE", kNeverHangs));
  EXPECT_TRUE(waitForRequest(stub_, "/putMedia", "AKIDPROPERTYONE", kNeverHangs));
  for (const auto& r : stub_.requests()) {
    EXPECT_EQ(credentialOf(r), "AKIDPROPERTYONE") << r.path;
    EXPECT_NE(r.head.find("TOKENPROPERTYONE"), std::string::npos) << "session token sent on " << r.path;
  }
}

TEST_F(Signing, KeysChangedWhileStreamingSignTheNextRequest) {
  GstHarness* h = streaming();
  ASSERT_TRUE(waitForRequest(stub_, "/putMedia", "AKIDPROPERTYONE", kNeverHangs));
  g_object_set(sink_, "access-key", "AKIDPROPERTYTWO", "secret-key", "SECRETPROPERTYTWO", "session-token",
               "TOKENPROPERTYTWO", nullptr);
  // The PutMedia connection is retried with backoff (1-2 s, then 2-4 s): a new signature.
  EXPECT_TRUE(waitForRequest(stub_, "/putMedia", "AKIDPROPERTYTWO", kNeverHangs));
  EXPECT_EQ(waitForType(bus_, GST_MESSAGE_ERROR, 10ms), nullptr) << "the upload goes on";
  mustReturnWithin(kNeverHangs, "pushing more buffers", [&] { pushH264(h, SIZE_MAX, 60 * kFrameDuration); });
}

TEST_F(Signing, SecretsNeverReachTheDebugLog) {
  LogCapture capture;
  ASSERT_TRUE(capture.ok()) << "no kvssink debug category";
  {
    GstHarness* h = streaming();
    ASSERT_TRUE(waitForRequest(stub_, "/putMedia", "AKIDPROPERTYONE", kNeverHangs));
    g_object_set(sink_, "access-key", "AKIDPROPERTYTWO", "secret-key", "SECRETPROPERTYTWO", "session-token",
                 "TOKENPROPERTYTWO", nullptr);
    ASSERT_TRUE(waitForRequest(stub_, "/putMedia", "AKIDPROPERTYTWO", kNeverHangs));
    g_object_set(sink_, "stop-stream-timeout", 1u, nullptr);
    mustReturnWithin(kNeverHangs, "pushing EOS", [&] { gst_harness_push_event(h, gst_event_new_eos()); });
    ASSERT_EQ(gst_element_set_state(sink_, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  }
  const std::string log = capture.text();
  EXPECT_NE(log.find("credentials"), std::string::npos) << "the log was captured: " << log.substr(0, 2000);
  for (const char* secret : {"SECRETPROPERTYONE", "TOKENPROPERTYONE", "SECRETPROPERTYTWO", "TOKENPROPERTYTWO"}) {
    EXPECT_EQ(log.find(secret), std::string::npos) << secret << " logged";
  }
}

}  // namespace
}  // namespace kvstest
