#include "kvs/acks.h"

#include <array>
#include <limits>
#include <nlohmann/json.hpp>
#include <utility>

namespace kvs {

namespace {

using nlohmann::json;

constexpr std::array<std::pair<const char*, AckType>, 5> kTypes = {{
    {"BUFFERING", AckType::Buffering},
    {"RECEIVED", AckType::Received},
    {"PERSISTED", AckType::Persisted},
    {"ERROR", AckType::Error},
    {"IDLE", AckType::Idle},
}};

// The keys the producer interprets; each may appear once.
constexpr std::array<const char*, 4> kKnownKeys = {"EventType", "FragmentTimecode",
                                                   "FragmentNumber", "ErrorId"};

// Validates one parsed object; returns an error reason, or an empty string and fills `ack`.
std::string toAck(const json& j, Ack& ack) {
  if (!j.is_object()) return "ACK is not a JSON object";

  const auto type = j.find("EventType");
  if (type == j.end()) return "ACK without EventType";
  if (!type->is_string()) return "EventType is not a string";
  const std::string& typeName = type->get_ref<const std::string&>();
  bool known = false;
  for (const auto& [name, value] : kTypes) {
    if (typeName == name) {
      ack.type = value;
      known = true;
    }
  }
  if (!known) return "unknown EventType \"" + typeName + "\"";

  const auto timecode = j.find("FragmentTimecode");
  if (timecode != j.end()) {
    if (!timecode->is_number_unsigned()) return "FragmentTimecode is not an unsigned integer";
    ack.timecode = timecode->get<uint64_t>();
  }

  const auto number = j.find("FragmentNumber");
  if (number != j.end()) {
    if (number->is_string()) {
      ack.fragmentNumber = number->get<std::string>();
    } else if (number->is_number_unsigned()) {
      ack.fragmentNumber = std::to_string(number->get<uint64_t>());
    } else {
      return "FragmentNumber is not a string";
    }
  }

  const auto errorId = j.find("ErrorId");
  if (errorId != j.end()) {
    if (!errorId->is_number_unsigned() ||
        errorId->get<uint64_t>() > std::numeric_limits<uint32_t>::max()) {
      return "ErrorId is not an unsigned 32-bit integer";
    }
    ack.errorId = errorId->get<uint32_t>();
  }
  if (ack.type == AckType::Error && !ack.errorId) return "ERROR ACK without ErrorId";

  const auto errorCode = j.find("ErrorCode");
  if (errorCode != j.end() && errorCode->is_string()) ack.errorCode = errorCode->get<std::string>();
  return {};
}

}  // namespace

AckParser::AckParser(std::function<void(const Ack&)> onAck,
                     std::function<void(const std::string&)> onInvalid)
    : onAck_(std::move(onAck)), onInvalid_(std::move(onInvalid)) {
  object_.reserve(1024);
}

void AckParser::reset() {
  object_.clear();
  depth_ = 0;
  inString_ = false;
  escaped_ = false;
}

void AckParser::feed(const char* data, size_t size) {
  for (size_t i = 0; i < size; ++i) {
    const char c = data[i];
    if (depth_ > 0 && object_.size() >= kMaxObjectSize) {
      abandonObject("ACK object larger than " + std::to_string(kMaxObjectSize) + " bytes");
    }
    if (depth_ == 0) {
      if (c == '{') {
        object_.push_back(c);
        depth_ = 1;
      }
      continue;
    }
    object_.push_back(c);
    if (inString_) {
      if (escaped_) {
        escaped_ = false;
      } else if (c == '\\') {
        escaped_ = true;
      } else if (c == '"') {
        inString_ = false;
      }
    } else if (c == '"') {
      inString_ = true;
    } else if (c == '{' || c == '[') {
      if (++depth_ > kMaxDepth) abandonObject("ACK object nested too deeply");
    } else if (c == '}' || c == ']') {
      if (--depth_ == 0) finishObject();
    }
  }
}

void AckParser::finishObject() {
  const std::string text(object_);
  reset();  // before any callback, which may feed or reset this parser

  unsigned seen = 0;
  bool duplicate = false;
  const json::parser_callback_t track = [&](int depth, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::key && depth == 1) {
      const std::string& key = parsed.get_ref<const std::string&>();
      for (size_t k = 0; k < kKnownKeys.size(); ++k) {
        if (key == kKnownKeys[k]) {
          duplicate = duplicate || (seen & (1u << k)) != 0;
          seen |= 1u << k;
        }
      }
    }
    return true;
  };
  const json j = json::parse(text, track, /*allow_exceptions=*/false);
  if (j.is_discarded()) return invalid("malformed JSON: " + text.substr(0, 200));
  if (duplicate) return invalid("duplicate key in ACK: " + text.substr(0, 200));

  Ack ack;
  const std::string reason = toAck(j, ack);
  if (!reason.empty()) return invalid(reason + ": " + text.substr(0, 200));
  if (onAck_) onAck_(ack);
}

void AckParser::abandonObject(const std::string& reason) {
  reset();
  invalid(reason);
}

void AckParser::invalid(const std::string& reason) {
  if (onInvalid_) onInvalid_(reason);
}

const char* ackTypeName(AckType type) {
  for (const auto& [name, value] : kTypes) {
    if (value == type) return name;
  }
  return "UNKNOWN";
}

}  // namespace kvs
