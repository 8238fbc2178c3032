#include "kvs/stream.h"

#include <curl/curl.h>

#include <algorithm>
#include <memory>

#include "kvs/control_plane.h"
#include "kvs/http.h"
#include "kvs/mkv.h"
#include "kvs/spool.h"
#include "kvs/tls.h"

namespace kvs {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// ACK errors after which the fragment is not sent again (producer-protocol.md §4.4).
bool skipsFragment(uint32_t errorId) {
  switch (errorId) {
    case 4000:
    case 4003:
    case 5000:
    case 5001:
      return false;
    default:
      return errorId >= 4001 && errorId < 5000;
  }
}

/// ACK errors that fail the pipeline in the AWS element.
bool isFatalAck(uint32_t errorId) {
  return errorId == 4005 || errorId == 4007 || errorId == 4008 || errorId == 4010 || errorId == 4012 ||
         (errorId >= 4500 && errorId <= 4507);
}

/// Drops after which the ingest host is known to be alive: roll back only past RECEIVED.
bool hostAliveAfter(uint32_t errorId) {
  return errorId == 0 || errorId == 4000 || errorId == 4003 || errorId == 4008 || errorId == 5000 || errorId == 5001 ||
         (errorId >= 4500 && errorId <= 4507);
}

}  // namespace

KvsStream::KvsStream(StreamSettings settings, std::shared_ptr<CredentialProvider> credentials, ContentStore& store,
                     StreamCallbacks callbacks, LogSink log)
    : settings_(std::move(settings)),
      credentials_(std::move(credentials)),
      store_(store),
      callbacks_(std::move(callbacks)),
      log_(std::move(log)) {}

KvsStream::~KvsStream() { stop(false, Clock::now()); }

void KvsStream::start() {
  if (thread_.joinable()) return;
  store_.setDataCallback([this] {
    std::lock_guard<std::mutex> lock(multiMutex_);
    if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
  });
  if (spool_) {
    store_.setCompleteCallback([this](const FragmentInfo& f, const std::vector<Chunk>& chunks) {
      for (const auto& d : spool_->write(f.timecode, chunks)) {
        if (callbacks_.onSpoolDropped) callbacks_.onSpoolDropped(d.timecode, d.bytes);
      }
    });
  }
  thread_ = std::thread([this] { run(); });
}

void KvsStream::setStreamHeader(std::vector<uint8_t> header) {
  if (spool_) spool_->setHeader(header);
  {
    std::lock_guard<std::mutex> lock(headerMutex_);
    header_ = std::move(header);
  }
  store_.wake();
}

void KvsStream::setCredentials(std::shared_ptr<CredentialProvider> credentials) {
  std::lock_guard<std::mutex> lock(credentialsMutex_);
  credentials_ = std::move(credentials);
}

bool KvsStream::stop(bool drain, Clock::time_point deadline) {
  if (!thread_.joinable()) return allPersisted_;
  deadline_ = deadline;
  draining_ = drain;
  stopping_ = true;
  store_.wake();
  {
    std::lock_guard<std::mutex> lock(multiMutex_);
    if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
  }
  thread_.join();
  store_.setDataCallback({});
  store_.setCompleteCallback({});
  return allPersisted_;
}

void KvsStream::report(StreamError e) {
  logTo(log_, e.fatal ? LogLevel::Error : LogLevel::Warning, e.message);
  if (callbacks_.onError) callbacks_.onError(e);
  // Only now: once failed() is true the element refuses buffers, and upstream then posts its own
  // "data stream error", which must come after this error on the bus.
  if (e.fatal) failed_ = true;
}

void KvsStream::run() {
  if (!startup()) return;
  upload();
}

bool KvsStream::abandoned() const { return stopping_ && (!draining_ || Clock::now() >= deadline_); }

ControlPlaneConfig KvsStream::controlPlaneConfig() const {
  ControlPlaneConfig cfg;
  cfg.endpoint = settings_.controlPlaneEndpoint;
  cfg.region = settings_.region;
  cfg.userAgent = settings_.userAgent;
  cfg.connectTimeoutMs = settings_.connectTimeoutMs;
  cfg.completionTimeoutMs = settings_.completionTimeoutMs;
  cfg.caCertPath = settings_.caCertPath;
  cfg.shouldAbort = [this] { return abandoned(); };
  return cfg;
}

