// The JS class NativePipeline: a GStreamer pipeline run in-process. Bus watches run on the
// addon's GLib thread; state changes on a thread of each pipeline's own, so that one that blocks
// (an RTSP source tearing down over a stalled connection) holds up neither Node nor the other
// pipelines' messages and state changes. Bus messages reach JS through one typed thread-safe
// function per pipeline (non-blocking, bounded queue, drops counted). Results of asynchronous
// requests (state changes, close) come back as messages of type "openkvs-result" carrying the
// request id JS gave.
#pragma once

#include <gst/gst.h>
#include <napi.h>

#include <atomic>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include "bus-message.h"
#include "gst-loop.h"

namespace openkvs {

struct PipelineCore;

/// Runs on Node's thread for each queued message.
void callJs(Napi::Env env, Napi::Function callback, PipelineCore* core, BusMessage* message);

using MessageTsfn = Napi::TypedThreadSafeFunction<PipelineCore, BusMessage, callJs>;

/// What both threads share; kept alive by whichever side still needs it.
struct PipelineCore : std::enable_shared_from_this<PipelineCore> {
  GstElement* pipeline = nullptr;
  guint watchId = 0;
  GSource* watch = nullptr;
  MessageTsfn tsfn;
  std::atomic<bool> closed{false};
  /// The thread-safe function is gone (finalized by Node: released, or the environment ended).
  /// Node 24 may finalize the JS Pipeline inside that teardown, where a Release would deadlock.
  std::atomic<bool> tsfnFinalized{false};
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> dropped{0};
  /// Node's thread only: the thread-safe function keeps the event loop alive (while running).
  bool referenced = false;
  /// Node's thread only: close() was called. From then on the thread-safe function stays
  /// referenced until the GLib thread releases it: were the loop to end before that Release
  /// (an end of stream or error arriving after close()), Node would tear the function down
  /// while the GLib thread is about to release it, and hang or crash at exit.
  bool closeRequested = false;

  void deliver(BusMessage* m);
  /// GLib thread: to NULL, remove the watch, drop the pipeline.
  void shutdown();
  /// Runs `fn` on this pipeline's state thread, after what was posted before (the thread lives
  /// while there is work).
  void post(std::function<void()> fn);

 private:
  std::mutex tasksMutex_;
  std::deque<std::function<void()>> tasks_;
  bool working_ = false;
};

/// Per-environment state (the addon instance data).
class AddonData {
 public:
  AddonData();
  ~AddonData();
  GstLoop& loop() { return *loop_; }
  /// For tasks that outlive this object (a state thread finishing after the environment ended).
  std::shared_ptr<GstLoop> sharedLoop() { return loop_; }
  void track(const std::shared_ptr<PipelineCore>& core);
  void untrack(const std::shared_ptr<PipelineCore>& core);
  Napi::FunctionReference pipelineClass;

 private:
  std::shared_ptr<GstLoop> loop_ = std::make_shared<GstLoop>();
  std::mutex mutex_;
  std::set<std::shared_ptr<PipelineCore>> cores_;
};

class Pipeline : public Napi::ObjectWrap<Pipeline> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Pipeline(const Napi::CallbackInfo& info);
  ~Pipeline() override;

 private:
  Napi::Value SetState(const Napi::CallbackInfo& info);
  Napi::Value SendEos(const Napi::CallbackInfo& info);
  Napi::Value SetProperty(const Napi::CallbackInfo& info);
  Napi::Value GetProperty(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value ElementsOfFactory(const Napi::CallbackInfo& info);
  GstElement* element(const Napi::CallbackInfo& info, const std::string& name);

  AddonData* addon_;
  std::shared_ptr<PipelineCore> core_;
  void keepAlive(Napi::Env env);
};

}  // namespace openkvs
