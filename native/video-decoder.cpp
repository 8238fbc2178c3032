#include "video-decoder.h"

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/video/video.h>

#include <string>

namespace openkvs {

namespace {

void throwCode(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", code);
  throw e;
}

/// The first error on the bus, as text (empty when none).
std::string busError(GstElement* pipeline) {
  GstBus* bus = gst_element_get_bus(pipeline);
  std::string text;
  if (GstMessage* m = gst_bus_pop_filtered(bus, GST_MESSAGE_ERROR)) {
    GError* err = nullptr;
    gchar* debug = nullptr;
    gst_message_parse_error(m, &err, &debug);
    text = std::string(err ? err->message : "error") + (debug ? std::string(" (") + debug + ")" : "");
    g_clear_error(&err);
    g_free(debug);
    gst_message_unref(m);
  }
  gst_object_unref(bus);
  return text;
}

/// Waits for the next decoded frame off Node's thread; resolves with it, or null at the end.
class PullWorker : public Napi::AsyncWorker {
 public:
  PullWorker(Napi::Env env, std::shared_ptr<DecoderCore> core)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), core_(std::move(core)) {}
  ~PullWorker() override {
    if (sample_) gst_sample_unref(sample_);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    for (;;) {
      if (core_->closed) return;
      sample_ = gst_app_sink_try_pull_sample(GST_APP_SINK(core_->sink), 200 * GST_MSECOND);
      if (sample_) return;
      error_ = busError(core_->pipeline);
      if (!error_.empty() || gst_app_sink_is_eos(GST_APP_SINK(core_->sink))) return;
    }
  }

