// The streaming thread never waits for the network (docs/kvssink.md "Behaviour"): with an
// unreachable service, buffers are accepted, progress is reported as element messages, and
// stopping or EOS (bounded by stop-stream-timeout) never hangs.
#include "element_support.h"

#include <algorithm>
#include <thread>

namespace kvstest {
namespace {

class Upload : public KvsSinkTest {
 protected:
  /// A harness on the video pad with byte-stream caps and every access unit of the test file
  /// pushed; the pushes themselves must not wait for the network.
  GstHarness* streaming() {
    GstHarness* h = harness();
    EXPECT_TRUE(pushCaps(h, kByteStreamCaps));
    mustReturnWithin(kNeverHangs, "pushing 60 buffers", [&] { pushH264(h); });
    return h;
  }
};

TEST_F(Upload, UnreachableControlPlaneBuffersAreAcceptedAndErrorsPosted) {
  GstHarness* h = streaming();

  auto m = waitForElementMessage(bus_, "kvssink-error", kNeverHangs);
  ASSERT_NE(m, nullptr) << "a kvssink-error element message";
  EXPECT_EQ(GST_MESSAGE_SRC(m.get()), GST_OBJECT(sink_));
  const GstStructure* s = gst_message_get_structure(m.get());
  EXPECT_NE(fieldString(s, "message").find("control plane"), std::string::npos) << fieldString(s, "message");
  gboolean retryable = FALSE;
  EXPECT_TRUE(gst_structure_get_boolean(s, "retryable", &retryable));
  EXPECT_TRUE(retryable) << "the first failures are retried";
  gint status = -1;
  EXPECT_TRUE(gst_structure_get_int(s, "http-status", &status));
  EXPECT_EQ(status, 0) << "no HTTP response";
  guint errorId = 1;
  EXPECT_TRUE(gst_structure_get_uint(s, "error-id", &errorId));
  EXPECT_EQ(errorId, 0u);
  EXPECT_TRUE(gst_structure_has_field_typed(s, "service-code", G_TYPE_STRING));

  // Still streaming while the uploader retries.
  mustReturnWithin(kNeverHangs, "pushing more buffers", [&] { pushH264(h, SIZE_MAX, 60 * kFrameDuration); });
}

TEST_F(Upload, UnreachableDataEndpointPostsConnectionMessages) {
  StubControlPlane cp(kUnreachable);
  g_object_set(sink_, "endpoint", cp.url().c_str(), nullptr);
  streaming();

  auto ready = waitForElementMessage(bus_, "kvssink-stream-ready", kNeverHangs);
  ASSERT_NE(ready, nullptr);
  EXPECT_EQ(fieldString(gst_message_get_structure(ready.get()), "stream-name"), "element-test");
  EXPECT_EQ(fieldString(gst_message_get_structure(ready.get()), "stream-arn").rfind("arn:aws:kinesisvideo:", 0), 0u);

  auto connecting = waitForElementMessage(bus_, "kvssink-connection", kNeverHangs, [](const GstStructure* s) {
    return fieldString(s, "state") == "connecting";
  });
  ASSERT_NE(connecting, nullptr);
  guint64 id = 0;
  EXPECT_TRUE(gst_structure_get_uint64(gst_message_get_structure(connecting.get()), "connection-id", &id));
  EXPECT_GT(id, 0u);

  auto dropped = waitForElementMessage(bus_, "kvssink-connection", kNeverHangs, [](const GstStructure* s) {
    return fieldString(s, "state") == "dropped";
  });
  ASSERT_NE(dropped, nullptr);
  const GstStructure* s = gst_message_get_structure(dropped.get());
  guint64 droppedId = 0;
  EXPECT_TRUE(gst_structure_get_uint64(s, "connection-id", &droppedId));
  EXPECT_EQ(droppedId, id);
  EXPECT_NE(fieldString(s, "reason"), "") << "why it was dropped";
  gint status = -1;
  EXPECT_TRUE(gst_structure_get_int(s, "http-status", &status));
  EXPECT_EQ(status, 0);

  const auto paths = cp.paths();
  ASSERT_GE(paths.size(), 2u);
  EXPECT_EQ(paths[0], "/describeStream");
  EXPECT_EQ(paths[1], "/getDataEndpoint");
}

TEST_F(Upload, DataEndpointIsAskedAgainAfterThreeFailedConnections) {
  StubControlPlane cp(kUnreachable);
  g_object_set(sink_, "endpoint", cp.url().c_str(), nullptr);
  streaming();
  // Three dropped connections (backoff 1 + 2 + 4 s), then GetDataEndpoint before the fourth.
  for (int i = 0; i < 3; i++) {
    ASSERT_NE(waitForElementMessage(bus_, "kvssink-connection", kNeverHangs,
                                    [](const GstStructure* s) { return fieldString(s, "state") == "dropped"; }),
              nullptr)
        << "dropped connection " << i + 1;
  }
  const auto refreshed = [&] {
    const auto paths = cp.paths();
    return std::count(paths.begin(), paths.end(), "/getDataEndpoint") >= 2;
  };
  for (auto until = Clock::now() + kNeverHangs; !refreshed() && Clock::now() < until;) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(refreshed()) << "a second GetDataEndpoint";
  const auto paths = cp.paths();
  EXPECT_EQ(std::count(paths.begin(), paths.end(), "/describeStream"), 1) << "only the endpoint is asked again";
}

TEST_F(Upload, SettingNullWhileTheControlPlaneIsRetriedReturnsPromptly) {
  streaming();
  ASSERT_NE(waitForElementMessage(bus_, "kvssink-error", kNeverHangs), nullptr);  // now backing off
  GstStateChangeReturn r = GST_STATE_CHANGE_FAILURE;
  mustReturnWithin(kNeverHangs, "set_state(NULL)", [&] { r = gst_element_set_state(sink_, GST_STATE_NULL); });
  EXPECT_EQ(r, GST_STATE_CHANGE_SUCCESS);
}

TEST_F(Upload, SettingNullWhilePutMediaIsRetriedReturnsPromptly) {
  StubControlPlane cp(kUnreachable);
  g_object_set(sink_, "endpoint", cp.url().c_str(), nullptr);
  streaming();
  ASSERT_NE(waitForElementMessage(bus_, "kvssink-connection", kNeverHangs,
                                  [](const GstStructure* s) { return fieldString(s, "state") == "dropped"; }),
            nullptr);
  GstStateChangeReturn r = GST_STATE_CHANGE_FAILURE;
  mustReturnWithin(kNeverHangs, "set_state(NULL)", [&] { r = gst_element_set_state(sink_, GST_STATE_NULL); });
  EXPECT_EQ(r, GST_STATE_CHANGE_SUCCESS);
}

TEST_F(Upload, EosWithUnreachableControlPlaneIsPostedWithinStopStreamTimeout) {
  g_object_set(sink_, "stop-stream-timeout", 1u, nullptr);
  GstHarness* h = streaming();
  ASSERT_NE(waitForElementMessage(bus_, "kvssink-error", kNeverHangs), nullptr);
  mustReturnWithin(kNeverHangs, "pushing EOS", [&] { EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos())); });
  auto eos = waitForType(bus_, GST_MESSAGE_EOS, kNeverHangs);
  ASSERT_NE(eos, nullptr) << "EOS on the bus";
  EXPECT_EQ(GST_MESSAGE_SRC(eos.get()), GST_OBJECT(sink_));
}

