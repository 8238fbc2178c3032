// The messages of bus_messages.h: names, field types and values, the optional fields, and the
// domain and code of a fatal error.
#include "bus_messages.h"

#include <gst/gst.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace {

using namespace std::chrono_literals;

struct MessageUnref {
  void operator()(GstMessage* m) const { gst_message_unref(m); }
};
using MessagePtr = std::unique_ptr<GstMessage, MessageUnref>;

/// A stand-in source object (any GstObject will do).
class BusMessages : public ::testing::Test {
 protected:
  void SetUp() override { src_ = GST_OBJECT(gst_object_ref_sink(gst_bin_new("src"))); }
  void TearDown() override { gst_object_unref(src_); }

  /// The structure of an element message from src_, checked to be one.
  const GstStructure* elementStructure(const MessagePtr& m, const char* name) {
    EXPECT_EQ(GST_MESSAGE_TYPE(m.get()), GST_MESSAGE_ELEMENT);
    EXPECT_EQ(GST_MESSAGE_SRC(m.get()), src_);
    const GstStructure* s = gst_message_get_structure(m.get());
    EXPECT_TRUE(s != nullptr && gst_structure_has_name(s, name)) << (s ? gst_structure_get_name(s) : "no structure");
    return s;
  }

  GstObject* src_ = nullptr;
};

std::string str(const GstStructure* s, const char* field) {
  const gchar* v = gst_structure_get_string(s, field);
  return v ? v : "<absent>";
}

guint64 u64(const GstStructure* s, const char* field) {
  guint64 v = 0;
  EXPECT_TRUE(gst_structure_get_uint64(s, field, &v)) << field;
  return v;
}

guint u32(const GstStructure* s, const char* field) {
  guint v = 0;
  EXPECT_TRUE(gst_structure_get_uint(s, field, &v)) << field;
  return v;
}

gint i32(const GstStructure* s, const char* field) {
  gint v = 0;
  EXPECT_TRUE(gst_structure_get_int(s, field, &v)) << field;
  return v;
}

bool boolean(const GstStructure* s, const char* field) {
  gboolean v = FALSE;
  EXPECT_TRUE(gst_structure_get_boolean(s, field, &v)) << field;
  return v != FALSE;
}

kvs::StreamError streamError() {
  kvs::StreamError e;
  e.message = "PutMedia failed: 403 AccessDeniedException";
  e.httpStatus = 403;
  e.serviceCode = "AccessDeniedException";
  e.errorId = 4001;
  e.retryable = false;
  e.fatal = true;
  return e;
}

}  // namespace

TEST_F(BusMessages, StreamReady) {
  MessagePtr m(kvssink::stream_ready_message(src_, "cam1", "arn:aws:kinesisvideo:us-west-2:1:stream/cam1/1"));
  const GstStructure* s = elementStructure(m, "kvssink-stream-ready");
  EXPECT_EQ(str(s, "stream-name"), "cam1");
  EXPECT_EQ(str(s, "stream-arn"), "arn:aws:kinesisvideo:us-west-2:1:stream/cam1/1");
  EXPECT_EQ(gst_structure_n_fields(s), 2);
}

TEST_F(BusMessages, PersistedAckCarriesItsLatency) {
  kvs::Ack a;
  a.type = kvs::AckType::Persisted;
  a.fragmentNumber = "91343852333181432392682062607743920146264772237";
  a.timecode = 1700000000123;
  MessagePtr m(kvssink::fragment_ack_message(src_, a, 250ms));
  const GstStructure* s = elementStructure(m, "kvssink-fragment-ack");
  EXPECT_EQ(str(s, "event-type"), "PERSISTED");
  EXPECT_EQ(str(s, "fragment-number"), a.fragmentNumber);
  EXPECT_EQ(u64(s, "timecode"), 1700000000123u);
  EXPECT_EQ(u64(s, "latency-ms"), 250u);
  EXPECT_FALSE(gst_structure_has_field(s, "error-id"));
}

