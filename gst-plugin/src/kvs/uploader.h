// The PutMedia upload loop of one stream (producer-protocol.md §3, §4.3–4.4, §8): on the thread
// that calls run(), it keeps PutMedia connections (kvs/http.h) streaming from the content store
// through one curl multi handle. It opens a connection when there is data and a stream header,
// applies the ACKs to the store (and to the spool), drops a connection that failed, got an ERROR
// ack or went stale and rolls back for the next one (with backoff when no ACK came), rotates
// connections (§8.1), asks for the data endpoint again when it is old or keeps failing, sends the
// spool's fragments again before live media, and on a draining stop ends the connections once
// everything is persisted.
//
// Everything it needs from its owner goes through UploadHost: the stream header, credentials, a
// fresh data endpoint, the stop request, and where to report ACKs, errors, connection changes,
// statistics and latency pressure. It knows nothing of the control-plane start-up (KvsStream,
// kvs/stream.h, owns that and the thread), so it can be tested against a PutMedia stub alone.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "kvs/acks.h"
#include "kvs/log.h"
#include "kvs/sigv4.h"
#include "kvs/store.h"

namespace kvs {

class Spool;

struct UploadSettings {
  std::string streamName;
  std::string region = "us-west-2";
  std::string userAgent;
  /// Stream retention; 0: the service sends no PERSISTED acks (RECEIVED is final).
  uint32_t retentionHours = 2;
  bool absoluteTimecodes = true;
  bool fragmentAcks = true;
  bool restartOnError = true;
  std::chrono::nanoseconds replayDuration = std::chrono::seconds(40);
  long connectTimeoutMs = 5000;
  /// CA certificates to trust for https (kvs/tls.h); empty: the system store.
  std::string caCertPath;
  /// PutMedia connections are rotated after this long (AWS: ~40 min minus jitter).
  std::chrono::milliseconds rotationPeriod = std::chrono::minutes(40);
  /// connection-staleness: a connection that sent data and got no ACK back for this long is
  /// dropped, and the next one resends (0: never).
  std::chrono::milliseconds connectionStaleness{0};
  /// max-latency: reportLatencyPressure is called when the media not yet persisted spans more
  /// than this (0: never).
  std::chrono::milliseconds maxLatency{0};
  /// GetDataEndpoint is asked again before a connection opens once the endpoint is this old, and
  /// after three connections in a row failed without an ACK.
  std::chrono::milliseconds endpointRefreshPeriod = std::chrono::minutes(40);
};

struct StreamError {
  std::string message;
  long httpStatus = 0;
  std::string serviceCode;  // exception name or ACK ErrorCode
  uint32_t errorId = 0;     // ACK ErrorId, 0 if none
  bool retryable = false;
  bool fatal = false;
  std::optional<uint64_t> fragmentTimecode;
  /// TLS failed: the endpoint's certificate is not trusted, the CA certificates are unusable,
  /// or the handshake failed (kvs/tls.h). Such errors are fatal, never retried.
  bool tls = false;
};

struct ConnectionEvent {
  uint64_t id = 0;
  std::string state;  // connecting, rotating, closed, dropped
  std::string reason;
  long httpStatus = 0;
};

struct UploadStats {
  uint64_t bytesSent = 0;
  uint64_t fragmentsPersisted = 0;
  uint64_t fragmentsReceived = 0;
  uint64_t fragmentsDropped = 0;
  uint64_t connections = 0;
  size_t bufferedBytes = 0;
  std::chrono::nanoseconds bufferedDuration{0};
  double bitrateBps = 0;
  std::chrono::milliseconds lastAckLatency{0};
};

/// What the owner wants of the upload: go on, drain until `deadline`, or stop at once.
struct UploadStop {
  bool stopping = false;
  bool drain = false;  // with stopping: send everything, wait for it to be persisted, end cleanly
  std::chrono::steady_clock::time_point deadline;  // with drain: give up then
  /// Stopping without a drain, or the drain's deadline passed.
  bool abandoned() const { return stopping && (!drain || std::chrono::steady_clock::now() >= deadline); }
};

/// The uploader's view of its owner. Every method is called on the thread running
/// Uploader::run().
class UploadHost {
 public:
  virtual ~UploadHost() = default;
  /// Read on every turn of the loop; call Uploader::wake() after changing what it returns.
  virtual UploadStop stopRequest() const = 0;
  /// The MKV stream header (EBML, Segment, Info, Tracks) that starts each live connection;
  /// empty while it is unknown (no connection opens).
  virtual std::vector<uint8_t> streamHeader() = 0;
  /// The credentials to sign the next connection with; throws when there are none.
  virtual Credentials credentials() = 0;
  /// GetDataEndpoint again; throws when it fails (the uploader keeps the endpoint it has).
  virtual std::string refreshDataEndpoint() = 0;

  /// Every ACK but IDLE, after it was applied to the store; `latency` is how long the fragment
  /// took from completion to its final ACK (0 for other ACKs).
  virtual void reportAck(const Ack& ack, std::chrono::milliseconds latency) = 0;
  /// A failure; after a fatal one, run() returns.
  virtual void reportError(const StreamError& error) = 0;
  virtual void reportConnection(const ConnectionEvent& event) = 0;
  /// About once a second.
  virtual void reportStats(const UploadStats& stats) = 0;
  /// The media not yet persisted went above maxLatency (once, until it is below again).
  virtual void reportLatencyPressure(std::chrono::nanoseconds buffered) = 0;
};

class Uploader {
 public:
  Uploader(UploadSettings settings, ContentStore& store, UploadHost& host, LogSink log);
  Uploader(const Uploader&) = delete;
  Uploader& operator=(const Uploader&) = delete;

  /// Before live media, each new connection sends what `spool` holds and the store does not (an
  /// earlier run's fragments first); ACKs remove fragments from it. Call before run().
  void useSpool(std::shared_ptr<Spool> spool) { spool_ = std::move(spool); }
  /// Uploads the store to `dataEndpoint` on the calling thread until the host asks to stop (a
  /// drain ends once everything is persisted and every body ended, or at its deadline) or a
  /// fatal error was reported. Returns true when everything was persisted.
  bool run(std::string dataEndpoint);
  /// Interrupts run()'s wait at once (data arrived, or the stop request changed). Any thread.
  void wake();

 private:
  /// Streams `store` over PutMedia: the live store until stopped, or, with `replayHeader`, a
  /// replay store until all of it is persisted. Returns whether everything in it was persisted.
  bool send(ContentStore& store, const std::vector<uint8_t>* replayHeader);
  /// Sends again, batch by batch, the spooled fragments older than what `live` holds.
  void replaySpool(const ContentStore& live);
  void handleAck(ContentStore& store, const Ack& ack);
  void report(const StreamError& e);

  const UploadSettings settings_;
  ContentStore& store_;
  UploadHost& host_;
  LogSink log_;
  std::shared_ptr<Spool> spool_;
  std::mutex multiMutex_;
  void* multi_ = nullptr;  // CURLM* of the send() in progress, for wake()
  std::string dataEndpoint_;
  bool failed_ = false;  // a fatal error was reported
  UploadStats stats_;
  uint64_t acksReceived_ = 0;  // BUFFERING, RECEIVED, PERSISTED and ERROR acks, for staleness
};

}  // namespace kvs
