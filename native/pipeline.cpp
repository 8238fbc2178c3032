#include "pipeline.h"

#include <thread>

namespace openkvs {

namespace {

/// Bus messages queued for JS beyond this are dropped (and counted), never blocking GStreamer.
constexpr size_t MAX_QUEUED_MESSAGES = 4096;

BusMessage* result(const std::string& request, const std::string& value) {
  auto* m = new BusMessage();
  m->type = "openkvs-result";
  m->fields.push_back({"request", request});
  m->fields.push_back({"result", value});
  return m;
}

gboolean onBusMessage(GstBus*, GstMessage* msg, gpointer data) {
  auto* core = static_cast<PipelineCore*>(data);
  core->deliver(new BusMessage(toBusMessage(msg, core->pipeline)));
  return G_SOURCE_CONTINUE;
}

GstState parseState(const std::string& s) {
  if (s == "NULL") return GST_STATE_NULL;
  if (s == "READY") return GST_STATE_READY;
  if (s == "PAUSED") return GST_STATE_PAUSED;
  if (s == "PLAYING") return GST_STATE_PLAYING;
  return GST_STATE_VOID_PENDING;
}

void throwData(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::Error e = Napi::Error::New(env, message);
  e.Set("code", code);
  throw e;
}

}  // namespace

void callJs(Napi::Env env, Napi::Function callback, PipelineCore* core, BusMessage* message) {
  std::unique_ptr<BusMessage> m(message);
  if (env == nullptr || callback.IsEmpty()) return;  // the environment is going away
  core->delivered++;
  // After EOS or an error the pipeline is done: it no longer keeps Node alive (stop() still works),
  // unless it is being closed: then the close result keeps it alive.
  if ((m->type == "eos" && m->fromPipeline) || m->type == "error") {
    if (core->referenced && !core->closeRequested && !core->closed) {
      core->tsfn.Unref(env);
      core->referenced = false;
    }
  }
  callback.Call({toJs(env, *m)});
}

void PipelineCore::deliver(BusMessage* m) {
  if (closed) {
    delete m;
    return;
  }
  // Element messages (acks, stats, levels, …) may be dropped when JS falls behind: GStreamer
  // never waits for Node. Messages the JS side acts on — end of stream, errors, state changes,
  // request results — are never dropped: they wait for room in the queue (they are few).
  const bool control = m->type == "eos" || m->type == "error" || m->type == "state-changed" || m->type == "openkvs-result";
  napi_status status = control ? tsfn.BlockingCall(m) : tsfn.NonBlockingCall(m);
  if (status != napi_ok) {
    delete m;
    if (status != napi_closing) dropped++;
  }
}

void PipelineCore::shutdown() {
  if (pipeline == nullptr) return;
  gst_element_set_state(pipeline, GST_STATE_NULL);
  if (watch != nullptr) {
    g_source_destroy(watch);
    g_source_unref(watch);
    watch = nullptr;
  }
  gst_object_unref(pipeline);
  pipeline = nullptr;
}

void PipelineCore::post(std::function<void()> fn) {
  std::lock_guard<std::mutex> lock(tasksMutex_);
  tasks_.push_back(std::move(fn));
  if (working_) return;
  working_ = true;
  std::thread([self = shared_from_this()] {
    for (;;) {
      std::function<void()> task;
      {
        std::lock_guard<std::mutex> lock(self->tasksMutex_);
        if (self->tasks_.empty()) {
          self->working_ = false;
          return;
        }
        task = std::move(self->tasks_.front());
        self->tasks_.pop_front();
      }
      task();
    }
  }).detach();
}

// ---- AddonData ----

AddonData::AddonData() = default;

AddonData::~AddonData() {
  // The environment is ending: stop every pipeline that is still running, then the loop.
  std::set<std::shared_ptr<PipelineCore>> cores;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    cores.swap(cores_);
  }
  for (const auto& c : cores) c->closed = true;
  loop_->run([&] {
    for (const auto& c : cores) c->shutdown();
  });
  loop_->stop();
}

void AddonData::track(const std::shared_ptr<PipelineCore>& core) {
  std::lock_guard<std::mutex> lock(mutex_);
  cores_.insert(core);
}

void AddonData::untrack(const std::shared_ptr<PipelineCore>& core) {
  std::lock_guard<std::mutex> lock(mutex_);
  cores_.erase(core);
}

// ---- Pipeline ----

Napi::Function Pipeline::Define(Napi::Env env) {
  return DefineClass(env, "NativePipeline",
                     {
                         InstanceMethod<&Pipeline::SetState>("setState"),
                         InstanceMethod<&Pipeline::SendEos>("sendEos"),
                         InstanceMethod<&Pipeline::SetProperty>("setProperty"),
                         InstanceMethod<&Pipeline::GetProperty>("getProperty"),
                         InstanceMethod<&Pipeline::Close>("close"),
                         InstanceMethod<&Pipeline::Stats>("stats"),
                         InstanceMethod<&Pipeline::ElementsOfFactory>("elementsOfFactory"),
                     });
}

