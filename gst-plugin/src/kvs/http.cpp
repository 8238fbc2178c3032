#include "kvs/http.h"

#include <algorithm>
#include <cstring>

#include "kvs/tls.h"

namespace kvs {

namespace {

std::string hostOf(const std::string& url) {
  auto start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  auto end = url.find('/', start);
  return url.substr(start, end == std::string::npos ? std::string::npos : end - start);
}

std::string producerStartTimestamp() {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld.%03lld", static_cast<long long>(ms / 1000), static_cast<long long>(ms % 1000));
  return buf;
}

}  // namespace

PutMediaConnection::PutMediaConnection(uint64_t id, const PutMediaConfig& config, const Credentials& credentials,
                                       ContentStore& store, ReadCursor start, std::vector<uint8_t> streamHeader,
                                       std::function<void(const Ack&)> onAck, LogSink log)
    : id_(id),
      store_(store),
      cursor_(start),
      header_(std::move(streamHeader)),
      waitPersisted_(config.fragmentAcks && config.waitForPersisted),
      parser_([this](const Ack& a) {
        anyAck_ = true;
        if (a.type == AckType::Error) {
          errored_ = true;
          errorId_ = a.errorId.value_or(0);
        }
        onAck_(a);
      },
              [this](const std::string& why) { logTo(log_, LogLevel::Warning, "ignoring invalid ACK: " + why); }),
      onAck_(std::move(onAck)),
      log_(std::move(log)),
      openedAt_(std::chrono::steady_clock::now()) {
  curl_ = curl_easy_init();
  const std::string url = config.dataEndpoint + "/putMedia";

  SigningInput in;
  in.method = "POST";
  in.path = "/putMedia";
  in.region = config.region;
  in.time = std::chrono::system_clock::now();
  in.payloadSha256Hex = sha256Hex("", 0);
  in.headers = {
      {"connection", "keep-alive"},
      {"host", hostOf(config.dataEndpoint)},
      {"transfer-encoding", "chunked"},
      {"user-agent", config.userAgent},
      {"x-amzn-fragment-acknowledgment-required", config.fragmentAcks ? "1" : "0"},
      {"x-amzn-fragment-timecode-type", config.absoluteTimecodes ? "ABSOLUTE" : "RELATIVE"},
      {"x-amzn-producer-start-timestamp", producerStartTimestamp()},
      {"x-amzn-stream-name", config.streamName},
  };
  std::vector<HttpHeader> all = in.headers;
  for (auto& h : signV4(in, credentials)) all.push_back(std::move(h));
  all.push_back({"content-type", "application/json"});
  for (const auto& h : all) {
    if (h.name == "user-agent") continue;  // set through CURLOPT_USERAGENT
    headers_ = curl_slist_append(headers_, (h.name + ": " + h.value).c_str());
  }
  headers_ = curl_slist_append(headers_, "Expect:");  // no 100-continue round trip

  curl_easy_setopt(curl_, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl_, CURLOPT_POST, 1L);
  curl_easy_setopt(curl_, CURLOPT_HTTPHEADER, headers_);
  curl_easy_setopt(curl_, CURLOPT_USERAGENT, config.userAgent.c_str());
  curl_easy_setopt(curl_, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(curl_, CURLOPT_READFUNCTION, &PutMediaConnection::readTrampoline);
  curl_easy_setopt(curl_, CURLOPT_READDATA, this);
  curl_easy_setopt(curl_, CURLOPT_WRITEFUNCTION, &PutMediaConnection::writeTrampoline);
  curl_easy_setopt(curl_, CURLOPT_WRITEDATA, this);
  curl_easy_setopt(curl_, CURLOPT_CONNECTTIMEOUT_MS, config.connectTimeoutMs);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_LIMIT, 30L);
  curl_easy_setopt(curl_, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(curl_, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(curl_, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl_, CURLOPT_PRIVATE, this);
  curl_easy_setopt(curl_, CURLOPT_ERRORBUFFER, errorBuffer_);
  applyTlsOptions(curl_, config.caCertPath);
}

PutMediaConnection::~PutMediaConnection() {
  if (curl_ != nullptr) curl_easy_cleanup(curl_);
  if (headers_ != nullptr) curl_slist_free_all(headers_);
}

void PutMediaConnection::finishAtBoundary() {
  if (finish_ == Finish::None) finish_ = Finish::AtBoundary;
}

void PutMediaConnection::finishWhenDrained() { finish_ = Finish::WhenDrained; }

void PutMediaConnection::resume() {
  if (!paused_) return;
  paused_ = false;
  curl_easy_pause(curl_, CURLPAUSE_CONT);
}

std::string PutMediaConnection::errorDetail(CURLcode result) const { return curlFailureDetail(errorBuffer_, result); }

long PutMediaConnection::httpStatus() const {
  long status = 0;
  curl_easy_getinfo(curl_, CURLINFO_RESPONSE_CODE, &status);
  return status;
}

size_t PutMediaConnection::readTrampoline(char* buffer, size_t size, size_t nitems, void* self) {
  return static_cast<PutMediaConnection*>(self)->onRead(buffer, size * nitems);
}

size_t PutMediaConnection::writeTrampoline(char* data, size_t size, size_t nmemb, void* self) {
  return static_cast<PutMediaConnection*>(self)->onWrite(data, size * nmemb);
}

size_t PutMediaConnection::onRead(char* buffer, size_t max) {
  if (bodyEnded_) return 0;
  if (errored_) return CURL_READFUNC_ABORT;
  auto* out = reinterpret_cast<uint8_t*>(buffer);
  size_t n = 0;
  if (headerSent_ < header_.size()) {
    n = std::min(max, header_.size() - headerSent_);
    std::memcpy(out, header_.data() + headerSent_, n);
    headerSent_ += n;
  }
  const bool rotating = finish_ == Finish::AtBoundary;
  if (n < max && !(rotating && store_.atFragmentBoundary(cursor_))) {
    n += store_.read(cursor_, out + n, max - n, rotating);
  }
  if (n > 0) {
    bytesSent_ += n;
    return n;
  }
  // Nothing to send now. A finishing connection ends its body once what it sent is persisted
  // (the producer waits for the last PERSISTED ack before ending the body, §5).
  bool atEnd = rotating ? store_.atFragmentBoundary(cursor_) : finish_ == Finish::WhenDrained && store_.drained(cursor_);
  if (atEnd) {
    bool done = !waitPersisted_ || store_.allPersistedBefore(cursor_.fragmentId);
    if (done) {
      bodyEnded_ = true;
      logTo(log_, LogLevel::Debug, "PutMedia connection " + std::to_string(id_) + " ending its body");
      return 0;
    }
  }
  paused_ = true;
  return CURL_READFUNC_PAUSE;
}

size_t PutMediaConnection::onWrite(const char* data, size_t size) {
  parser_.feed(data, size);
  return size;
}

}  // namespace kvs
