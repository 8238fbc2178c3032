#include "kvs/control_plane.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <vector>
#include "kvs/text.h"
#include "kvs/tls.h"

namespace kvs {
namespace {

using json = nlohmann::json;
using ordered_json = nlohmann::ordered_json;

constexpr size_t kMaxResponseBytes = 1 << 20;

bool startsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string withoutTrailingSlash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

std::string envOr(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::string(v) : fallback;
}

struct UrlParts {
  std::string scheme;  // lower case
  std::string host;    // without port or user info; IPv6 literals keep their brackets
  std::string path;    // "" when none
  std::string query;
};

std::optional<UrlParts> parseUrl(const std::string& url) {
  const size_t schemeEnd = url.find("://");
  if (schemeEnd == std::string::npos || schemeEnd == 0) return std::nullopt;
  UrlParts parts;
  parts.scheme = toLower(url.substr(0, schemeEnd));
  const size_t authorityStart = schemeEnd + 3;
  size_t authorityEnd = url.find_first_of("/?#", authorityStart);
  if (authorityEnd == std::string::npos) authorityEnd = url.size();
  std::string authority = url.substr(authorityStart, authorityEnd - authorityStart);
  const size_t at = authority.rfind('@');
  if (at != std::string::npos) authority.erase(0, at + 1);
  if (!authority.empty() && authority[0] == '[') {
    parts.host = authority.substr(0, authority.find(']') + 1);
  } else {
    parts.host = authority.substr(0, authority.find(':'));  // host without port (§1.2)
  }
  std::string rest = url.substr(authorityEnd);
  rest = rest.substr(0, rest.find('#'));
  const size_t q = rest.find('?');
  parts.path = rest.substr(0, q);
  if (q != std::string::npos) parts.query = rest.substr(q + 1);
  if (parts.host.empty()) return std::nullopt;
  return parts;
}

// §1.5 step 3: before the first ',', then before the first ':', then after a '#'.
std::string sanitizeErrorCode(std::string code) {
  code = code.substr(0, code.find(','));
  code = code.substr(0, code.find(':'));
  const size_t hash = code.rfind('#');
  if (hash != std::string::npos) code.erase(0, hash + 1);
  return trim(code);
}

// Printable, bounded excerpt of a body for error messages.
std::string excerpt(const std::string& body, size_t max = 200) {
  std::string out;
  for (char c : body.substr(0, max)) {
    out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? ' ' : c);
  }
  if (body.size() > max) out += "...";
  return out;
}

std::string dumpBody(const ordered_json& body) {
  // One key per line with tab indentation, like the producer's request templates (§1.2).
  return body.dump(1, '\t', false, json::error_handler_t::replace);
}

std::string stringField(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void ensureCurlInitialized() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

struct CurlDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};

struct Received {
  long status = 0;
  std::string body;
  bool bodyTooLarge = false;
  std::string errorType;
  std::string requestId;
};

/// Non-zero aborts the transfer (CURLE_ABORTED_BY_CALLBACK).
int onProgress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return (*static_cast<const std::function<bool()>*>(userdata))() ? 1 : 0;
}

size_t onBody(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Received*>(user);
  const size_t n = size * count;
  if (r->body.size() + n > kMaxResponseBytes) {
    r->bodyTooLarge = true;
    return 0;  // aborts the transfer
  }
  r->body.append(data, n);
  return n;
}

size_t onHeader(char* data, size_t size, size_t count, void* user) {
  auto* r = static_cast<Received*>(user);
  const size_t n = size * count;
  const std::string line(data, n);
  if (startsWith(line, "HTTP/")) {  // a new response (e.g. after 100 Continue)
    r->errorType.clear();
    r->requestId.clear();
    return n;
  }
  const size_t colon = line.find(':');
  if (colon == std::string::npos) return n;
  const std::string name = toLower(trim(line.substr(0, colon)));
  if (name == "x-amzn-errortype") r->errorType = trim(line.substr(colon + 1));
  if (name == "x-amzn-requestid") r->requestId = trim(line.substr(colon + 1));
  return n;
}

ControlPlaneError invalidResponse(const std::string& operation, const std::string& what,
                                  long status) {
  return ControlPlaneError(operation + ": invalid response: " + what,
                           ControlPlaneErrorKind::InvalidResponse, status, "", false);
}

