// openkvs native addon: runs GStreamer pipelines in-process for Node. kvssink is compiled in and
// registered statically, so no GST_PLUGIN_PATH is needed. Everything else lives in lib/.
#include <gst/gst.h>
#include <napi.h>

#include <mutex>

#include "gstkvssink.h"
#include "pipeline.h"
#include "video-decoder.h"

namespace openkvs {
namespace {

gboolean registerKvssink(GstPlugin* plugin) { return gst_kvs_sink_register(plugin); }

void initGstreamerOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    gst_init(nullptr, nullptr);
    gst_plugin_register_static(GST_VERSION_MAJOR, GST_VERSION_MINOR, "kvssink",
                               "Kinesis Video Streams sink (openkvs, built into the Node addon)", registerKvssink,
                               "0.1.0", "Apache 2.0", "openkvs", "openkvs", "https://github.com/openkvs/openkvs");
  });
}

Napi::Value ElementExists(const Napi::CallbackInfo& info) {
  std::string name = info[0].As<Napi::String>();
  GstElementFactory* f = gst_element_factory_find(name.c_str());
  if (f) gst_object_unref(f);
  return Napi::Boolean::New(info.Env(), f != nullptr);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  initGstreamerOnce();
  auto* data = new AddonData();
  env.SetInstanceData<AddonData>(data);  // deleted (pipelines stopped, loop joined) when the environment ends
  Napi::Function cls = Pipeline::Define(env);
  data->pipelineClass = Napi::Persistent(cls);
  exports.Set("NativePipeline", cls);
  exports.Set("NativeVideoDecoder", VideoDecoder::Define(env));
  exports.Set("elementExists", Napi::Function::New<ElementExists>(env, "elementExists"));
  guint major, minor, micro, nano;
  gst_version(&major, &minor, &micro, &nano);
  exports.Set("gstreamerVersion", std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(micro));
  return exports;
}

}  // namespace
}  // namespace openkvs

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return openkvs::Init(env, exports); }

NODE_API_MODULE(openkvs, InitAddon)
