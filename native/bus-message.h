// Bus messages as plain C++ values: made on the GLib thread (no GStreamer object survives the
// hop), turned into JS objects on Node's thread.
#pragma once

#include <gst/gst.h>
#include <napi.h>

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace openkvs {

using FieldValue = std::variant<std::string, double, bool, int64_t>;

struct Field {
  std::string name;
  FieldValue value;
};

struct BusMessage {
  std::string type;    // eos, error, warning, info, state-changed, element, ...
  std::string source;  // name of the object that posted it
  std::string name;    // structure name (element messages), or empty
  std::vector<Field> fields;
  // error / warning / info
  std::string domain;
  int code = 0;
  std::string message;
  std::string debug;
  std::vector<Field> details;
  // state-changed
  std::string oldState, newState, pendingState;
  bool fromPipeline = false;
};

/// Copies what JS needs out of a GstMessage (GLib thread).
BusMessage toBusMessage(GstMessage* msg, GstElement* pipeline);
/// Builds the JS object (Node's thread).
Napi::Object toJs(Napi::Env env, const BusMessage& m);
/// Reads a GstStructure's fields as plain values.
std::vector<Field> structureFields(const GstStructure* s);
/// A GValue as a plain value (numbers, strings, booleans; anything else serialized).
FieldValue fieldValue(const GValue* v);
Napi::Value toJs(Napi::Env env, const FieldValue& v);

}  // namespace openkvs