Pipeline::Pipeline(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Pipeline>(info) {
  Napi::Env env = info.Env();
  addon_ = env.GetInstanceData<AddonData>();
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsFunction()) {
    throwData(env, "ERR_INVALID_ARG", "NativePipeline(description: string, onMessage: function)");
  }
  std::string description = info[0].As<Napi::String>();
  GError* err = nullptr;
  GstElement* element = gst_parse_launch(description.c_str(), &err);
  if (err != nullptr) {
    std::string message = err->message;
    bool missing = g_error_matches(err, GST_PARSE_ERROR, GST_PARSE_ERROR_NO_SUCH_ELEMENT);
    g_error_free(err);
    if (element) gst_object_unref(element);
    throwData(env, missing ? "ERR_GST_NO_SUCH_ELEMENT" : "ERR_GST_PARSE", message);
  }
  if (!GST_IS_PIPELINE(element)) {
    GstElement* wrapper = gst_pipeline_new(nullptr);
    gst_bin_add(GST_BIN(wrapper), element);
    element = wrapper;
  }
  core_ = std::make_shared<PipelineCore>();
  core_->pipeline = element;
  // The finalizer's data keeps the core alive until Node is done with the thread-safe function.
  auto* keep = new std::shared_ptr<PipelineCore>(core_);
  core_->tsfn = MessageTsfn::New(env, info[1].As<Napi::Function>(), "openkvs-bus", MAX_QUEUED_MESSAGES, 1, core_.get(),
                                 [](Napi::Env, std::shared_ptr<PipelineCore>* kept, PipelineCore*) {
                                   (*kept)->tsfnFinalized = true;
                                   delete kept;
                                 },
                                 keep);
  core_->tsfn.Unref(env);  // an idle pipeline does not keep Node alive
  addon_->track(core_);
  auto core = core_;
  addon_->loop().post([core, ctx = addon_->loop().context()] {
    if (core->closed || core->pipeline == nullptr) return;
    GstBus* bus = gst_element_get_bus(core->pipeline);
    core->watch = gst_bus_create_watch(bus);
    g_source_set_callback(core->watch, G_SOURCE_FUNC(onBusMessage), core.get(), nullptr);
    g_source_attach(core->watch, ctx);
    gst_object_unref(bus);
  });
}

Pipeline::~Pipeline() {
  // Dropped without close(): stop it on its state thread. (A closed core was either closed by
  // JS or by the environment's teardown, which also stops the loop: nothing to do then.)
  if (core_ && !core_->closeRequested && !core_->closed) {
    core_->closed = true;
    auto core = core_;
    AddonData* addon = addon_;
    GstElement* p = GST_ELEMENT(gst_object_ref(core->pipeline));
    core->post([core, p, loop = addon->sharedLoop()] {
      gst_element_set_state(p, GST_STATE_NULL);
      gst_object_unref(p);
      loop->post([core] { core->shutdown(); });
    });
    if (!core->tsfnFinalized) core->tsfn.Release();
    addon->untrack(core);
  }
}

GstElement* Pipeline::element(const Napi::CallbackInfo& info, const std::string& name) {
  if (core_->closed || core_->pipeline == nullptr) throwData(info.Env(), "ERR_PIPELINE_CLOSED", "the pipeline is closed");
  GstElement* e = gst_bin_get_by_name(GST_BIN(core_->pipeline), name.c_str());
  if (e == nullptr) throwData(info.Env(), "ERR_NO_SUCH_ELEMENT", "no element named \"" + name + "\" in the pipeline");
  return e;
}

Napi::Value Pipeline::SetState(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string state = info[0].As<Napi::String>();
  std::string request = info[1].As<Napi::String>();
  GstState target = parseState(state);
  if (target == GST_STATE_VOID_PENDING) throwData(env, "ERR_INVALID_ARG", "unknown state " + state);
  if (core_->closed) throwData(env, "ERR_PIPELINE_CLOSED", "the pipeline is closed");
  if (target >= GST_STATE_PAUSED) keepAlive(env);  // a running pipeline keeps Node alive
  auto core = core_;
  GstElement* p = GST_ELEMENT(gst_object_ref(core->pipeline));
  core->post([core, p, target, request] {
    GstStateChangeReturn r = gst_element_set_state(p, target);
    gst_object_unref(p);
    core->deliver(result(request, gst_element_state_change_return_get_name(r)));
  });
  return env.Undefined();
}

void Pipeline::keepAlive(Napi::Env env) {
  if (core_->referenced) return;
  core_->tsfn.Ref(env);
  core_->referenced = true;
}

Napi::Value Pipeline::SendEos(const Napi::CallbackInfo& info) {
  if (core_->closed) throwData(info.Env(), "ERR_PIPELINE_CLOSED", "the pipeline is closed");
  GstElement* p = GST_ELEMENT(gst_object_ref(core_->pipeline));
  core_->post([p] {
    gst_element_send_event(p, gst_event_new_eos());
    gst_object_unref(p);
  });
  return info.Env().Undefined();
}