std::optional<std::string> KvsStream::fetchDataEndpoint() {
  std::shared_ptr<CredentialProvider> creds;
  {
    std::lock_guard<std::mutex> lock(credentialsMutex_);
    creds = credentials_;
  }
  try {
    ControlPlane cp(controlPlaneConfig(), *creds, log_);
    return cp.getDataEndpoint(settings_.streamName);
  } catch (const std::exception& e) {
    logTo(log_, LogLevel::Warning, std::string("GetDataEndpoint (refresh) failed, keeping ") + dataEndpoint_ + ": " + e.what());
    return std::nullopt;
  }
}

bool KvsStream::startup() {
  std::shared_ptr<CredentialProvider> creds;
  {
    std::lock_guard<std::mutex> lock(credentialsMutex_);
    creds = credentials_;
  }
  ControlPlane cp(controlPlaneConfig(), *creds, log_);
  Backoff backoff;
  for (int attempt = 1;; attempt++) {
    // A draining stop (EOS) still needs the stream: keep going until its deadline.
    if (abandoned()) return false;
    try {
      auto desc = cp.describeStream(settings_.streamName);
      std::string arn;
      if (!desc) {
        if (!settings_.allowCreateStream) {
          report({"stream " + settings_.streamName + " does not exist and allow-create-stream is false", 404,
                  "ResourceNotFoundException", 0, false, true, std::nullopt});
          return false;
        }
        arn = cp.createStream(settings_.streamName, settings_.mediaType, settings_.retentionHours);
        logTo(log_, LogLevel::Info, "created stream " + settings_.streamName);
      } else {
        if (desc->status != "ACTIVE") throw ControlPlaneError("stream is " + desc->status, ControlPlaneErrorKind::Service, 200, "", true);
        arn = desc->arn;
      }
      if (!settings_.tags.empty()) {
        try {
          cp.tagStream(arn, settings_.tags);
        } catch (const ControlPlaneError& e) {
          report({std::string("TagStream failed: ") + e.what(), e.httpStatus, e.serviceCode, 0, true, false, std::nullopt});
        }
      }
      dataEndpoint_ = cp.getDataEndpoint(settings_.streamName);
      logTo(log_, LogLevel::Info, "stream " + settings_.streamName + " ready, data endpoint " + dataEndpoint_);
      if (callbacks_.onReady) callbacks_.onReady(arn);
      return true;
    } catch (const ControlPlaneError& e) {
      if (abandoned()) return false;  // aborted because the element is stopping
      bool auth = e.httpStatus == 401 || e.httpStatus == 403;
      bool fatal = attempt >= 5 || (!e.retryable && !auth);
      report({std::string("control plane: ") + e.what(), e.httpStatus, e.serviceCode, 0, !fatal, fatal, std::nullopt,
              e.kind == ControlPlaneErrorKind::Tls});
      if (fatal) return false;
    } catch (const std::exception& e) {
      if (abandoned()) return false;
      bool fatal = attempt >= 5;
      report({std::string("control plane: ") + e.what(), 0, "", 0, !fatal, fatal, std::nullopt});
      if (fatal) return false;
    }
    // Back off, in short slices so a stop is noticed at once (a wake-up that came before the
    // wait began would otherwise be missed).
    for (auto until = Clock::now() + backoff.next(); Clock::now() < until && !abandoned();) {
      store_.waitForData(ReadCursor{UINT64_MAX, 0, 0}, std::min(milliseconds(100), std::chrono::duration_cast<milliseconds>(until - Clock::now()) + milliseconds(1)));
    }
  }
}

void KvsStream::handleAck(ContentStore& store, const Ack& ack) {
  if (ack.type == AckType::Idle) return;
  acksReceived_++;
  milliseconds latency{0};
  if (ack.timecode) {
    switch (ack.type) {
      case AckType::Buffering:
        store.ack(FragmentState::Buffering, *ack.timecode);
        break;
      case AckType::Received: {
        stats_.fragmentsReceived++;
        bool final = !settings_.fragmentAcks || settings_.retentionHours == 0;
        auto f = store.ack(final ? FragmentState::Persisted : FragmentState::Received, *ack.timecode);
        if (final && f) latency = std::chrono::duration_cast<milliseconds>(Clock::now() - f->completedAt);
        if (final && spool_) spool_->remove(*ack.timecode);
        break;
      }
      case AckType::Persisted: {
        auto f = store.ack(FragmentState::Persisted, *ack.timecode);
        if (spool_) spool_->remove(*ack.timecode);
        stats_.fragmentsPersisted++;
        if (f && f->complete) {
          latency = std::chrono::duration_cast<milliseconds>(Clock::now() - f->completedAt);
          stats_.lastAckLatency = latency;
        }
        break;
      }
      case AckType::Error:
        if (skipsFragment(ack.errorId.value_or(0))) {
          store.skip(*ack.timecode);
          if (spool_) spool_->remove(*ack.timecode);  // the service will never take it
        }
        break;
      case AckType::Idle:
        break;
    }
  }
  if (ack.type == AckType::Error) {
    uint32_t id = ack.errorId.value_or(0);
    bool fatal = isFatalAck(id) || !settings_.restartOnError;
    report({"PutMedia ERROR ack " + std::to_string(id) + (ack.errorCode.empty() ? "" : " " + ack.errorCode), 200,
            ack.errorCode, id, !fatal, fatal, ack.timecode});
  }
  if (callbacks_.onAck) callbacks_.onAck(ack, latency);
}