  void OnOK() override {
    Napi::Env env = Env();
    if (!error_.empty()) {
      Napi::Error e = Napi::Error::New(env, error_);
      e.Set("code", "ERR_DECODE");
      deferred_.Reject(e.Value());
      return;
    }
    if (!sample_) {
      deferred_.Resolve(env.Null());
      return;
    }
    GstVideoInfo vi;
    GstBuffer* buf = gst_sample_get_buffer(sample_);
    GstMapInfo map;
    if (!gst_video_info_from_caps(&vi, gst_sample_get_caps(sample_)) || !gst_buffer_map(buf, &map, GST_MAP_READ)) {
      Napi::Error e = Napi::Error::New(env, "decoded frame without video caps");
      e.Set("code", "ERR_DECODE");
      deferred_.Reject(e.Value());
      return;
    }
    Napi::Object f = Napi::Object::New(env);
    f.Set("data", Napi::Buffer<uint8_t>::Copy(env, map.data, map.size));  // the one copy
    gst_buffer_unmap(buf, &map);
    f.Set("width", GST_VIDEO_INFO_WIDTH(&vi));
    f.Set("height", GST_VIDEO_INFO_HEIGHT(&vi));
    f.Set("format", gst_video_format_to_string(GST_VIDEO_INFO_FORMAT(&vi)));
    GstVideoMeta* meta = gst_buffer_get_video_meta(buf);
    const guint planes = GST_VIDEO_INFO_N_PLANES(&vi);
    Napi::Array strides = Napi::Array::New(env, planes);
    Napi::Array offsets = Napi::Array::New(env, planes);
    for (guint p = 0; p < planes; p++) {
      strides.Set(p, meta ? meta->stride[p] : GST_VIDEO_INFO_PLANE_STRIDE(&vi, p));
      offsets.Set(p, static_cast<double>(meta ? meta->offset[p] : GST_VIDEO_INFO_PLANE_OFFSET(&vi, p)));
    }
    f.Set("strides", strides);
    f.Set("offsets", offsets);
    const GstClockTime pts = GST_BUFFER_PTS(buf);
    f.Set("timestampMs", GST_CLOCK_TIME_IS_VALID(pts) ? static_cast<double>(pts / GST_MSECOND) : -1.0);
    deferred_.Resolve(f);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<DecoderCore> core_;
  GstSample* sample_ = nullptr;
  std::string error_;
};

/// Drops the pipeline (to NULL) off Node's thread; resolves when done.
class CloseWorker : public Napi::AsyncWorker {
 public:
  CloseWorker(Napi::Env env, std::shared_ptr<DecoderCore> core)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), core_(std::move(core)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void Execute() override { core_.reset(); }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::shared_ptr<DecoderCore> core_;
};

}  // namespace

DecoderCore::~DecoderCore() {
  if (pipeline == nullptr) return;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  gst_object_unref(src);
  gst_object_unref(sink);
  gst_object_unref(pipeline);
}

Napi::Function VideoDecoder::Define(Napi::Env env) {
  return DefineClass(env, "NativeVideoDecoder",
                     {
                         InstanceMethod<&VideoDecoder::Push>("push"),
                         InstanceMethod<&VideoDecoder::Pull>("pull"),
                         InstanceMethod<&VideoDecoder::End>("end"),
                         InstanceMethod<&VideoDecoder::Close>("close"),
                     });
}

// new NativeVideoDecoder({ codec: 'h264'|'h265', codecPrivate: Buffer, format, width, height, maxRate })
VideoDecoder::VideoDecoder(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VideoDecoder>(info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsObject()) throwCode(env, "ERR_INVALID_ARG", "NativeVideoDecoder(options: object)");
  Napi::Object o = info[0].As<Napi::Object>();
  const std::string codec = o.Get("codec").As<Napi::String>();
  const std::string format = o.Get("format").As<Napi::String>();
  const int width = o.Get("width").As<Napi::Number>().Int32Value();
  const int height = o.Get("height").As<Napi::Number>().Int32Value();
  const int maxRate = o.Get("maxRate").As<Napi::Number>().Int32Value();
  Napi::Buffer<uint8_t> cp = o.Get("codecPrivate").As<Napi::Buffer<uint8_t>>();
  const bool h265 = codec == "h265";

  std::string caps = "video/x-raw,format=" + format;
  if (width > 0) caps += ",width=" + std::to_string(width);
  if (height > 0) caps += ",height=" + std::to_string(height);
  // Scale before converting: shrinking the 4:2:0 planes costs a fraction of converting full-size
  // frames to RGB first.
  std::string desc = std::string("appsrc name=src format=time ! ") + (h265 ? "h265parse ! avdec_h265" : "h264parse ! avdec_h264") +
                     (maxRate > 0 ? " ! videorate drop-only=true max-rate=" + std::to_string(maxRate) : std::string()) +
                     " ! videoscale ! videoconvert ! " + caps + " ! appsink name=sink sync=false max-buffers=4";
  GError* err = nullptr;
  GstElement* pipeline = gst_parse_launch(desc.c_str(), &err);
  if (pipeline == nullptr || err != nullptr) {
    std::string message = err ? err->message : "cannot build the decoder";
    g_clear_error(&err);
    if (pipeline) gst_object_unref(pipeline);
    throwCode(env, "ERR_DECODER", message + " (is gstreamer1.0-libav installed?)");
  }
  core_ = std::make_shared<DecoderCore>();
  core_->pipeline = pipeline;
  core_->src = gst_bin_get_by_name(GST_BIN(pipeline), "src");
  core_->sink = gst_bin_get_by_name(GST_BIN(pipeline), "sink");

  GstBuffer* codecData = gst_buffer_new_memdup(cp.Data(), cp.Length());
  GstCaps* srcCaps = gst_caps_new_simple(h265 ? "video/x-h265" : "video/x-h264", "stream-format", G_TYPE_STRING, h265 ? "hvc1" : "avc",
                                         "alignment", G_TYPE_STRING, "au", "codec_data", GST_TYPE_BUFFER, codecData, nullptr);
  gst_buffer_unref(codecData);
  gst_app_src_set_caps(GST_APP_SRC(core_->src), srcCaps);
  gst_caps_unref(srcCaps);
  // appsrc queues what JS pushes (no blocking of Node's thread); JS bounds what it pushes ahead.
  g_object_set(core_->src, "max-bytes", static_cast<guint64>(0), "block", FALSE, nullptr);
  if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE) {
    std::string message = busError(pipeline);
    core_.reset();
    throwCode(env, "ERR_DECODER", "the decoder did not start: " + message);
  }
}

// push(data: Buffer, timestampMs: number, keyframe: boolean)
Napi::Value VideoDecoder::Push(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_) throwCode(env, "ERR_CLOSED", "the decoder is closed");
  Napi::Buffer<uint8_t> data = info[0].As<Napi::Buffer<uint8_t>>();
  const double ms = info[1].As<Napi::Number>().DoubleValue();
  const bool keyframe = info[2].As<Napi::Boolean>().Value();
  GstBuffer* buf = gst_buffer_new_memdup(data.Data(), data.Length());
  GST_BUFFER_PTS(buf) = static_cast<GstClockTime>(ms) * GST_MSECOND;
  GST_BUFFER_DTS(buf) = GST_CLOCK_TIME_NONE;
  if (!keyframe) GST_BUFFER_FLAG_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT);
  gst_app_src_push_buffer(GST_APP_SRC(core_->src), buf);  // takes the buffer
  return env.Undefined();
}

Napi::Value VideoDecoder::Pull(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!core_) throwCode(env, "ERR_CLOSED", "the decoder is closed");
  auto* w = new PullWorker(env, core_);
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

Napi::Value VideoDecoder::End(const Napi::CallbackInfo& info) {
  if (core_) gst_app_src_end_of_stream(GST_APP_SRC(core_->src));
  return info.Env().Undefined();
}

Napi::Value VideoDecoder::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (core_) core_->closed = true;
  auto* w = new CloseWorker(env, std::move(core_));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

}  // namespace openkvs
