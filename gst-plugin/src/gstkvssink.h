// kvssink: uploads H.264/H.265 video (and AAC, A-law, mu-law audio) to an AWS Kinesis Video
// Streams stream, or to any compatible endpoint such as the openkvs server.
//
// Lock order (never take an earlier lock while holding a later one):
//   1. settings_lock (GMutex)   — the properties (Settings)
//   2. media_lock (std::mutex)  — per-pad queues, MKV packaging, timestamps
//   3. kvs::ContentStore's internal mutex
// The uploader thread (kvs::KvsStream) takes only 3 and posts bus messages.
#pragma once

#include <gst/gst.h>

G_BEGIN_DECLS

#define GST_TYPE_KVS_SINK (gst_kvs_sink_get_type())
G_DECLARE_FINAL_TYPE(GstKvsSink, gst_kvs_sink, GST, KVS_SINK, GstElement)

#define GST_TYPE_KVS_SINK_STREAMING_TYPE (gst_kvs_sink_streaming_type_get_type())
GType gst_kvs_sink_streaming_type_get_type(void);

/// Registers kvssink with a plugin (or statically, with plugin == NULL).
gboolean gst_kvs_sink_register(GstPlugin* plugin);

G_END_DECLS
