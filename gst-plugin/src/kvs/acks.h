// Parser for the PutMedia response body: a stream of flat JSON ACK objects (§4.1–4.2 of
// docs/spec/producer-protocol.md), e.g.
//   {"EventType":"PERSISTED","FragmentTimecode":1612524911136,"FragmentNumber":"9134..."}
//
// Unlike the AWS parser it accepts the body in chunks of any size (an object may be split
// anywhere, several objects may share a chunk). Object boundaries are found by tracking braces
// outside JSON strings (escapes included) across chunks; each complete object is then parsed
// with nlohmann::json and validated:
//   - EventType is required and must be BUFFERING, RECEIVED, PERSISTED, ERROR or IDLE;
//   - FragmentTimecode and ErrorId, when present, must be unsigned JSON integers (ErrorId
//     <= 2^32-1); ERROR requires ErrorId;
//   - FragmentNumber, when present, must be a string (or an unsigned integer, kept as its
//     decimal text); ErrorCode is taken when it is a string;
//   - a repeated EventType / FragmentTimecode / FragmentNumber / ErrorId key is an error;
//   - other keys are ignored.
// Anything outside objects (newlines, other bytes) is skipped. An object larger than
// kMaxObjectSize or nested deeper than kMaxDepth is abandoned and parsing resumes at the next
// '{' after the point where the limit was hit, so a broken server cannot grow memory.
//
// Plain C++, no GStreamer types. Not thread-safe; use one parser per response body.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace kvs {

enum class AckType { Buffering, Received, Persisted, Error, Idle };

struct Ack {
  AckType type = AckType::Idle;
  std::optional<uint64_t> timecode;  // FragmentTimecode: the cluster Timecode, in MKV units
  std::string fragmentNumber;        // FragmentNumber; empty if absent
  std::optional<uint32_t> errorId;   // ErrorId; always set for AckType::Error
  std::string errorCode;             // ErrorCode (e.g. "INVALID_MKV_DATA"); empty if absent
};

class AckParser {
 public:
  static constexpr size_t kMaxObjectSize = 64 * 1024;
  static constexpr int kMaxDepth = 32;

  // onAck is called for each complete, valid object; onInvalid (optional) with a short reason
  // for each rejected object. Both are called from inside feed().
  explicit AckParser(std::function<void(const Ack&)> onAck,
                     std::function<void(const std::string&)> onInvalid = {});

  // Feeds the next bytes of the response body.
  void feed(const char* data, size_t size);

  // Drops any partial object (e.g. when the connection is replaced).
  void reset();

 private:
  void finishObject();
  void abandonObject(const std::string& reason);
  void invalid(const std::string& reason);

  std::function<void(const Ack&)> onAck_;
  std::function<void(const std::string&)> onInvalid_;
  std::string object_;  // bytes of the current object, from its '{'
  int depth_ = 0;       // 0: between objects
  bool inString_ = false;
  bool escaped_ = false;
};

// "BUFFERING", "RECEIVED", "PERSISTED", "ERROR" or "IDLE".
const char* ackTypeName(AckType type);

}  // namespace kvs