Napi::Value Pipeline::SetProperty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  std::string prop = info[1].As<Napi::String>();
  GstElement* e = element(info, name);
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop.c_str());
  if (spec == nullptr || !(spec->flags & G_PARAM_WRITABLE)) {
    gst_object_unref(e);
    throwData(env, "ERR_NO_SUCH_PROPERTY", "element \"" + name + "\" has no writable property \"" + prop + "\"");
  }
  GValue v = G_VALUE_INIT;
  g_value_init(&v, spec->value_type);
  Napi::Value js = info[2];
  bool ok = true;
  if (js.IsString()) {
    std::string s = js.As<Napi::String>();
    if (G_VALUE_HOLDS_STRING(&v)) {
      g_value_set_string(&v, s.c_str());
    } else {
      ok = gst_value_deserialize(&v, s.c_str()) != FALSE;
    }
  } else if (js.IsBoolean() && G_VALUE_HOLDS_BOOLEAN(&v)) {
    g_value_set_boolean(&v, js.As<Napi::Boolean>().Value());
  } else if (js.IsNumber()) {
    GValue d = G_VALUE_INIT;
    g_value_init(&d, G_TYPE_DOUBLE);
    g_value_set_double(&d, js.As<Napi::Number>().DoubleValue());
    ok = g_value_type_transformable(G_TYPE_DOUBLE, spec->value_type) && g_value_transform(&d, &v);
    g_value_unset(&d);
  } else if (js.IsNull() && G_VALUE_HOLDS_STRING(&v)) {
    g_value_set_string(&v, nullptr);
  } else {
    ok = false;
  }
  if (ok) g_object_set_property(G_OBJECT(e), prop.c_str(), &v);
  g_value_unset(&v);
  gst_object_unref(e);
  if (!ok) throwData(env, "ERR_INVALID_PROPERTY_VALUE", "cannot set \"" + prop + "\" of \"" + name + "\" to that value");
  return env.Undefined();
}

Napi::Value Pipeline::GetProperty(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>();
  std::string prop = info[1].As<Napi::String>();
  GstElement* e = element(info, name);
  GParamSpec* spec = g_object_class_find_property(G_OBJECT_GET_CLASS(e), prop.c_str());
  if (spec == nullptr || !(spec->flags & G_PARAM_READABLE)) {
    gst_object_unref(e);
    throwData(env, "ERR_NO_SUCH_PROPERTY", "element \"" + name + "\" has no readable property \"" + prop + "\"");
  }
  GValue v = G_VALUE_INIT;
  g_value_init(&v, spec->value_type);
  g_object_get_property(G_OBJECT(e), prop.c_str(), &v);
  Napi::Value out = G_VALUE_HOLDS_STRING(&v) && g_value_get_string(&v) == nullptr ? env.Null() : toJs(env, fieldValue(&v));
  g_value_unset(&v);
  gst_object_unref(e);
  return out;
}

Napi::Value Pipeline::Close(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string request = info[0].As<Napi::String>();
  if (core_->closed || core_->closeRequested) {
    throwData(env, "ERR_PIPELINE_CLOSED", "the pipeline is closed");
  }
  core_->closeRequested = true;
  auto core = core_;
  AddonData* addon = addon_;
  keepAlive(env);  // until the close result arrives
  // To NULL on the state thread (after any state change still running there), then the rest
  // on the GLib thread, which owns the watch. A loop that has stopped meanwhile (the
  // environment ended and shut every pipeline down) never runs the second part.
  GstElement* p = GST_ELEMENT(gst_object_ref(core->pipeline));
  core->post([core, p, request, addon, loop = addon->sharedLoop()] {
    gst_element_set_state(p, GST_STATE_NULL);
    gst_object_unref(p);
    loop->post([core, request, addon] {
      core->shutdown();
      core->deliver(result(request, "CLOSED"));
      core->closed = true;
      core->tsfn.Release();
      addon->untrack(core);
    });
  });
  return env.Undefined();
}

Napi::Value Pipeline::Stats(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("messagesDelivered", static_cast<double>(core_->delivered.load()));
  o.Set("messagesDropped", static_cast<double>(core_->dropped.load()));
  return o;
}

Napi::Value Pipeline::ElementsOfFactory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string factory = info[0].As<Napi::String>();
  if (core_->closed || core_->pipeline == nullptr) throwData(env, "ERR_PIPELINE_CLOSED", "the pipeline is closed");
  Napi::Array out = Napi::Array::New(env);
  GstIterator* it = gst_bin_iterate_recurse(GST_BIN(core_->pipeline));
  GValue item = G_VALUE_INIT;
  uint32_t i = 0;
  while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
    auto* e = GST_ELEMENT(g_value_get_object(&item));
    GstElementFactory* f = gst_element_get_factory(e);
    if (f && factory == gst_plugin_feature_get_name(GST_PLUGIN_FEATURE(f))) {
      gchar* name = gst_element_get_name(e);
      out.Set(i++, name);
      g_free(name);
    }
    g_value_reset(&item);
  }
  g_value_unset(&item);
  gst_iterator_free(it);
  return out;
}

}  // namespace openkvs
