// kvssink's factory metadata, pad templates (producer-protocol.md §10.2, docs/kvssink.md) and
// request pads: at most one video and one audio pad.
#include "element_support.h"

namespace kvstest {
namespace {

struct FactoryUnref {
  void operator()(GstElementFactory* f) const { gst_object_unref(f); }
};

TEST(Metadata, FactoryDescribesTheElement) {
  std::unique_ptr<GstElementFactory, FactoryUnref> factory(gst_element_factory_find("kvssink"));
  ASSERT_NE(factory, nullptr);
  GstElementFactory* f = factory.get();
  EXPECT_STREQ(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_LONGNAME), "KVS Sink");
  EXPECT_STREQ(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS), "Sink/Video/Network");
  EXPECT_STREQ(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_DOC_URI), "docs/kvssink.md");
  EXPECT_NE(gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_AUTHOR), nullptr);
  EXPECT_EQ(gst_plugin_feature_get_rank(GST_PLUGIN_FEATURE(f)), static_cast<guint>(GST_RANK_PRIMARY + 10));
  EXPECT_EQ(gst_element_factory_get_element_type(f), GST_TYPE_KVS_SINK);

  // Every documented bus message is named in the description and detailed in bus-messages.
  const std::string description = gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_DESCRIPTION);
  const gchar* busMessages = gst_element_factory_get_metadata(f, "bus-messages");
  ASSERT_NE(busMessages, nullptr);
  for (const char* name : {"kvssink-stream-ready", "kvssink-fragment-ack", "kvssink-error", "kvssink-connection",
                           "kvssink-dropped", "kvssink-stats"}) {
    EXPECT_NE(description.find(name), std::string::npos) << name;
    EXPECT_NE(std::string(busMessages).find(std::string(name) + " "), std::string::npos) << name;
  }
  EXPECT_NE(std::string(busMessages).find("kvssink-error-details"), std::string::npos);
}

