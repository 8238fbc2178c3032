// State cycles: a kvssink with a linked request pad goes NULL -> READY -> PAUSED -> NULL a hundred
// times, starting its uploader each time; nothing may leak (LeakSanitizer checks memory at exit
// in the ASan build; threads and file descriptors are counted here).
#include "element_support.h"

#include <dirent.h>

namespace kvstest {
namespace {

size_t countEntries(const char* dir) {
  size_t n = 0;
  if (DIR* d = opendir(dir)) {
    while (readdir(d) != nullptr) n++;
    closedir(d);
  }
  return n;
}

class Lifecycle : public KvsSinkTest {
 protected:
  /// One NULL -> READY -> PAUSED -> NULL cycle with data pushed in PAUSED.
  void cycle(GstHarness* h, bool withData) {
    ASSERT_EQ(gst_element_set_state(sink_, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
    ASSERT_EQ(gst_element_set_state(sink_, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS);
    if (withData) {
      // The sink pad lost its sticky events when it was deactivated: they are sent again, as
      // an upstream element restarting would.
      ASSERT_TRUE(pushCaps(h, kByteStreamCaps));
      pushH264(h, 3);  // a key frame starts the uploader
    }
    mustReturnWithin(kNeverHangs, "set_state(NULL)",
                     [&] { ASSERT_EQ(gst_element_set_state(sink_, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS); });
    // Messages keep the element alive; drop them as an application would.
    gst_bus_set_flushing(bus_, TRUE);
    gst_bus_set_flushing(bus_, FALSE);
  }
};

TEST_F(Lifecycle, HundredStateCyclesWithAPadDoNotLeak) {
  GstHarness* h = harness();
  ASSERT_EQ(gst_element_set_state(sink_, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
  cycle(h, true);  // the first cycle may create lazily started library threads
  ASSERT_FALSE(HasFatalFailure());
  const size_t threads = countEntries("/proc/self/task");
  const size_t fds = countEntries("/proc/self/fd");
  for (int i = 0; i < 100; i++) {
    SCOPED_TRACE(i);
    cycle(h, i % 2 == 0);
    if (HasFatalFailure()) return;
  }
  EXPECT_EQ(countEntries("/proc/self/task"), threads) << "threads left behind";
  EXPECT_EQ(countEntries("/proc/self/fd"), fds) << "file descriptors left open";
  EXPECT_EQ(GST_OBJECT_REFCOUNT_VALUE(sink_), 2) << "the fixture's and the harness's references";
}

TEST_F(Lifecycle, ElementsWithoutPadsComeAndGo) {
  for (int i = 0; i < 100; i++) {
    GstElement* e = gst_element_factory_make("kvssink", nullptr);
    ASSERT_NE(e, nullptr);
    gst_object_ref_sink(e);
    GstPad* video = gst_element_request_pad_simple(e, "video_%u");
    GstPad* audio = gst_element_request_pad_simple(e, "audio_%u");
    ASSERT_EQ(gst_element_set_state(e, GST_STATE_PAUSED), GST_STATE_CHANGE_SUCCESS);
    ASSERT_EQ(gst_element_set_state(e, GST_STATE_NULL), GST_STATE_CHANGE_SUCCESS);
    if (i % 2 == 0) gst_element_release_request_pad(e, video);
    gst_object_unref(video);
    gst_object_unref(audio);
    EXPECT_EQ(GST_OBJECT_REFCOUNT_VALUE(e), 1);
    gst_object_unref(e);
  }
}

}  // namespace
}  // namespace kvstest
