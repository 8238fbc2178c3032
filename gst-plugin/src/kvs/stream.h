// One stream of kvssink (producer-protocol.md §1.5, §4.4, §8): one uploader thread that owns
// the network. It runs the control-plane start-up (DescribeStream -> CreateStream when allowed ->
// TagStream -> GetDataEndpoint) without blocking the caller, then runs a kvs::Uploader
// (kvs/uploader.h) on the same thread: the PutMedia loop that streams the content store, applies
// ACKs, reconnects, rolls back, rotates connections (§8.1) and drains on stop. KvsStream is the
// uploader's UploadHost: it gives it the stream header, the credentials, a fresh data endpoint
// (GetDataEndpoint again) and the stop request, and passes its reports on.
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
#include "kvs/uploader.h"

namespace kvs {

/// The uploader's settings (kvs/uploader.h) and those of the control-plane start-up.
struct StreamSettings : UploadSettings {
  std::string controlPlaneEndpoint;  // scheme://host[:port]
  std::string mediaType = "video/h264";
  bool allowCreateStream = true;
  std::map<std::string, std::string> tags;
  long completionTimeoutMs = 10000;
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

class KvsStream : private UploadHost {
 public:
  KvsStream(StreamSettings settings, std::shared_ptr<CredentialProvider> credentials, ContentStore& store,
            StreamCallbacks callbacks, LogSink log);
  ~KvsStream() override;
  KvsStream(const KvsStream&) = delete;
  KvsStream& operator=(const KvsStream&) = delete;

  /// Keeps every complete fragment in `spool` until it is acknowledged for good, and sends what
  /// the spool holds and the store does not (an earlier run's fragments first) before live
  /// media on each new connection. Call before start().
  void useSpool(std::shared_ptr<Spool> spool) {
    spool_ = spool;
    uploader_.useSpool(std::move(spool));
  }
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
  /// DescribeStream (CreateStream) -> TagStream -> GetDataEndpoint, retried with backoff.
  /// Returns the data endpoint; nullopt when the stream cannot be used or the stop came first.
  std::optional<std::string> startup();
  /// The stream is stopping without a drain, or the drain's deadline passed.
  bool abandoned() const { return stopRequest().abandoned(); }
  ControlPlaneConfig controlPlaneConfig() const;
  std::shared_ptr<CredentialProvider> credentialProvider();

  // UploadHost: called by uploader_ (reportError by startup() too), on the uploader thread.
  UploadStop stopRequest() const override;
  std::vector<uint8_t> streamHeader() override;
  Credentials credentials() override;
  std::string refreshDataEndpoint() override;
  void reportAck(const Ack& ack, std::chrono::milliseconds latency) override;
  /// Logs, calls onError, and for a fatal error then sets failed().
  void reportError(const StreamError& e) override;
  void reportConnection(const ConnectionEvent& event) override;
  void reportStats(const UploadStats& stats) override;
  void reportLatencyPressure(std::chrono::nanoseconds buffered) override;

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
  std::atomic<bool> draining_{false};  // written before stopping_
  std::atomic<bool> failed_{false};
  std::atomic<bool> allPersisted_{false};
  std::chrono::steady_clock::time_point deadline_;  // written before stopping_
  std::shared_ptr<Spool> spool_;
  Uploader uploader_;  // after the members it is built from
};

}  // namespace kvs