json parseSuccessBody(const std::string& operation, const std::string& body, long status) {
  json doc = json::parse(body, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    throw invalidResponse(operation, "HTTP " + std::to_string(status) +
                                         " with a body that is not a JSON object: '" +
                                         excerpt(body) + "'",
                          status);
  }
  return doc;
}

bool isSuccess(long status) { return status >= 200 && status < 300; }

}  // namespace

// ---------------------------------------------------------------- endpoints

std::string ControlPlane::defaultEndpoint(const std::string& regionIn) {
  const std::string region = regionIn.empty() ? "us-west-2" : regionIn;
  const bool dualStack = startsWith(toLower(envOr("AWS_USE_DUALSTACK_ENDPOINT", "")), "true");
  std::string service = "kinesisvideo";
  std::string suffix = dualStack ? "api.aws" : "amazonaws.com";
  if (startsWith(region, "cn-")) {
    suffix = dualStack ? "api.amazonwebservices.com.cn" : "amazonaws.com.cn";
  } else if (startsWith(region, "us-gov-")) {
    service = "kinesisvideo-fips";
  } else if (startsWith(region, "us-isob-")) {
    service = "kinesisvideo-fips";
    suffix = dualStack ? "api.aws.scloud" : "sc2s.sgov.gov";
  } else if (startsWith(region, "us-iso-")) {
    service = "kinesisvideo-fips";
    suffix = dualStack ? "api.aws.ic.gov" : "c2s.ic.gov";
  }
  return "https://" + service + "." + region + "." + suffix;
}

std::string ControlPlane::resolveEndpoint(const std::string& endpointProperty,
                                          const std::string& region) {
  if (!endpointProperty.empty()) return withoutTrailingSlash(endpointProperty);
  const std::string fromEnv = envOr("CONTROL_PLANE_URI", "");
  if (!fromEnv.empty()) return withoutTrailingSlash(fromEnv);
  return defaultEndpoint(region);
}

// ---------------------------------------------------------------- requests

ControlPlane::ControlPlane(ControlPlaneConfig config, CredentialProvider& credentials, LogSink log)
    : config_(std::move(config)), credentials_(credentials), log_(std::move(log)) {
  ensureCurlInitialized();
  config_.endpoint = config_.endpoint.empty() ? defaultEndpoint(config_.region)
                                              : withoutTrailingSlash(config_.endpoint);
  const auto url = parseUrl(config_.endpoint);
  if (!url || (url->scheme != "http" && url->scheme != "https")) {
    throw ControlPlaneError("control-plane endpoint '" + config_.endpoint +
                                "' is not an http:// or https:// URL",
                            ControlPlaneErrorKind::Config, 0, "", false);
  }
  if (config_.connectTimeoutMs <= 0 || config_.completionTimeoutMs <= 0 ||
      config_.connectTimeoutMs > config_.completionTimeoutMs) {
    logTo(log_, LogLevel::Warning,
          "connection timeout " + std::to_string(config_.connectTimeoutMs) +
              " ms is not below the completion timeout " +
              std::to_string(config_.completionTimeoutMs) + " ms; using 5000/10000 ms");
    config_.connectTimeoutMs = 5000;
    config_.completionTimeoutMs = 10000;
  }
  config_.caCertPath = resolveCaCertPath(config_.caCertPath);
  if (config_.userAgent.empty()) config_.userAgent = "kvssink";
}

