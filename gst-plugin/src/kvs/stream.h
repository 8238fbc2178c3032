// The upload state machine of one stream (producer-protocol.md §1.5, §4.4, §8): one uploader
// thread that owns the network. It runs the control-plane start-up (DescribeStream ->
// CreateStream when allowed -> TagStream -> GetDataEndpoint) without blocking the caller, then
// keeps a PutMedia connection streaming from the content store: it opens connections when there
// is data, applies ACKs to the store, reconnects with backoff and rolls back after a dropped
// connection or an ERROR ack, rotates connections (§8.1) and drains on stop.
//
// Everything is reported through StreamCallbacks, called on the uploader thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "kvs/acks.h"
#include "kvs/control_plane.h"
#include "kvs/credentials.h"
#include "kvs/log.h"
#include "kvs/store.h"

namespace kvs {

struct StreamSettings {
  std::string streamName;
  std::string region = "us-west-2";
  std::string controlPlaneEndpoint;  // scheme://host[:port]
  std::string userAgent;
  std::string mediaType = "video/h264";
  uint32_t retentionHours = 2;
  bool allowCreateStream = true;
  std::map<std::string, std::string> tags;
  bool absoluteTimecodes = true;
  bool fragmentAcks = true;
  bool restartOnError = true;
  std::chrono::nanoseconds replayDuration = std::chrono::seconds(40);
  long connectTimeoutMs = 5000;
  long completionTimeoutMs = 10000;
  /// CA certificates to trust for https (kvs/tls.h); empty: the system store.
  std::string caCertPath;
  /// PutMedia connections are rotated after this long (AWS: ~40 min minus jitter).
  std::chrono::milliseconds rotationPeriod = std::chrono::minutes(40);
  /// connection-staleness: a connection that sent data and got no ACK back for this long is
  /// dropped, and the next one resends (0: never).
  std::chrono::milliseconds connectionStaleness{0};
  /// max-latency: onLatencyPressure is called when the media not yet persisted spans more than
  /// this (0: never).
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

struct StreamCallbacks {
  std::function<void(const std::string& arn)> onReady;
  std::function<void(const Ack&, std::chrono::milliseconds latency)> onAck;
  std::function<void(const StreamError&)> onError;
  std::function<void(const ConnectionEvent&)> onConnection;
  std::function<void(const UploadStats&)> onStats;
  /// The media not yet persisted went above maxLatency (once, until it is below again).
  std::function<void(std::chrono::nanoseconds buffered)> onLatencyPressure;
  /// The spool was full: this fragment's file was deleted unsent (called on the writing thread).
  std::function<void(uint64_t timecode, uint64_t bytes)> onSpoolDropped;
};

class Spool;

class KvsStream {
 public:
  KvsStream(StreamSettings settings, std::shared_ptr<CredentialProvider> credentials, ContentStore& store,
            StreamCallbacks callbacks, LogSink log);
  ~KvsStream();
  KvsStream(const KvsStream&) = delete;
  KvsStream& operator=(const KvsStream&) = delete;

  /// Keeps every complete fragment in `spool` until it is acknowledged for good, and sends what
  /// the spool holds and the store does not (an earlier run's fragments first) before live
  /// media on each new connection. Call before start().
  void useSpool(std::shared_ptr<Spool> spool) { spool_ = std::move(spool); }
  /// Starts the uploader thread (control-plane start-up happens there).
  void start();
  /// The MKV stream header (EBML, Segment, Info, Tracks) that starts every connection. The
  /// first connection opens once it is set and the store has data.
  void setStreamHeader(std::vector<uint8_t> header);
  /// Stops the thread. With `drain`, waits until every fragment is persisted (or the
  /// deadline passes) and ends the connections cleanly; without, aborts at once.
  /// Returns true when everything was persisted.
  bool stop(bool drain, std::chrono::steady_clock::time_point deadline);
  /// Replaces the credentials used for the next signature.
  void setCredentials(std::shared_ptr<CredentialProvider> credentials);
  bool failed() const { return failed_; }

 private:
  void run();
  bool startup();
  void upload();
  /// Streams `store` over PutMedia: the live store until stopped, or, with `replayHeader`, a
  /// replay store until all of it is persisted. Returns whether everything in it was persisted.
  bool send(ContentStore& store, const std::vector<uint8_t>* replayHeader);
  /// Sends again, batch by batch, the spooled fragments older than what `live` holds.
  void replaySpool(const ContentStore& live);
  /// The stream is stopping without a drain, or the drain's deadline passed.
  bool abandoned() const;
  ControlPlaneConfig controlPlaneConfig() const;
  /// GetDataEndpoint again; nullopt (logged) when it fails.
  std::optional<std::string> fetchDataEndpoint();
  void handleAck(ContentStore& store, const Ack& ack);
  void report(StreamError e);

  StreamSettings settings_;
  std::shared_ptr<CredentialProvider> credentials_;
  std::mutex credentialsMutex_;
  ContentStore& store_;
  StreamCallbacks callbacks_;
  LogSink log_;
  std::thread thread_;
  std::mutex headerMutex_;
  std::vector<uint8_t> header_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> draining_{false};
  std::atomic<bool> failed_{false};
  std::atomic<bool> allPersisted_{false};
  std::chrono::steady_clock::time_point deadline_;
  void* multi_ = nullptr;  // CURLM*, created by the uploader thread
  std::mutex multiMutex_;
  std::string dataEndpoint_;
  UploadStats stats_;
  std::shared_ptr<Spool> spool_;
  uint64_t acksReceived_ = 0;  // BUFFERING, RECEIVED, PERSISTED and ERROR acks, for staleness
};

}  // namespace kvs