TEST_F(BusMessages, BufferingAckHasNoLatencyAndErrorAckHasItsErrorId) {
  kvs::Ack buffering;
  buffering.type = kvs::AckType::Buffering;
  buffering.timecode = 5;
  MessagePtr m(kvssink::fragment_ack_message(src_, buffering, 250ms));
  const GstStructure* s = elementStructure(m, "kvssink-fragment-ack");
  EXPECT_EQ(str(s, "event-type"), "BUFFERING");
  EXPECT_EQ(str(s, "fragment-number"), "");
  EXPECT_FALSE(gst_structure_has_field(s, "latency-ms"));
  EXPECT_FALSE(gst_structure_has_field(s, "error-id"));

  kvs::Ack error;
  error.type = kvs::AckType::Error;
  error.errorId = 4004;
  m.reset(kvssink::fragment_ack_message(src_, error, 0ms));
  s = elementStructure(m, "kvssink-fragment-ack");
  EXPECT_EQ(str(s, "event-type"), "ERROR");
  EXPECT_EQ(u64(s, "timecode"), 0u) << "no timecode in the ack";
  EXPECT_EQ(u32(s, "error-id"), 4004u);
  EXPECT_FALSE(gst_structure_has_field(s, "latency-ms"));
}

TEST_F(BusMessages, ErrorCarriesEveryField) {
  kvs::StreamError e = streamError();
  e.fragmentTimecode = 1700000000000;
  MessagePtr m(kvssink::error_message(src_, e));
  const GstStructure* s = elementStructure(m, "kvssink-error");
  EXPECT_EQ(str(s, "message"), e.message);
  EXPECT_EQ(str(s, "service-code"), "AccessDeniedException");
  EXPECT_EQ(i32(s, "http-status"), 403);
  EXPECT_EQ(u32(s, "error-id"), 4001u);
  EXPECT_FALSE(boolean(s, "retryable"));
  EXPECT_TRUE(boolean(s, "fatal"));
  EXPECT_EQ(u64(s, "fragment-timecode"), 1700000000000u);
}

TEST_F(BusMessages, ErrorWithoutFragmentHasNoFragmentTimecode) {
  kvs::StreamError e;
  e.message = "control plane unreachable";
  e.retryable = true;
  MessagePtr m(kvssink::error_message(src_, e));
  const GstStructure* s = elementStructure(m, "kvssink-error");
  EXPECT_TRUE(boolean(s, "retryable"));
  EXPECT_FALSE(boolean(s, "fatal"));
  EXPECT_EQ(i32(s, "http-status"), 0);
  EXPECT_FALSE(gst_structure_has_field(s, "fragment-timecode"));
}

TEST_F(BusMessages, FatalErrorIsAnErrorMessageWithDetails) {
  kvs::StreamError e = streamError();
  e.fragmentTimecode = 42;
  MessagePtr m(kvssink::fatal_error_message(src_, e));
  ASSERT_EQ(GST_MESSAGE_TYPE(m.get()), GST_MESSAGE_ERROR);
  EXPECT_EQ(GST_MESSAGE_SRC(m.get()), src_);
  GError* err = nullptr;
  gchar* debug = nullptr;
  gst_message_parse_error(m.get(), &err, &debug);
  EXPECT_EQ(std::string(err->message), e.message);
  EXPECT_EQ(std::string(debug), e.message);
  g_error_free(err);
  g_free(debug);
  const GstStructure* d = nullptr;
  gst_message_parse_error_details(m.get(), &d);
  ASSERT_NE(d, nullptr);
  EXPECT_TRUE(gst_structure_has_name(d, "kvssink-error-details"));
  EXPECT_EQ(i32(d, "http-status"), 403);
  EXPECT_EQ(str(d, "service-code"), "AccessDeniedException");
  EXPECT_EQ(u32(d, "error-id"), 4001u);
  EXPECT_FALSE(boolean(d, "retryable"));
  EXPECT_EQ(u64(d, "fragment-timecode"), 42u);

  e.fragmentTimecode.reset();
  m.reset(kvssink::fatal_error_message(src_, e));
  gst_message_parse_error_details(m.get(), &d);
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(gst_structure_has_field(d, "fragment-timecode"));
}

