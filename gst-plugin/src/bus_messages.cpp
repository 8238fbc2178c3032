#include "bus_messages.h"

namespace kvssink {

GstMessage* stream_ready_message(GstObject* src, const std::string& streamName, const std::string& streamArn) {
  return gst_message_new_element(src, gst_structure_new("kvssink-stream-ready", "stream-name", G_TYPE_STRING,
                                                streamName.c_str(), "stream-arn", G_TYPE_STRING, streamArn.c_str(),
                                                nullptr));
}

GstMessage* fragment_ack_message(GstObject* src, const kvs::Ack& ack, std::chrono::milliseconds latency) {
  GstStructure* s = gst_structure_new("kvssink-fragment-ack", "event-type", G_TYPE_STRING, kvs::ackTypeName(ack.type),
                                      "fragment-number", G_TYPE_STRING, ack.fragmentNumber.c_str(), "timecode",
                                      G_TYPE_UINT64, ack.timecode.value_or(0), nullptr);
  if (ack.type == kvs::AckType::Persisted) {
    gst_structure_set(s, "latency-ms", G_TYPE_UINT64, static_cast<guint64>(latency.count()), nullptr);
  }
  if (ack.type == kvs::AckType::Error) gst_structure_set(s, "error-id", G_TYPE_UINT, ack.errorId.value_or(0), nullptr);
  return gst_message_new_element(src, s);
}

GstMessage* error_message(GstObject* src, const kvs::StreamError& error) {
  GstStructure* s = gst_structure_new(
      "kvssink-error", "message", G_TYPE_STRING, error.message.c_str(), "service-code", G_TYPE_STRING,
      error.serviceCode.c_str(), "http-status", G_TYPE_INT, static_cast<gint>(error.httpStatus), "error-id",
      G_TYPE_UINT, error.errorId, "retryable", G_TYPE_BOOLEAN, error.retryable ? TRUE : FALSE, "fatal",
      G_TYPE_BOOLEAN, error.fatal ? TRUE : FALSE, nullptr);
  if (error.fragmentTimecode) {
    gst_structure_set(s, "fragment-timecode", G_TYPE_UINT64, *error.fragmentTimecode, nullptr);
  }
  return gst_message_new_element(src, s);
}

GstMessage* fatal_error_message(GstObject* src, const kvs::StreamError& error) {
  GstStructure* details = gst_structure_new(
      "kvssink-error-details", "http-status", G_TYPE_INT, static_cast<gint>(error.httpStatus), "service-code",
      G_TYPE_STRING, error.serviceCode.c_str(), "error-id", G_TYPE_UINT, error.errorId, "retryable", G_TYPE_BOOLEAN,
      error.retryable ? TRUE : FALSE, nullptr);
  if (error.fragmentTimecode) {
    gst_structure_set(details, "fragment-timecode", G_TYPE_UINT64, *error.fragmentTimecode, nullptr);
  }
  GError* err;
  if (error.tls) {
    err = g_error_new_literal(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_OPEN_WRITE, error.message.c_str());
  } else if (error.httpStatus == 401 || error.httpStatus == 403) {
    err = g_error_new_literal(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_AUTHORIZED, error.message.c_str());
  } else if (error.httpStatus == 404) {
    err = g_error_new_literal(GST_RESOURCE_ERROR, GST_RESOURCE_ERROR_NOT_FOUND, error.message.c_str());
  } else {
    err = g_error_new_literal(GST_STREAM_ERROR, GST_STREAM_ERROR_FAILED, error.message.c_str());
  }
  GstMessage* m = gst_message_new_error_with_details(src, err, error.message.c_str(), details);
  g_error_free(err);
  return m;
}

GstMessage* connection_message(GstObject* src, const kvs::ConnectionEvent& event) {
  return gst_message_new_element(src, gst_structure_new("kvssink-connection", "connection-id", G_TYPE_UINT64, event.id,
                                                "state", G_TYPE_STRING, event.state.c_str(), "reason", G_TYPE_STRING,
                                                event.reason.c_str(), "http-status", G_TYPE_INT,
                                                static_cast<gint>(event.httpStatus), nullptr));
}

GstMessage* dropped_message(GstObject* src, const kvs::FragmentInfo& fragment) {
  return gst_message_new_element(src, gst_structure_new("kvssink-dropped", "fragment-timecode", G_TYPE_UINT64,
                                                fragment.timecode, "frames", G_TYPE_UINT, fragment.frames, "bytes",
                                                G_TYPE_UINT64, static_cast<guint64>(fragment.bytes), nullptr));
}

GstMessage* latency_pressure_message(GstObject* src, std::chrono::milliseconds buffered, std::chrono::milliseconds maxLatency) {
  return gst_message_new_element(src, gst_structure_new("kvssink-latency-pressure", "buffered-duration-ms", G_TYPE_UINT64,
                                                static_cast<guint64>(buffered.count()), "max-latency-ms", G_TYPE_UINT64,
                                                static_cast<guint64>(maxLatency.count()), nullptr));
}

GstMessage* spool_dropped_message(GstObject* src, uint64_t timecode, uint64_t bytes) {
  return gst_message_new_element(src, gst_structure_new("kvssink-spool-dropped", "fragment-timecode", G_TYPE_UINT64,
                                                static_cast<guint64>(timecode), "bytes", G_TYPE_UINT64,
                                                static_cast<guint64>(bytes), nullptr));
}

GstMessage* stats_message(GstObject* src, const kvs::UploadStats& stats, guint64 framesSent) {
  const auto bufferedMs = std::chrono::duration_cast<std::chrono::milliseconds>(stats.bufferedDuration).count();
  return gst_message_new_element(
      src, gst_structure_new("kvssink-stats", "bytes-sent", G_TYPE_UINT64, static_cast<guint64>(stats.bytesSent),
                             "frames-sent", G_TYPE_UINT64, framesSent, "fragments-persisted", G_TYPE_UINT64,
                             static_cast<guint64>(stats.fragmentsPersisted), "fragments-received", G_TYPE_UINT64,
                             static_cast<guint64>(stats.fragmentsReceived), "fragments-dropped", G_TYPE_UINT64,
                             static_cast<guint64>(stats.fragmentsDropped), "buffered-bytes", G_TYPE_UINT64,
                             static_cast<guint64>(stats.bufferedBytes), "buffered-duration-ms", G_TYPE_UINT64,
                             static_cast<guint64>(bufferedMs), "bitrate-bps", G_TYPE_DOUBLE, stats.bitrateBps,
                             "last-ack-latency-ms", G_TYPE_UINT64, static_cast<guint64>(stats.lastAckLatency.count()),
                             "connections", G_TYPE_UINT64, static_cast<guint64>(stats.connections), nullptr));
}

}  // namespace kvssink
