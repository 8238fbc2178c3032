// The JS class NativeVideoDecoder: Matroska video frames (AVCC / HVCC with their codec private
// data) in, raw video frames out, through appsrc ! parse ! decoder ! videorate ! videoscale !
// videoconvert ! appsink. JS pushes encoded frames (copied into GstBuffers) and pulls decoded
// ones; each pull runs on a libuv worker thread (Node's thread never waits on GStreamer) and
// copies the frame once into a Node Buffer. Teardown to NULL also runs off Node's thread.
#pragma once

#include <gst/gst.h>
#include <napi.h>

#include <atomic>
#include <memory>

namespace openkvs {

struct DecoderCore {
  GstElement* pipeline = nullptr;
  GstElement* src = nullptr;
  GstElement* sink = nullptr;
  /// Set by close(): a pull in progress returns (null) within its 200 ms wait.
  std::atomic<bool> closed{false};
  ~DecoderCore();
};

class VideoDecoder : public Napi::ObjectWrap<VideoDecoder> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit VideoDecoder(const Napi::CallbackInfo& info);

 private:
  Napi::Value Push(const Napi::CallbackInfo& info);
  Napi::Value Pull(const Napi::CallbackInfo& info);
  Napi::Value End(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  std::shared_ptr<DecoderCore> core_;
};

}  // namespace openkvs