ControlPlane::Response ControlPlane::post(const std::string& operation, const std::string& path,
                                          const std::string& body) {
  const std::string url = config_.endpoint + path;
  const UrlParts parts = *parseUrl(url);  // the endpoint was validated by the constructor

  Credentials credentials;
  try {
    credentials = credentials_.get();
  } catch (const std::exception& e) {
    throw ControlPlaneError(operation + ": no AWS credentials: " + e.what(),
                            ControlPlaneErrorKind::Credentials, 0, "", true);
  }

  // Headers and signing as §1.2 / §2.1.
  SigningInput input;
  input.method = "POST";
  input.path = parts.path;
  input.query = parts.query;
  input.headers = {{"user-agent", config_.userAgent},
                   {"host", parts.host},
                   {"content-type", "application/json"}};
  input.payloadSha256Hex = sha256Hex(body);
  input.region = config_.region;
  input.time = std::chrono::system_clock::now();
  std::vector<HttpHeader> headers = input.headers;
  for (HttpHeader& h : signV4(input, credentials)) headers.push_back(std::move(h));

  std::unique_ptr<curl_slist, SlistDeleter> headerList;
  auto append = [&headerList](const std::string& line) {
    curl_slist* next = curl_slist_append(headerList.get(), line.c_str());
    if (next == nullptr) throw std::bad_alloc();
    if (!headerList) headerList.reset(next);  // later appends keep the same head
  };
  for (const HttpHeader& h : headers) append(h.name + ": " + h.value);
  append("Expect:");  // no 100-continue round trip for larger TagStream bodies

  std::unique_ptr<CURL, CurlDeleter> curl(curl_easy_init());
  if (!curl) throw std::runtime_error("curl_easy_init failed");
  CURL* c = curl.get();
  Received received;
  char errorBuffer[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_POST, 1L);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headerList.get());
  curl_easy_setopt(c, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, config_.connectTimeoutMs);
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, config_.completionTimeoutMs);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 30L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 30L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &onBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &received);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &onHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &received);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errorBuffer);
  if (config_.shouldAbort) {
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &onProgress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &config_.shouldAbort);
  }
  if (parts.scheme == "https") applyTlsOptions(c, config_.caCertPath);

  logTo(log_, LogLevel::Debug, operation + ": POST " + url);
  const auto started = std::chrono::steady_clock::now();
  const CURLcode rc = curl_easy_perform(c);
  const auto elapsedMs = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - started)
                             .count();

  if (received.bodyTooLarge) {
    throw invalidResponse(operation, "response body larger than " +
                                         std::to_string(kMaxResponseBytes) + " bytes",
                          0);
  }
  if (const TlsFailure tls = classifyTlsFailure(rc); tls != TlsFailure::None) {
    // Not retried: the same certificate (or CA file) fails the same way every time.
    const std::string message =
        operation + ": " +
        describeTlsFailure(tls, config_.endpoint, config_.caCertPath, curlFailureDetail(errorBuffer, rc));
    logTo(log_, LogLevel::Warning, message);
    throw ControlPlaneError(message, ControlPlaneErrorKind::Tls, 0, "", false);
  }
  if (rc != CURLE_OK) {
    std::string message = operation + ": POST " + url + " failed after " +
                          std::to_string(elapsedMs) + " ms: " + curl_easy_strerror(rc);
    if (errorBuffer[0] != '\0') message += " (" + std::string(errorBuffer) + ")";
    ControlPlaneErrorKind kind = ControlPlaneErrorKind::Network;
    bool retryable = true;
    switch (rc) {
      case CURLE_OPERATION_TIMEDOUT:
        kind = ControlPlaneErrorKind::Timeout;
        break;
      case CURLE_UNSUPPORTED_PROTOCOL:
      case CURLE_URL_MALFORMAT:
        kind = ControlPlaneErrorKind::Config;
        retryable = false;
        break;
      default:
        break;
    }
    logTo(log_, LogLevel::Warning, message);
    throw ControlPlaneError(message, kind, 0, "", retryable);
  }

  Response response;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &response.status);
  response.body = std::move(received.body);
  response.errorType = std::move(received.errorType);
  response.requestId = std::move(received.requestId);
  logTo(log_, LogLevel::Debug,
        operation + ": HTTP " + std::to_string(response.status) + " in " +
            std::to_string(elapsedMs) + " ms" +
            (response.requestId.empty() ? "" : ", request id " + response.requestId));
  return response;
}

void ControlPlane::fail(const std::string& operation, const Response& response) const {
  std::string code = response.errorType;
  std::string message;
  bool jsonBody = response.body.empty();
  const json doc = json::parse(response.body, nullptr, false);
  if (!doc.is_discarded() && doc.is_object()) {
    jsonBody = true;
    if (code.empty()) {
      for (const auto& [key, value] : doc.items()) {
        if (toLower(key) == "code" && value.is_string()) code = value.get<std::string>();
      }
    }
    if (code.empty()) code = stringField(doc, "__type");
    message = stringField(doc, "message");
    if (message.empty()) message = stringField(doc, "Message");
  }
  code = sanitizeErrorCode(code);

  const long status = response.status;
  ControlPlaneErrorKind kind = ControlPlaneErrorKind::Service;
  if (status == 401 || status == 403) kind = ControlPlaneErrorKind::Auth;
  if (status == 404) kind = ControlPlaneErrorKind::NotFound;
  const bool retryable = kind == ControlPlaneErrorKind::Service;

  std::string what = operation + " failed: HTTP " + std::to_string(status);
  if (!code.empty()) what += " " + code;
  if (!message.empty()) what += ": " + message;
  if (!jsonBody) what += " (non-JSON body: '" + excerpt(response.body) + "')";
  if (!response.requestId.empty()) what += " [request id " + response.requestId + "]";
  logTo(log_, LogLevel::Warning, what);
  throw ControlPlaneError(what, kind, status, code, retryable);
}

