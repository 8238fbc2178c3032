// kvssink: uploads H.264/H.265 video (and AAC, A-law, mu-law audio) to an AWS Kinesis Video
// Streams stream, or to any compatible endpoint such as the openkvs server.
//
// Lock order (never take an earlier lock while holding a later one):
//   1. stopLock (std::mutex)   — serializes KvsStream::stop(); taken with no other lock held
//   2. mediaLock (std::mutex)  — pads, per-pad queues, MKV packaging, timestamps, State
//   3. innermost locks, never held while another lock is taken:
//      settings_lock (GMutex) — the properties (Settings), read with or without mediaLock;
//      kvs::ContentStore's mutex and the own mutexes of kvs::KvsStream and kvs::Uploader.
// The uploader thread (kvs::KvsStream's, running kvs::Uploader) takes the locks of 3, and
// mediaLock in the kvssink-stats callback (for frames-sent); it posts bus messages with no lock
// of the element held. Hence KvsStream::stop() and ~KvsStream(), which join the uploader, are
// never called with mediaLock held.
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
