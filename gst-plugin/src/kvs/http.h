// One PutMedia request (producer-protocol.md §3): a libcurl easy handle that uploads an endless
// chunked MKV body — the stream header, then fragment bytes read straight from the content
// store at a cursor — and parses the ACK stream of its response as it arrives.
//
// The handle is driven by the uploader's curl multi on the uploader thread; every callback
// here runs on that thread. When the store has nothing to send, the read callback pauses the
// transfer; the uploader resumes it when data arrives.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "kvs/acks.h"
#include "kvs/log.h"
#include "kvs/sigv4.h"
#include "kvs/store.h"

namespace kvs {

struct PutMediaConfig {
  std::string dataEndpoint;  // scheme://host[:port], no trailing slash
  std::string streamName;
  std::string region;
  std::string userAgent;
  bool absoluteTimecodes = true;
  bool fragmentAcks = true;
  /// A finishing connection waits for PERSISTED acks before ending its body (retention > 0).
  bool waitForPersisted = true;
  long connectTimeoutMs = 5000;
  std::string caCertPath;  // CA certificates to trust: a directory or a PEM file (kvs/tls.h); empty: the system store
};

class PutMediaConnection {
 public:
  PutMediaConnection(uint64_t id, const PutMediaConfig& config, const Credentials& credentials, ContentStore& store,
                     ReadCursor start, std::vector<uint8_t> streamHeader, std::function<void(const Ack&)> onAck,
                     LogSink log);
  ~PutMediaConnection();
  PutMediaConnection(const PutMediaConnection&) = delete;
  PutMediaConnection& operator=(const PutMediaConnection&) = delete;

  CURL* handle() const { return curl_; }
  uint64_t id() const { return id_; }

  /// Rotation: ends the body at the next fragment boundary once every fragment it sent is
  /// persisted. The cursor then marks where the next connection starts.
  void finishAtBoundary();
  /// Clean stop: sends everything buffered, then ends the body once it is all persisted.
  void finishWhenDrained();
  bool finishing() const { return finish_ != Finish::None; }
  bool rotatingOut() const { return finish_ == Finish::AtBoundary; }
  /// The body has ended (the terminating chunk is queued).
  bool bodyEnded() const { return bodyEnded_; }

  /// Resumes a paused transfer (data arrived, or an ack may have allowed the body to end).
  void resume();

  const ReadCursor& cursor() const { return cursor_; }
  uint64_t bytesSent() const { return bytesSent_; }
  std::chrono::steady_clock::time_point openedAt() const { return openedAt_; }
  long httpStatus() const;
  /// libcurl's description of why the transfer ended with `result` (its error buffer when set).
  std::string errorDetail(CURLcode result) const;
  /// Set when an ERROR ack arrived: the connection is done for.
  bool errored() const { return errored_; }
  uint32_t errorId() const { return errorId_; }
  bool receivedAnyAck() const { return anyAck_; }

 private:
  static size_t readTrampoline(char* buffer, size_t size, size_t nitems, void* self);
  static size_t writeTrampoline(char* data, size_t size, size_t nmemb, void* self);
  size_t onRead(char* buffer, size_t max);
  size_t onWrite(const char* data, size_t size);

  uint64_t id_;
  ContentStore& store_;
  ReadCursor cursor_;
  std::vector<uint8_t> header_;
  size_t headerSent_ = 0;
  bool waitPersisted_;
  AckParser parser_;
  std::function<void(const Ack&)> onAck_;
  LogSink log_;
  CURL* curl_ = nullptr;
  curl_slist* headers_ = nullptr;
  char errorBuffer_[CURL_ERROR_SIZE] = {0};
  enum class Finish { None, AtBoundary, WhenDrained };
  bool paused_ = false;
  Finish finish_ = Finish::None;
  bool bodyEnded_ = false;
  bool errored_ = false;
  uint32_t errorId_ = 0;
  bool anyAck_ = false;
  uint64_t bytesSent_ = 0;
  std::chrono::steady_clock::time_point openedAt_;
};

}  // namespace kvs
