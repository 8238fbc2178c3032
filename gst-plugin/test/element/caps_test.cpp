// Caps handling on the request pads (producer-protocol.md §10.2, docs/kvssink.md "Pads"):
// avc/hvc1 need codec_data, byte-stream is converted, AAC / A-law / mu-law audio is accepted.
#include "element_support.h"

namespace kvstest {
namespace {

class Caps : public KvsSinkTest {};

GstBuffer* bufferOf(const std::vector<uint8_t>& bytes) { return gst_buffer_new_memdup(bytes.data(), bytes.size()); }

TEST_F(Caps, AvcWithoutCodecDataIsRefusedWithAnError) {
  GstHarness* h = harness();
  EXPECT_FALSE(pushCaps(h, "video/x-h264, stream-format=avc, alignment=au, width=320, height=240"));
  auto m = waitForType(bus_, GST_MESSAGE_ERROR, 5s);
  auto e = parseError(m.get());
  ASSERT_TRUE(e) << "an ERROR message";
  EXPECT_EQ(e->domain, GST_STREAM_ERROR);
  EXPECT_EQ(e->code, GST_STREAM_ERROR_FORMAT);
  EXPECT_NE(e->message.find("codec_data"), std::string::npos) << e->message;
  EXPECT_EQ(GST_MESSAGE_SRC(m.get()), GST_OBJECT(sink_));

  // Data after refused caps is not negotiated.
  const auto units = h264AccessUnits();
  EXPECT_EQ(gst_harness_push(h, makeBuffer(kvs::annexBToLengthPrefixed(units[0].annexB.data(), units[0].annexB.size()),
                                           true, 0)),
            GST_FLOW_NOT_NEGOTIATED);
}

TEST_F(Caps, HvcWithoutCodecDataIsRefusedWithAnError) {
  GstHarness* h = harness();
  EXPECT_FALSE(pushCaps(h, "video/x-h265, stream-format=hvc1, alignment=au, width=320, height=240"));
  auto e = parseError(waitForType(bus_, GST_MESSAGE_ERROR, 5s).get());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->domain, GST_STREAM_ERROR);
  EXPECT_EQ(e->code, GST_STREAM_ERROR_FORMAT);
}

TEST_F(Caps, AvcWithCodecDataIsAcceptedAndStreams) {
  const auto units = h264AccessUnits();
  ASSERT_TRUE(units.at(0).key);
  const std::vector<uint8_t> avcC =
      kvs::codecPrivateFromAnnexB(kvs::VideoCodec::H264, units[0].annexB.data(), units[0].annexB.size());
  ASSERT_FALSE(avcC.empty());
  GstBuffer* codecData = bufferOf(avcC);
  GstCaps* caps = gst_caps_new_simple("video/x-h264", "stream-format", G_TYPE_STRING, "avc", "alignment",
                                      G_TYPE_STRING, "au", "width", G_TYPE_INT, 320, "height", G_TYPE_INT, 240,
                                      "codec_data", GST_TYPE_BUFFER, codecData, nullptr);
  gst_buffer_unref(codecData);
  GstHarness* h = harness();
  EXPECT_TRUE(pushCaps(h, caps));
  for (size_t i = 0; i < units.size(); i++) {
    const auto& au = units[i];
    EXPECT_EQ(gst_harness_push(h, makeBuffer(kvs::annexBToLengthPrefixed(au.annexB.data(), au.annexB.size()), au.key,
                                             static_cast<GstClockTime>(i) * kFrameDuration)),
              GST_FLOW_OK)
        << i;
  }
  EXPECT_EQ(waitForType(bus_, GST_MESSAGE_ERROR, 200ms), nullptr);
}

TEST_F(Caps, ByteStreamH264IsAccepted) {
  GstHarness* h = harness();
  EXPECT_TRUE(pushCaps(h, kByteStreamCaps));
  pushH264(h);
  EXPECT_EQ(waitForType(bus_, GST_MESSAGE_ERROR, 200ms), nullptr);
}

TEST_F(Caps, ByteStreamH265IsAccepted) {
  GstHarness* h = harness();
  EXPECT_TRUE(pushCaps(h, "video/x-h265, stream-format=byte-stream, alignment=au, width=320, height=240"));
  EXPECT_EQ(waitForType(bus_, GST_MESSAGE_ERROR, 200ms), nullptr);
}

TEST_F(Caps, CapsOutsideTheTemplateAreRefused) {
  GstHarness* h = harness();
  EXPECT_FALSE(pushCaps(h, "video/x-vp8, width=320, height=240"));
  EXPECT_FALSE(pushCaps(h, "video/x-h264, stream-format=byte-stream, alignment=nal, width=320, height=240"));
}

TEST_F(Caps, BufferBeforeCapsIsNotNegotiated) {
  GstHarness* h = harness();
  GstSegment segment;
  gst_segment_init(&segment, GST_FORMAT_TIME);
  ASSERT_TRUE(gst_harness_push_event(h, gst_event_new_segment(&segment)));
  const auto units = h264AccessUnits();
  EXPECT_EQ(gst_harness_push(h, makeBuffer(units[0].annexB, true, 0)), GST_FLOW_NOT_NEGOTIATED);
  auto e = parseError(waitForType(bus_, GST_MESSAGE_ERROR, 5s).get());
  ASSERT_TRUE(e);
  EXPECT_EQ(e->domain, GST_CORE_ERROR);
  EXPECT_EQ(e->code, GST_CORE_ERROR_NEGOTIATION);
}

struct AudioCase {
  const char* caps;
  std::vector<uint8_t> codecData;  // empty: no codec_data field
};

class AudioCaps : public KvsSinkTest, public ::testing::WithParamInterface<AudioCase> {};

TEST_P(AudioCaps, AreAcceptedAndStream) {
  const AudioCase& c = GetParam();
  GstCaps* caps = gst_caps_from_string(c.caps);
  ASSERT_NE(caps, nullptr);
  if (!c.codecData.empty()) {
    GstBuffer* cd = bufferOf(c.codecData);
    gst_caps_set_simple(caps, "codec_data", GST_TYPE_BUFFER, cd, nullptr);
    gst_buffer_unref(cd);
  }
  GstHarness* h = harness("audio_%u");
  EXPECT_TRUE(pushCaps(h, caps));
  // Audio-only: every buffer can start a fragment; 20 ms frames of filler bytes.
  const std::vector<uint8_t> payload(160, 0xd5);
  for (int i = 0; i < 10; i++) {
    EXPECT_EQ(gst_harness_push(h, makeBuffer(payload, true, static_cast<GstClockTime>(i) * 20 * GST_MSECOND,
                                             20 * GST_MSECOND)),
              GST_FLOW_OK)
        << i;
  }
  EXPECT_EQ(waitForType(bus_, GST_MESSAGE_ERROR, 200ms), nullptr);
}

INSTANTIATE_TEST_SUITE_P(
    Element, AudioCaps,
    ::testing::Values(AudioCase{"audio/mpeg, mpegversion=4, stream-format=raw, channels=2, rate=44100", {0x12, 0x10}},
                      AudioCase{"audio/x-alaw, channels=1, rate=8000", {}},
                      AudioCase{"audio/x-mulaw, channels=2, rate=16000", {}}));

}  // namespace
}  // namespace kvstest
