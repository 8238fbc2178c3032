#include "gst-loop.h"

#include <condition_variable>

namespace openkvs {

namespace {

struct Task {
  std::function<void()> fn;
};

gboolean runTask(gpointer data) {
  static_cast<Task*>(data)->fn();
  return G_SOURCE_REMOVE;
}

void freeTask(gpointer data) { delete static_cast<Task*>(data); }

}  // namespace

GstLoop::GstLoop() : context_(g_main_context_new()), loop_(g_main_loop_new(context_, FALSE)) {
  thread_ = std::thread([this] {
    g_main_context_push_thread_default(context_);
    g_main_loop_run(loop_);
    g_main_context_pop_thread_default(context_);
  });
}

GstLoop::~GstLoop() {
  stop();
  g_main_loop_unref(loop_);
  g_main_context_unref(context_);
}

void GstLoop::post(std::function<void()> fn) {
  GSource* source = g_idle_source_new();
  g_source_set_priority(source, G_PRIORITY_DEFAULT);
  g_source_set_callback(source, runTask, new Task{std::move(fn)}, freeTask);
  g_source_attach(source, context_);
  g_source_unref(source);
}

void GstLoop::run(std::function<void()> fn) {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  post([&] {
    fn();
    std::lock_guard<std::mutex> lock(m);
    done = true;
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return done; });
}

void GstLoop::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
  }
  post([this] { g_main_loop_quit(loop_); });
  if (thread_.joinable()) thread_.join();
}

}  // namespace openkvs
