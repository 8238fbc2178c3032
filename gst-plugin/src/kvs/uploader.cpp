#include "kvs/uploader.h"

#include <curl/curl.h>

#include <algorithm>
#include <exception>

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

Uploader::Uploader(UploadSettings settings, ContentStore& store, UploadHost& host, LogSink log)
    : settings_(std::move(settings)), store_(store), host_(host), log_(std::move(log)) {}

bool Uploader::run(std::string dataEndpoint) {
  dataEndpoint_ = std::move(dataEndpoint);
  return send(store_, nullptr);
}

void Uploader::wake() {
  std::lock_guard<std::mutex> lock(multiMutex_);
  if (multi_ != nullptr) curl_multi_wakeup(static_cast<CURLM*>(multi_));
}

void Uploader::report(const StreamError& e) {
  host_.reportError(e);
  if (e.fatal) failed_ = true;
}

void Uploader::handleAck(ContentStore& store, const Ack& ack) {
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
  host_.reportAck(ack, latency);
}

void Uploader::replaySpool(const ContentStore& live) {
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

bool Uploader::send(ContentStore& store, const std::vector<uint8_t>* replayHeader) {
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
    host_.reportConnection({id, state, std::move(reason), status});
  };

  // The data endpoint is asked again when it is old, or after connections failed three times in
  // a row without an ACK (the ingest host may have moved).
  Clock::time_point endpointAt = Clock::now();
  int failedInARow = 0;
  auto open = [&](ReadCursor at) {
    if (failedInARow >= 3 || Clock::now() - endpointAt >= settings_.endpointRefreshPeriod) {
      failedInARow = 0;
      endpointAt = Clock::now();
      try {
        std::string fresh = host_.refreshDataEndpoint();
        if (fresh != dataEndpoint_) logTo(log_, LogLevel::Info, "data endpoint is now " + fresh);
        dataEndpoint_ = fresh;
        pm.dataEndpoint = std::move(fresh);
      } catch (const std::exception& e) {
        logTo(log_, LogLevel::Warning,
              std::string("GetDataEndpoint (refresh) failed, keeping ") + dataEndpoint_ + ": " + e.what());
      }
      if (host_.stopRequest().abandoned()) return;
    }
    std::vector<uint8_t> header = replayHeader != nullptr ? *replayHeader : host_.streamHeader();
    Credentials c;
    try {
      c = host_.credentials();
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

  bool everythingPersisted = false;  // a draining stop or a replay saw every fragment persisted
  bool reachedDataPlane = false;     // a PutMedia connection got an HTTP response
  struct {
    uint64_t connection = 0, acks = 0, bytesAtAck = 0;
    std::optional<Clock::time_point> unackedSince;  // bytes went out after the last ACK
  } staleness;
  bool latencyPressure = false;
  for (;;) {
    if (failed_) break;
    const UploadStop stop = host_.stopRequest();
    if (stop.stopping && !stop.drain) break;
    // Open a connection when there is something to send: the first one, after a drop, or the
    // successor of a rotating connection once that one reached a fragment boundary (§8.1).
    bool haveCurrent = !conns.empty() && !conns.front()->rotatingOut();
    if (!haveCurrent && Clock::now() >= retryAt && (replayHeader != nullptr || !host_.streamHeader().empty())) {
      if (conns.empty()) {
        // Before the live media: what the spool holds and memory does not (an earlier run's,
        // or fragments the full buffer let go of), oldest first, each batch on connections of
        // its own with the stream header it was made with.
        if (spool_ && replayHeader == nullptr) replaySpool(store);
        const UploadStop after = host_.stopRequest();
        if (failed_ || (after.stopping && !after.drain)) break;
        if (!store.drained(cursor)) open(cursor);
      } else if (store.atFragmentBoundary(conns.front()->cursor()) && !store.drained(conns.front()->cursor())) {
        open(conns.front()->cursor());
      }
    }
    PutMediaConnection* current = conns.empty() || conns.front()->finishing() ? nullptr : conns.front().get();
    if (current && !stop.stopping && Clock::now() - current->openedAt() >= settings_.rotationPeriod) {
      event(current->id(), "rotating", "connection lifetime reached");
      current->finishAtBoundary();
    }
    // A replay ends like a draining stop: once everything is persisted and the bodies ended.
    if (replayHeader != nullptr || (stop.stopping && stop.drain)) {
      if (!conns.empty()) conns.front()->finishWhenDrained();
      if (store.allPersisted() && store.drained(conns.empty() ? cursor : conns.front()->cursor())) {
        everythingPersisted = true;
        if (conns.empty()) break;  // every body ended and its response closed
      }
      if (stop.stopping && Clock::now() >= stop.deadline) {
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
      host_.reportStats(stats_);
      // Latency pressure (max-latency): reported once each time it goes above.
      const bool over = settings_.maxLatency.count() > 0 && s.bufferedDuration > settings_.maxLatency;
      if (over && !latencyPressure) host_.reportLatencyPressure(s.bufferedDuration);
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
  return everythingPersisted || store.allPersisted();
}

}  // namespace kvs
