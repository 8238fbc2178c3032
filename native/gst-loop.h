// One GLib thread per addon instance (per Node environment: the main thread or a Worker). It
// runs a GMainLoop on a private GMainContext and owns every bus watch (state changes run on each
// pipeline's own thread), so Node's thread never blocks on GStreamer.
#pragma once

#include <gst/gst.h>

#include <functional>
#include <mutex>
#include <thread>

namespace openkvs {

class GstLoop {
 public:
  GstLoop();
  ~GstLoop();
  GstLoop(const GstLoop&) = delete;
  GstLoop& operator=(const GstLoop&) = delete;

  GMainContext* context() const { return context_; }
  /// Runs `fn` on the GLib thread, asynchronously.
  void post(std::function<void()> fn);
  /// Runs `fn` on the GLib thread and waits for it (used only at environment teardown).
  void run(std::function<void()> fn);
  /// Stops the loop and joins the thread.
  void stop();

 private:
  GMainContext* context_;
  GMainLoop* loop_;
  std::thread thread_;
  std::mutex mutex_;
  bool stopped_ = false;
};

}  // namespace openkvs