TEST(Metadata, PadTemplatesAreOneVideoAndOneAudioRequestSinkPad) {
  GstElementClass* klass = GST_ELEMENT_CLASS(g_type_class_ref(GST_TYPE_KVS_SINK));
  GList* templates = gst_element_class_get_pad_template_list(klass);
  EXPECT_EQ(g_list_length(templates), 2u);
  for (const char* name : {"video_%u", "audio_%u"}) {
    GstPadTemplate* t = gst_element_class_get_pad_template(klass, name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(GST_PAD_TEMPLATE_DIRECTION(t), GST_PAD_SINK) << name;
    EXPECT_EQ(GST_PAD_TEMPLATE_PRESENCE(t), GST_PAD_REQUEST) << name;
  }
  g_type_class_unref(klass);
}

struct CapsCase {
  const char* pad;
  const char* caps;
  bool accepted;
};

class TemplateCaps : public ::testing::TestWithParam<CapsCase> {};

TEST_P(TemplateCaps, MatchTheDocumentedFormats) {
  const CapsCase& c = GetParam();
  GstElementClass* klass = GST_ELEMENT_CLASS(g_type_class_ref(GST_TYPE_KVS_SINK));
  GstCaps* templ = gst_pad_template_get_caps(gst_element_class_get_pad_template(klass, c.pad));
  GstCaps* caps = gst_caps_from_string(c.caps);
  ASSERT_NE(caps, nullptr) << c.caps;
  EXPECT_EQ(gst_caps_is_subset(caps, templ) != FALSE, c.accepted) << c.pad << " " << c.caps;
  gst_caps_unref(caps);
  gst_caps_unref(templ);
  g_type_class_unref(klass);
}

INSTANTIATE_TEST_SUITE_P(
    Element, TemplateCaps,
    ::testing::Values(
        CapsCase{"video_%u", "video/x-h264, stream-format=avc, alignment=au, width=320, height=240", true},
        CapsCase{"video_%u", "video/x-h264, stream-format=avc3, alignment=au, width=320, height=240", true},
        CapsCase{"video_%u", "video/x-h264, stream-format=byte-stream, alignment=au, width=320, height=240", true},
        CapsCase{"video_%u", "video/x-h265, stream-format=hvc1, alignment=au, width=320, height=240", true},
        CapsCase{"video_%u", "video/x-h265, stream-format=hev1, alignment=au, width=320, height=240", true},
        CapsCase{"video_%u", "video/x-h265, stream-format=byte-stream, alignment=au, width=320, height=240", true},
        CapsCase{"video_%u", "video/x-h264, stream-format=byte-stream, alignment=nal, width=320, height=240", false},
        CapsCase{"video_%u", "video/x-h264, stream-format=avc, alignment=au, width=8, height=240", false},
        CapsCase{"video_%u", "video/x-vp8, width=320, height=240", false},
        CapsCase{"video_%u", "audio/x-alaw, channels=1, rate=8000", false},
        CapsCase{"audio_%u", "audio/mpeg, mpegversion=4, stream-format=raw, channels=2, rate=44100", true},
        CapsCase{"audio_%u", "audio/mpeg, mpegversion=2, stream-format=raw, channels=1, rate=16000", true},
        CapsCase{"audio_%u", "audio/mpeg, mpegversion=4, stream-format=adts, channels=2, rate=44100", false},
        CapsCase{"audio_%u", "audio/x-alaw, channels=1, rate=8000", true},
        CapsCase{"audio_%u", "audio/x-mulaw, channels=2, rate=48000", true},
        CapsCase{"audio_%u", "audio/x-mulaw, channels=3, rate=8000", false},
        CapsCase{"audio_%u", "audio/x-alaw, channels=1, rate=4000", false},
        CapsCase{"audio_%u", "video/x-h264, stream-format=avc, alignment=au, width=320, height=240", false}));

class RequestPads : public KvsSinkTest {};

TEST_F(RequestPads, OneVideoAndOneAudioPad) {
  GstPad* video = gst_element_request_pad_simple(sink_, "video_%u");
  ASSERT_NE(video, nullptr);
  EXPECT_STREQ(GST_PAD_NAME(video), "video_0");
  EXPECT_EQ(GST_PAD_DIRECTION(video), GST_PAD_SINK);
  EXPECT_EQ(gst_element_request_pad_simple(sink_, "video_%u"), nullptr) << "a second video pad";

  GstPad* audio = gst_element_request_pad_simple(sink_, "audio_%u");
  ASSERT_NE(audio, nullptr);
  EXPECT_STREQ(GST_PAD_NAME(audio), "audio_0");
  EXPECT_EQ(gst_element_request_pad_simple(sink_, "audio_%u"), nullptr) << "a second audio pad";
  EXPECT_EQ(sink_->numsinkpads, 2);

  // Releasing a pad makes room for a new one.
  gst_element_release_request_pad(sink_, video);
  gst_object_unref(video);
  EXPECT_EQ(sink_->numsinkpads, 1);
  video = gst_element_request_pad_simple(sink_, "video_%u");
  ASSERT_NE(video, nullptr);
  EXPECT_STREQ(GST_PAD_NAME(video), "video_0");

  gst_element_release_request_pad(sink_, video);
  gst_element_release_request_pad(sink_, audio);
  gst_object_unref(video);
  gst_object_unref(audio);
  EXPECT_EQ(sink_->numsinkpads, 0);
}

TEST_F(RequestPads, SecondVideoPadRefusedWhileStreaming) {
  GstHarness* h = harness("video_%u");
  ASSERT_NE(h, nullptr);
  EXPECT_EQ(gst_element_request_pad_simple(sink_, "video_%u"), nullptr);
}

TEST_F(RequestPads, NoPadOnceTheUploadHasStarted) {
  GstHarness* h = harness("video_%u");
  ASSERT_TRUE(pushCaps(h, kByteStreamCaps));
  pushH264(h, 1);  // the key frame starts the upload
  EXPECT_EQ(gst_element_request_pad_simple(sink_, "audio_%u"), nullptr);
}

}  // namespace
}  // namespace kvstest
