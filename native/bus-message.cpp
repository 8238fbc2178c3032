#include "bus-message.h"

namespace openkvs {

FieldValue fieldValue(const GValue* v) {
  switch (G_TYPE_FUNDAMENTAL(G_VALUE_TYPE(v))) {
    case G_TYPE_STRING: {
      const gchar* s = g_value_get_string(v);
      return std::string(s ? s : "");
    }
    case G_TYPE_BOOLEAN:
      return g_value_get_boolean(v) != FALSE;
    case G_TYPE_INT:
      return static_cast<int64_t>(g_value_get_int(v));
    case G_TYPE_UINT:
      return static_cast<int64_t>(g_value_get_uint(v));
    case G_TYPE_INT64:
      return static_cast<int64_t>(g_value_get_int64(v));
    case G_TYPE_UINT64:
      return static_cast<int64_t>(g_value_get_uint64(v));
    case G_TYPE_LONG:
      return static_cast<int64_t>(g_value_get_long(v));
    case G_TYPE_ULONG:
      return static_cast<int64_t>(g_value_get_ulong(v));
    case G_TYPE_DOUBLE:
      return g_value_get_double(v);
    case G_TYPE_FLOAT:
      return static_cast<double>(g_value_get_float(v));
    case G_TYPE_ENUM: {
      GEnumClass* klass = static_cast<GEnumClass*>(g_type_class_ref(G_VALUE_TYPE(v)));
      GEnumValue* ev = g_enum_get_value(klass, g_value_get_enum(v));
      std::string nick = ev ? ev->value_nick : std::to_string(g_value_get_enum(v));
      g_type_class_unref(klass);
      return nick;
    }
    default: {
      gchar* s = gst_value_serialize(v);
      std::string out = s ? s : "";
      g_free(s);
      return out;
    }
  }
}

std::vector<Field> structureFields(const GstStructure* s) {
  std::vector<Field> out;
  if (s == nullptr) return out;
  gint n = gst_structure_n_fields(s);
  for (gint i = 0; i < n; i++) {
    const gchar* name = gst_structure_nth_field_name(s, static_cast<guint>(i));
    out.push_back({name, fieldValue(gst_structure_get_value(s, name))});
  }
  return out;
}

BusMessage toBusMessage(GstMessage* msg, GstElement* pipeline) {
  BusMessage m;
  m.type = gst_message_type_get_name(GST_MESSAGE_TYPE(msg));
  if (GST_MESSAGE_SRC(msg)) {
    gchar* name = gst_object_get_name(GST_MESSAGE_SRC(msg));
    m.source = name ? name : "";
    g_free(name);
  }
  m.fromPipeline = GST_MESSAGE_SRC(msg) == GST_OBJECT(pipeline);
  const GstStructure* s = gst_message_get_structure(msg);
  switch (GST_MESSAGE_TYPE(msg)) {
    case GST_MESSAGE_ERROR:
    case GST_MESSAGE_WARNING:
    case GST_MESSAGE_INFO: {
      GError* err = nullptr;
      gchar* debug = nullptr;
      const GstStructure* details = nullptr;
      if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR) {
        gst_message_parse_error(msg, &err, &debug);
        gst_message_parse_error_details(msg, &details);
      } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
        gst_message_parse_warning(msg, &err, &debug);
        gst_message_parse_warning_details(msg, &details);
      } else {
        gst_message_parse_info(msg, &err, &debug);
        gst_message_parse_info_details(msg, &details);
      }
      if (err) {
        m.domain = g_quark_to_string(err->domain);
        m.code = err->code;
        m.message = err->message ? err->message : "";
        g_error_free(err);
      }
      m.debug = debug ? debug : "";
      g_free(debug);
      if (details) {
        m.name = gst_structure_get_name(details);
        m.details = structureFields(details);
      }
      break;
    }
    case GST_MESSAGE_STATE_CHANGED: {
      GstState o, n, p;
      gst_message_parse_state_changed(msg, &o, &n, &p);
      m.oldState = gst_element_state_get_name(o);
      m.newState = gst_element_state_get_name(n);
      m.pendingState = gst_element_state_get_name(p);
      break;
    }
    default:
      if (s) {
        m.name = gst_structure_get_name(s);
        m.fields = structureFields(s);
      }
      break;
  }
  return m;
}

Napi::Value toJs(Napi::Env env, const FieldValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return Napi::String::New(env, *s);
  if (const auto* d = std::get_if<double>(&v)) return Napi::Number::New(env, *d);
  if (const auto* b = std::get_if<bool>(&v)) return Napi::Boolean::New(env, *b);
  return Napi::Number::New(env, static_cast<double>(std::get<int64_t>(v)));
}

static Napi::Object fieldsToJs(Napi::Env env, const std::vector<Field>& fields) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& f : fields) o.Set(f.name, toJs(env, f.value));
  return o;
}

Napi::Object toJs(Napi::Env env, const BusMessage& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("type", m.type);
  o.Set("source", m.source);
  if (!m.name.empty()) o.Set("name", m.name);
  o.Set("fields", fieldsToJs(env, m.fields));
  if (m.type == "error" || m.type == "warning" || m.type == "info") {
    Napi::Object e = Napi::Object::New(env);
    e.Set("domain", m.domain);
    e.Set("code", m.code);
    e.Set("message", m.message);
    e.Set("debug", m.debug);
    e.Set("details", fieldsToJs(env, m.details));
    o.Set("error", e);
  }
  if (m.type == "state-changed") {
    o.Set("oldState", m.oldState);
    o.Set("newState", m.newState);
    o.Set("pendingState", m.pendingState);
    o.Set("fromPipeline", m.fromPipeline);
  }
  return o;
}

}  // namespace openkvs