void KvsStream::upload() { send(store_, nullptr); }

void KvsStream::replaySpool(const ContentStore& live) {
  constexpr uint64_t kBatchBytes = 32ull << 20;
  for (;;) {
    const uint64_t before = live.oldestTimecode().value_or(UINT64_MAX);
    auto batch = spool_->nextBatch(before, kBatchBytes);
    if (!batch) return;
    logTo(log_, LogLevel::Info,
          "sending " + std::to_string(batch->fragments.size()) + " spooled fragments again" +
              (batch->currentSession ? "" : " (from an earlier run)"));
    uint64_t total = 0;
    for (const auto& f : batch->fragments) total += f.second.size();
    ContentStore replay(static_cast<size_t>(total) + (1u << 20), std::chrono::hours(24 * 365));
    for (auto& [timecode, bytes] : batch->fragments) {
      replay.beginFragment(timecode, 0, Chunk::adopt(std::move(bytes)));
    }
    // The end-of-fragment tag lets the service complete the last one before the body ends.
    replay.closeFragment(Chunk::adopt(MkvWriter::endOfFragmentTags()));
    if (!send(replay, &batch->header)) return;  // stopping, or failed
  }
}

bool KvsStream::send(ContentStore& store, const std::vector<uint8_t>* replayHeader) {
  CURLM* multi = curl_multi_init();
  void* outer = nullptr;  // a replay runs inside the live upload: its multi handle comes back after
  {
    std::lock_guard<std::mutex> lock(multiMutex_);
    outer = multi_;
    multi_ = multi;
  }
  PutMediaConfig pm;
  pm.dataEndpoint = dataEndpoint_;
  pm.streamName = settings_.streamName;
  pm.region = settings_.region;
  pm.userAgent = settings_.userAgent;
  pm.absoluteTimecodes = settings_.absoluteTimecodes;
  pm.fragmentAcks = settings_.fragmentAcks;
  pm.waitForPersisted = settings_.retentionHours > 0;
  pm.connectTimeoutMs = settings_.connectTimeoutMs;
  pm.caCertPath = settings_.caCertPath;

  std::vector<std::unique_ptr<PutMediaConnection>> conns;  // [0] current; others finishing
  uint64_t nextId = 1;
  ReadCursor cursor = store.tailCursor();
  Backoff backoff;
  Clock::time_point retryAt = Clock::now();
  Clock::time_point lastStats = Clock::now();
  uint64_t lastBytes = 0;

  auto event = [&](uint64_t id, const char* state, std::string reason, long status = 0) {
    logTo(log_, LogLevel::Info, "connection " + std::to_string(id) + " " + state + (reason.empty() ? "" : ": " + reason));
    if (callbacks_.onConnection) callbacks_.onConnection({id, state, std::move(reason), status});
  };

  // The data endpoint is asked again when it is old, or after connections failed three times in
  // a row without an ACK (the ingest host may have moved).
  Clock::time_point endpointAt = Clock::now();
  int failedInARow = 0;
  auto open = [&](ReadCursor at) {
    if (failedInARow >= 3 || Clock::now() - endpointAt >= settings_.endpointRefreshPeriod) {
      failedInARow = 0;
      endpointAt = Clock::now();
      if (auto fresh = fetchDataEndpoint()) {
        if (*fresh != dataEndpoint_) logTo(log_, LogLevel::Info, "data endpoint is now " + *fresh);
        dataEndpoint_ = *fresh;
        pm.dataEndpoint = *fresh;
      }
      if (abandoned()) return;
    }
    std::vector<uint8_t> header;
    if (replayHeader != nullptr) {
      header = *replayHeader;
    } else {
      std::lock_guard<std::mutex> lock(headerMutex_);
      header = header_;
    }
    std::shared_ptr<CredentialProvider> creds;
    {
      std::lock_guard<std::mutex> lock(credentialsMutex_);
      creds = credentials_;
    }
    Credentials c;
    try {
      c = creds->get();
    } catch (const std::exception& e) {
      report({std::string("credentials: ") + e.what(), 0, "", 0, true, false, std::nullopt});
      retryAt = Clock::now() + backoff.next();
      return;
    }
    uint64_t id = nextId++;
    auto conn = std::make_unique<PutMediaConnection>(id, pm, c, store, at, std::move(header),
                                                     [this, &store](const Ack& a) { handleAck(store, a); }, log_);
    curl_multi_add_handle(multi, conn->handle());
    stats_.connections++;
    event(id, "connecting", "");
    conns.insert(conns.begin(), std::move(conn));
  };

  uint64_t closedBytes = 0;
  // Ends every connection after `dropped` failed; the next one resends from the rollback point.
  auto dropAll = [&](PutMediaConnection& dropped, bool hostAlive, const std::string& reason, long status) {
    cursor = store.rollback(dropped.cursor(), hostAlive, settings_.replayDuration);
    event(dropped.id(), "dropped", reason, status);
    bool progressed = dropped.receivedAnyAck();
    failedInARow = progressed ? 0 : failedInARow + 1;
    if (progressed) backoff.reset();
    retryAt = Clock::now() + (progressed ? milliseconds(0) : backoff.next());
    if (!settings_.restartOnError) {
      report({"PutMedia connection dropped (" + reason + ") and restart-on-error is false", status, "", 0, false, true,
              std::nullopt});
    }
    for (auto& c : conns) {
      closedBytes += c->bytesSent();
      curl_multi_remove_handle(multi, c->handle());
    }
    conns.clear();
  };

  bool hasHeader = false;
  bool reachedDataPlane = false;  // a PutMedia connection got an HTTP response
  struct {
    uint64_t connection = 0, acks = 0, bytesAtAck = 0;
    std::optional<Clock::time_point> unackedSince;  // bytes went out after the last ACK
  } staleness;
  bool latencyPressure = false;
  for (;;) {
    if (failed_) break;
    const bool stopping = stopping_;
    if (stopping && !draining_) break;
    if (replayHeader != nullptr) {
      hasHeader = true;
    } else {
      std::lock_guard<std::mutex> lock(headerMutex_);
      hasHeader = !header_.empty();
    }
    // Open a connection when there is something to send: the first one, after a drop, or the
    // successor of a rotating connection once that one reached a fragment boundary (§8.1).
    bool haveCurrent = !conns.empty() && !conns.front()->rotatingOut();
    if (!haveCurrent && hasHeader && Clock::now() >= retryAt) {
      if (conns.empty()) {
        // Before the live media: what the spool holds and memory does not (an earlier run's,
        // or fragments the full buffer let go of), oldest first, each batch on connections of
        // its own with the stream header it was made with.
        if (spool_ && replayHeader == nullptr) replaySpool(store);
        if (failed_ || (stopping_ && !draining_)) break;
        if (!store.drained(cursor)) open(cursor);
      } else if (store.atFragmentBoundary(conns.front()->cursor()) && !store.drained(conns.front()->cursor())) {
        open(conns.front()->cursor());
      }
    }
    PutMediaConnection* current = conns.empty() || conns.front()->finishing() ? nullptr : conns.front().get();
    if (current && !stopping && Clock::now() - current->openedAt() >= settings_.rotationPeriod) {
      event(current->id(), "rotating", "connection lifetime reached");
      current->finishAtBoundary();
    }
    // A replay ends like a draining stop: once everything is persisted and the bodies ended.
    if (replayHeader != nullptr || (stopping && draining_)) {
      if (!conns.empty()) conns.front()->finishWhenDrained();
      if (store.allPersisted() && store.drained(conns.empty() ? cursor : conns.front()->cursor())) {
        if (replayHeader == nullptr) allPersisted_ = true;
        if (conns.empty()) break;  // every body ended and its response closed
      }
      if (stopping && Clock::now() >= deadline_) {
        logTo(log_, LogLevel::Warning, "stop timeout reached before every fragment was persisted");
        break;
      }
    }

    for (auto& c : conns) c->resume();
    int running = 0;
    curl_multi_perform(multi, &running);

    int queued = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
      if (msg->msg != CURLMSG_DONE) continue;
      auto it = std::find_if(conns.begin(), conns.end(), [&](auto& c) { return c->handle() == msg->easy_handle; });
      if (it == conns.end()) continue;
      PutMediaConnection& c = **it;
      long status = c.httpStatus();
      CURLcode result = msg->data.result;
      if (result == CURLE_OK && status == 200 && c.bodyEnded() && !c.errored()) {
        event(c.id(), "closed", "");
        if (it == conns.begin()) cursor = c.cursor();
        closedBytes += c.bytesSent();
        curl_multi_remove_handle(multi, c.handle());
        conns.erase(it);
        continue;
      }
      if (status > 0 || c.receivedAnyAck()) reachedDataPlane = true;
      // Dropped: every connection restarts from the rollback point (§8.2).
      std::string reason = result != CURLE_OK ? curl_easy_strerror(result) : "HTTP " + std::to_string(status);
      // A refused certificate or unusable CA file fails the same way on every retry: fatal. A
      // failed handshake is too, unless PutMedia worked before (then it is a network hiccup).
      const TlsFailure tls = classifyTlsFailure(result);
      if (tls != TlsFailure::None && (tls != TlsFailure::Handshake || !reachedDataPlane)) {
        event(c.id(), "dropped", reason, status);
        report({"PutMedia: " + describeTlsFailure(tls, dataEndpoint_, settings_.caCertPath, c.errorDetail(result)), 0,
                "", 0, false, true, std::nullopt, true});
        break;  // failed_ is set: the loop ends
      }
      if (status == 401 || status == 403) {
        report({"PutMedia refused: HTTP " + std::to_string(status), status, "NotAuthorizedException", 0, true, false,
                std::nullopt});
      } else if (status >= 300) {
        report({"PutMedia failed: HTTP " + std::to_string(status), status, "", 0, true, false, std::nullopt});
      }
      dropAll(c, (result == CURLE_OK || c.receivedAnyAck()) && status < 300, reason, status);
      break;
    }
    // An ERROR ack ends the connection for the producer (§4.4).
    for (auto& c : conns) {
      if (!c->errored()) continue;
      dropAll(*c, hostAliveAfter(c->errorId()), "ERROR ack " + std::to_string(c->errorId()), 200);
      break;
    }

    auto now = Clock::now();
    // Staleness: the current connection sent bytes after the last ACK and none came back for
    // connection-staleness. The server or the path is stuck: drop it; the next one resends.
    if (settings_.connectionStaleness.count() > 0 && !conns.empty()) {
      PutMediaConnection& c = *conns.front();
      if (c.id() != staleness.connection || acksReceived_ != staleness.acks) {
        staleness = {c.id(), acksReceived_, c.bytesSent(), std::nullopt};
      } else if (c.bytesSent() > staleness.bytesAtAck && !staleness.unackedSince) {
        staleness.unackedSince = now;
      } else if (staleness.unackedSince && now - *staleness.unackedSince >= settings_.connectionStaleness) {
        const auto ms = std::chrono::duration_cast<milliseconds>(settings_.connectionStaleness).count();
        dropAll(c, false, "stale: no acknowledgement for " + std::to_string(ms) + " ms", 0);
      }
    }

    if (now - lastStats >= std::chrono::seconds(1)) {
      stats_.bytesSent = closedBytes;
      for (auto& c : conns) stats_.bytesSent += c->bytesSent();
      StoreStats s = store.stats();
      stats_.bufferedBytes = s.bufferedBytes;
      stats_.bufferedDuration = s.bufferedDuration;
      stats_.fragmentsDropped = s.droppedFragments;
      double secs = std::chrono::duration<double>(now - lastStats).count();
      stats_.bitrateBps = static_cast<double>(stats_.bytesSent - lastBytes) * 8.0 / secs;
      lastBytes = stats_.bytesSent;
      lastStats = now;
      if (callbacks_.onStats) callbacks_.onStats(stats_);
      // Latency pressure (max-latency): reported once each time it goes above.
      const bool over = settings_.maxLatency.count() > 0 && s.bufferedDuration > settings_.maxLatency;
      if (over && !latencyPressure && callbacks_.onLatencyPressure) callbacks_.onLatencyPressure(s.bufferedDuration);
      latencyPressure = over;
    }
    curl_multi_poll(multi, nullptr, 0, 100, nullptr);
  }

  for (auto& c : conns) curl_multi_remove_handle(multi, c->handle());
  conns.clear();
  {
    std::lock_guard<std::mutex> lock(multiMutex_);
    multi_ = outer;
  }
  curl_multi_cleanup(multi);
  const bool persisted = store.allPersisted();
  if (replayHeader == nullptr && persisted) allPersisted_ = true;
  return persisted;
}

}  // namespace kvs