TEST_F(BusMessages, FatalErrorDomainAndCode) {
  struct Case {
    long httpStatus;
    bool tls;
    GQuark domain;
    gint code;
  };
  for (const Case& c : {Case{403, true, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_WRITE},
                        Case{0, true, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_WRITE},
                        Case{401, false, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED},
                        Case{403, false, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED},
                        Case{404, false, GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND},
                        Case{400, false, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED},
                        Case{500, false, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED},
                        Case{0, false, GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED}}) {
    kvs::StreamError e = streamError();
    e.httpStatus = c.httpStatus;
    e.tls = c.tls;
    MessagePtr m(kvssink::fatal_error_message(src_, e));
    GError* err = nullptr;
    gst_message_parse_error(m.get(), &err, nullptr);
    EXPECT_EQ(err->domain, c.domain) << "HTTP " << c.httpStatus << ", tls " << c.tls;
    EXPECT_EQ(err->code, c.code) << "HTTP " << c.httpStatus << ", tls " << c.tls;
    g_error_free(err);
  }
}

TEST_F(BusMessages, Connection) {
  kvs::ConnectionEvent c;
  c.id = 7;
  c.state = "dropped";
  c.reason = "connection reset";
  c.httpStatus = 502;
  MessagePtr m(kvssink::connection_message(src_, c));
  const GstStructure* s = elementStructure(m, "kvssink-connection");
  EXPECT_EQ(u64(s, "connection-id"), 7u);
  EXPECT_EQ(str(s, "state"), "dropped");
  EXPECT_EQ(str(s, "reason"), "connection reset");
  EXPECT_EQ(i32(s, "http-status"), 502);
}

TEST_F(BusMessages, Dropped) {
  kvs::FragmentInfo f;
  f.timecode = 1700000002000;
  f.frames = 50;
  f.bytes = 123456;
  MessagePtr m(kvssink::dropped_message(src_, f));
  const GstStructure* s = elementStructure(m, "kvssink-dropped");
  EXPECT_EQ(u64(s, "fragment-timecode"), 1700000002000u);
  EXPECT_EQ(u32(s, "frames"), 50u);
  EXPECT_EQ(u64(s, "bytes"), 123456u);
  EXPECT_EQ(gst_structure_n_fields(s), 3);
}

TEST_F(BusMessages, LatencyPressure) {
  MessagePtr m(kvssink::latency_pressure_message(src_, std::chrono::milliseconds(61500), std::chrono::seconds(60)));
  const GstStructure* s = elementStructure(m, "kvssink-latency-pressure");
  EXPECT_EQ(u64(s, "buffered-duration-ms"), 61500u);
  EXPECT_EQ(u64(s, "max-latency-ms"), 60000u);
  EXPECT_EQ(gst_structure_n_fields(s), 2);
}

TEST_F(BusMessages, SpoolDropped) {
  MessagePtr m(kvssink::spool_dropped_message(src_, 1700000002000u, 98765u));
  const GstStructure* s = elementStructure(m, "kvssink-spool-dropped");
  EXPECT_EQ(u64(s, "fragment-timecode"), 1700000002000u);
  EXPECT_EQ(u64(s, "bytes"), 98765u);
  EXPECT_EQ(gst_structure_n_fields(s), 2);
}

TEST_F(BusMessages, Stats) {
  kvs::UploadStats u;
  u.bytesSent = 1000;
  u.fragmentsPersisted = 3;
  u.fragmentsReceived = 4;
  u.fragmentsDropped = 1;
  u.connections = 2;
  u.bufferedBytes = 512;
  u.bufferedDuration = 1500ms;
  u.bitrateBps = 8000.5;
  u.lastAckLatency = 120ms;
  MessagePtr m(kvssink::stats_message(src_, u, 99));
  const GstStructure* s = elementStructure(m, "kvssink-stats");
  EXPECT_EQ(u64(s, "bytes-sent"), 1000u);
  EXPECT_EQ(u64(s, "frames-sent"), 99u);
  EXPECT_EQ(u64(s, "fragments-persisted"), 3u);
  EXPECT_EQ(u64(s, "fragments-received"), 4u);
  EXPECT_EQ(u64(s, "fragments-dropped"), 1u);
  EXPECT_EQ(u64(s, "buffered-bytes"), 512u);
  EXPECT_EQ(u64(s, "buffered-duration-ms"), 1500u);
  EXPECT_EQ(u64(s, "last-ack-latency-ms"), 120u);
  EXPECT_EQ(u64(s, "connections"), 2u);
  gdouble bitrate = 0;
  EXPECT_TRUE(gst_structure_get_double(s, "bitrate-bps", &bitrate));
  EXPECT_DOUBLE_EQ(bitrate, 8000.5);
  EXPECT_EQ(gst_structure_n_fields(s), 10);
}
