#include "kvs/stream.h"

#include <algorithm>

#include "kvs/spool.h"

namespace kvs {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

}  // namespace

KvsStream::KvsStream(StreamSettings settings, std::shared_ptr<CredentialProvider> credentials, ContentStore& store,
                     StreamCallbacks callbacks, LogSink log)
    : settings_(std::move(settings)),
      credentials_(std::move(credentials)),
      store_(store),
      callbacks_(std::move(callbacks)),
      log_(std::move(log)),
      uploader_(settings_, store_, *this, log_) {}

KvsStream::~KvsStream() { stop(false, Clock::now()); }

void KvsStream::start() {
  if (thread_.joinable()) return;
  store_.setDataCallback([this] { uploader_.wake(); });
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

std::shared_ptr<CredentialProvider> KvsStream::credentialProvider() {
  std::lock_guard<std::mutex> lock(credentialsMutex_);
  return credentials_;
}

bool KvsStream::stop(bool drain, Clock::time_point deadline) {
  if (!thread_.joinable()) return allPersisted_;
  deadline_ = deadline;
  draining_ = drain;
  stopping_ = true;
  store_.wake();
  uploader_.wake();
  thread_.join();
  store_.setDataCallback({});
  store_.setCompleteCallback({});
  return allPersisted_;
}

void KvsStream::reportError(const StreamError& e) {
  logTo(log_, e.fatal ? LogLevel::Error : LogLevel::Warning, e.message);
  if (callbacks_.onError) callbacks_.onError(e);
  // Only now: once failed() is true the element refuses buffers, and upstream then posts its own
  // "data stream error", which must come after this error on the bus.
  if (e.fatal) failed_ = true;
}

void KvsStream::run() {
  const std::optional<std::string> dataEndpoint = startup();
  if (!dataEndpoint) return;
  if (uploader_.run(*dataEndpoint)) allPersisted_ = true;
}

UploadStop KvsStream::stopRequest() const {
  UploadStop s;
  s.stopping = stopping_;
  if (s.stopping) {  // draining_ and deadline_ were written before stopping_
    s.drain = draining_;
    s.deadline = deadline_;
  }
  return s;
}

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

std::optional<std::string> KvsStream::startup() {
  std::shared_ptr<CredentialProvider> creds = credentialProvider();
  ControlPlane cp(controlPlaneConfig(), *creds, log_);
  Backoff backoff;
  for (int attempt = 1;; attempt++) {
    // A draining stop (EOS) still needs the stream: keep going until its deadline.
    if (abandoned()) return std::nullopt;
    try {
      auto desc = cp.describeStream(settings_.streamName);
      std::string arn;
      if (!desc) {
        if (!settings_.allowCreateStream) {
          reportError({"stream " + settings_.streamName + " does not exist and allow-create-stream is false", 404,
                       "ResourceNotFoundException", 0, false, true, std::nullopt});
          return std::nullopt;
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
          reportError({std::string("TagStream failed: ") + e.what(), e.httpStatus, e.serviceCode, 0, true, false,
                       std::nullopt});
        }
      }
      std::string dataEndpoint = cp.getDataEndpoint(settings_.streamName);
      logTo(log_, LogLevel::Info, "stream " + settings_.streamName + " ready, data endpoint " + dataEndpoint);
      if (callbacks_.onReady) callbacks_.onReady(arn);
      return dataEndpoint;
    } catch (const ControlPlaneError& e) {
      if (abandoned()) return std::nullopt;  // aborted because the element is stopping
      bool auth = e.httpStatus == 401 || e.httpStatus == 403;
      bool fatal = attempt >= 5 || (!e.retryable && !auth);
      reportError({std::string("control plane: ") + e.what(), e.httpStatus, e.serviceCode, 0, !fatal, fatal,
                   std::nullopt, e.kind == ControlPlaneErrorKind::Tls});
      if (fatal) return std::nullopt;
    } catch (const std::exception& e) {
      if (abandoned()) return std::nullopt;
      bool fatal = attempt >= 5;
      reportError({std::string("control plane: ") + e.what(), 0, "", 0, !fatal, fatal, std::nullopt});
      if (fatal) return std::nullopt;
    }
    // Back off, in short slices so a stop is noticed at once (a wake-up that came before the
    // wait began would otherwise be missed).
    for (auto until = Clock::now() + backoff.next(); Clock::now() < until && !abandoned();) {
      store_.waitForData(ReadCursor{UINT64_MAX, 0, 0}, std::min(milliseconds(100), std::chrono::duration_cast<milliseconds>(until - Clock::now()) + milliseconds(1)));
    }
  }
}

// ---- UploadHost ----

std::vector<uint8_t> KvsStream::streamHeader() {
  std::lock_guard<std::mutex> lock(headerMutex_);
  return header_;
}

Credentials KvsStream::credentials() { return credentialProvider()->get(); }

std::string KvsStream::refreshDataEndpoint() {
  std::shared_ptr<CredentialProvider> creds = credentialProvider();
  ControlPlane cp(controlPlaneConfig(), *creds, log_);
  return cp.getDataEndpoint(settings_.streamName);
}

void KvsStream::reportAck(const Ack& ack, milliseconds latency) {
  if (callbacks_.onAck) callbacks_.onAck(ack, latency);
}

void KvsStream::reportConnection(const ConnectionEvent& event) {
  if (callbacks_.onConnection) callbacks_.onConnection(event);
}

void KvsStream::reportStats(const UploadStats& stats) {
  if (callbacks_.onStats) callbacks_.onStats(stats);
}

void KvsStream::reportLatencyPressure(std::chrono::nanoseconds buffered) {
  if (callbacks_.onLatencyPressure) callbacks_.onLatencyPressure(buffered);
}

}  // namespace kvs