std::optional<StreamDescription> ControlPlane::describeStream(const std::string& name) {
  ordered_json request;
  request["StreamName"] = name;
  const Response r = post("DescribeStream", "/describeStream", dumpBody(request));
  if (r.status == 404) return std::nullopt;
  if (!isSuccess(r.status)) fail("DescribeStream", r);

  const json doc = parseSuccessBody("DescribeStream", r.body, r.status);
  const auto info = doc.find("StreamInfo");
  if (info == doc.end() || !info->is_object()) {
    throw invalidResponse("DescribeStream", "no StreamInfo object in '" + excerpt(r.body) + "'",
                          r.status);
  }
  StreamDescription d;
  d.name = stringField(*info, "StreamName");
  d.arn = stringField(*info, "StreamARN");
  d.status = stringField(*info, "Status");
  d.version = stringField(*info, "Version");
  const auto retention = info->find("DataRetentionInHours");
  if (retention != info->end() && retention->is_number()) {
    const double hours = retention->get<double>();
    d.retentionHours = hours <= 0 ? 0u
                       : hours >= 4294967295.0 ? UINT32_MAX
                                               : static_cast<uint32_t>(hours);
  }
  return d;
}

std::string ControlPlane::createStream(const std::string& name, const std::string& mediaType,
                                       uint32_t retentionHours, const std::string& deviceName) {
  ordered_json request;
  request["DeviceName"] = deviceName;
  request["StreamName"] = name;
  request["MediaType"] = mediaType;
  request["DataRetentionInHours"] = retentionHours;
  const Response r = post("CreateStream", "/createStream", dumpBody(request));
  if (!isSuccess(r.status)) fail("CreateStream", r);
  const json doc = parseSuccessBody("CreateStream", r.body, r.status);
  std::string arn = stringField(doc, "StreamARN");
  if (arn.empty()) {
    throw invalidResponse("CreateStream", "no StreamARN in '" + excerpt(r.body) + "'", r.status);
  }
  return arn;
}

void ControlPlane::tagStream(const std::string& arn,
                             const std::map<std::string, std::string>& tags) {
  if (tags.empty()) return;  // the service requires 1-50 tags; the producer skips the call
  ordered_json request;
  request["StreamARN"] = arn;
  request["Tags"] = ordered_json::object();
  for (const auto& [key, value] : tags) request["Tags"][key] = value;
  const Response r = post("TagStream", "/tagStream", dumpBody(request));
  if (!isSuccess(r.status)) fail("TagStream", r);
}

std::string ControlPlane::getDataEndpoint(const std::string& name, const std::string& apiName) {
  ordered_json request;
  request["StreamName"] = name;
  request["APIName"] = apiName;
  const Response r = post("GetDataEndpoint", "/getDataEndpoint", dumpBody(request));
  if (!isSuccess(r.status)) fail("GetDataEndpoint", r);
  const json doc = parseSuccessBody("GetDataEndpoint", r.body, r.status);
  const std::string endpoint = withoutTrailingSlash(stringField(doc, "DataEndpoint"));
  if (endpoint.find("://") == std::string::npos) {
    throw invalidResponse("GetDataEndpoint",
                          "DataEndpoint is missing or has no scheme in '" + excerpt(r.body) + "'",
                          r.status);
  }
  return endpoint;
}

// ---------------------------------------------------------------- backoff

Backoff::Backoff(std::chrono::milliseconds base, std::chrono::milliseconds cap,
                 std::chrono::milliseconds resetAfter)
    : base_(base), cap_(std::max(cap, base)), resetAfter_(resetAfter), wait_(base),
      rng_(std::random_device{}()) {}

std::chrono::milliseconds Backoff::next() {
  const auto now = std::chrono::steady_clock::now();
  if (last_ && now - *last_ >= resetAfter_) wait_ = base_;
  last_ = now;
  const auto wait = std::min(wait_, cap_);
  std::uniform_int_distribution<long long> jitter(0, std::max<long long>(wait.count() - 1, 0));
  wait_ = std::min(wait_ * 2, cap_);
  return wait + std::chrono::milliseconds(jitter(rng_));
}

void Backoff::reset() {
  wait_ = base_;
  last_.reset();
}

}  // namespace kvs
