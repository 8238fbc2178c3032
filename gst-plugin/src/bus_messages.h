// The messages kvssink posts on the bus, built from the values its upload core reports: the
// element messages (every field is listed in the table of gstkvssink.cpp's doc comment and in
// docs/kvssink.md) and the ERROR message of a fatal error. Each function returns a new message
// with `src` as its source, for gst_element_post_message().
#pragma once

#include <gst/gst.h>

#include <chrono>
#include <string>

#include "kvs/acks.h"
#include "kvs/store.h"
#include "kvs/stream.h"

namespace kvssink {

/// kvssink-stream-ready: the stream exists and its data endpoint is known.
GstMessage* stream_ready_message(GstObject* src, const std::string& streamName, const std::string& streamArn);

/// kvssink-fragment-ack; `latency` (fragment end to this ack) is posted with PERSISTED acks only.
GstMessage* fragment_ack_message(GstObject* src, const kvs::Ack& ack, std::chrono::milliseconds latency);

/// kvssink-error, for every error the uploader reports (retried or fatal).
GstMessage* error_message(GstObject* src, const kvs::StreamError& error);

/// The ERROR message of a fatal error, with a kvssink-error-details structure: RESOURCE/OPEN_WRITE
/// for TLS failures, RESOURCE/NOT_AUTHORIZED for HTTP 401 and 403, RESOURCE/NOT_FOUND for 404,
/// STREAM/FAILED otherwise.
GstMessage* fatal_error_message(GstObject* src, const kvs::StreamError& error);

/// kvssink-connection: a PutMedia connection is connecting, rotating, closed or dropped.
GstMessage* connection_message(GstObject* src, const kvs::ConnectionEvent& event);

/// kvssink-dropped: a fragment dropped unsent because the buffer was full.
GstMessage* dropped_message(GstObject* src, const kvs::FragmentInfo& fragment);

/// kvssink-latency-pressure: the media not yet persisted went above max-latency.
GstMessage* latency_pressure_message(GstObject* src, std::chrono::milliseconds buffered, std::chrono::milliseconds maxLatency);

/// kvssink-spool-dropped: the spool (storage-path) was full, a fragment was deleted unsent.
GstMessage* spool_dropped_message(GstObject* src, uint64_t timecode, uint64_t bytes);

/// kvssink-stats; `framesSent` is the element's count of frames packaged.
GstMessage* stats_message(GstObject* src, const kvs::UploadStats& stats, guint64 framesSent);

}  // namespace kvssink
