// plugin_init and registration of the kvssink element.
#include <gst/gst.h>

#include "gstkvssink.h"

#ifndef PACKAGE
#define PACKAGE "openkvs"
#endif

static gboolean plugin_init(GstPlugin* plugin) { return gst_kvs_sink_register(plugin); }

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, kvssink, "Kinesis Video Streams sink (openkvs)", plugin_init,
                  "0.1.0", "Apache 2.0", "openkvs", "https://github.com/openkvs/openkvs")