TEST_F(Upload, EosWithUnreachableDataEndpointIsPostedWithinStopStreamTimeout) {
  StubControlPlane cp(kUnreachable);
  g_object_set(sink_, "endpoint", cp.url().c_str(), "stop-stream-timeout", 1u, nullptr);
  GstHarness* h = streaming();
  ASSERT_NE(waitForElementMessage(bus_, "kvssink-connection", kNeverHangs), nullptr);
  mustReturnWithin(kNeverHangs, "pushing EOS", [&] { EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos())); });
  auto eos = waitForType(bus_, GST_MESSAGE_EOS, kNeverHangs);
  ASSERT_NE(eos, nullptr) << "EOS on the bus";
  // Not persisted: no error for that, the warning goes to the debug log.
  EXPECT_EQ(waitForType(bus_, GST_MESSAGE_ERROR, 100ms), nullptr);
}

TEST_F(Upload, EosDuringASlowStartUpStillUploads) {
  StubControlPlane cp;  // PutMedia on the stub itself: recorded, answered with HTTP 500
  cp.setDelay(300ms);   // DescribeStream and GetDataEndpoint are in flight when EOS comes
  g_object_set(sink_, "endpoint", cp.url().c_str(), "stop-stream-timeout", 3u, nullptr);
  GstHarness* h = streaming();
  mustReturnWithin(kNeverHangs, "pushing EOS", [&] { EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos())); });
  EXPECT_NE(waitForType(bus_, GST_MESSAGE_EOS, kNeverHangs), nullptr);
  const auto paths = cp.paths();
  EXPECT_NE(std::find(paths.begin(), paths.end(), "/putMedia"), paths.end())
      << "the start-up in progress at EOS completed and the data was sent";
}

TEST_F(Upload, EosBeforeAnyDataIsPostedAtOnce) {
  GstHarness* h = harness();
  ASSERT_TRUE(pushCaps(h, kByteStreamCaps));
  mustReturnWithin(kNeverHangs, "pushing EOS", [&] { EXPECT_TRUE(gst_harness_push_event(h, gst_event_new_eos())); });
  EXPECT_NE(waitForType(bus_, GST_MESSAGE_EOS, kNeverHangs), nullptr);
}

/// EOS waits (up to stop-stream-timeout) for the last fragment to be persisted; an application
/// that gives up and sets the element to NULL meanwhile must get it back at once, on every
/// thread (EOS used to be waited for inside the uploader's stop(), which the state change
/// called a second time, concurrently: a hang or std::terminate).
class NullDuringEos : public Upload, public ::testing::WithParamInterface<bool> {};

TEST_P(NullDuringEos, ReturnsPromptlyOnBothThreads) {
  const bool controlPlaneReachable = GetParam();
  std::unique_ptr<StubControlPlane> cp;
  if (controlPlaneReachable) {
    cp = std::make_unique<StubControlPlane>(kUnreachable);
    g_object_set(sink_, "endpoint", cp->url().c_str(), nullptr);
  }
  g_object_set(sink_, "stop-stream-timeout", 600u, nullptr);
  GstHarness* h = streaming();
  ASSERT_NE(waitForElementMessage(bus_, controlPlaneReachable ? "kvssink-connection" : "kvssink-error", kNeverHangs),
            nullptr);

  std::promise<void> eosReturned;
  std::thread eos([&] {
    gst_harness_push_event(h, gst_event_new_eos());
    eosReturned.set_value();
  });
  // Give the EOS a moment to reach its wait (the test holds without it, just less sharply).
  EXPECT_EQ(eosReturned.get_future().wait_for(300ms), std::future_status::timeout) << "EOS waits for PERSISTED";
  GstStateChangeReturn r = GST_STATE_CHANGE_FAILURE;
  mustReturnWithin(kNeverHangs, "set_state(NULL) during EOS", [&] { r = gst_element_set_state(sink_, GST_STATE_NULL); });
  EXPECT_EQ(r, GST_STATE_CHANGE_SUCCESS);
  mustReturnWithin(kNeverHangs, "the EOS push", [&] { eos.join(); });
}

INSTANTIATE_TEST_SUITE_P(Element, NullDuringEos, ::testing::Values(false, true),
                         [](const ::testing::TestParamInfo<bool>& i) {
                           return i.param ? "WhilePutMediaRetries" : "WhileControlPlaneRetries";
                         });

}  // namespace
}  // namespace kvstest
