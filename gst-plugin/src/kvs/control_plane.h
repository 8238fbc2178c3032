// The four control-plane calls kvssink makes at startup (producer-protocol.md §1), over
// libcurl, SigV4-signed (§2.1): DescribeStream, CreateStream, TagStream, GetDataEndpoint.
//
// Each call is one blocking HTTP/1.1 POST on its own curl handle, so a ControlPlane may be used
// from any thread (the CredentialProvider is thread-safe). Retrying is the caller's job; use
// ControlPlaneError::retryable and Backoff.
#pragma once

#include "kvs/credentials.h"
#include "kvs/log.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>

namespace kvs {

struct StreamDescription {
  std::string name;
  std::string arn;
  std::string status;  // ACTIVE, CREATING, UPDATING, DELETING (verbatim from the service)
  std::string version;
  uint32_t retentionHours = 0;
};

struct ControlPlaneConfig {
  /// scheme://host[:port], no trailing slash (one is removed if present). Empty: the default
  /// AWS endpoint of `region`. See ControlPlane::resolveEndpoint.
  std::string endpoint;
  std::string region;       // signing region
  std::string userAgent;    // sent and signed as user-agent (§1.4)
  long connectTimeoutMs = 5000;
  long completionTimeoutMs = 10000;  // if < connectTimeoutMs, both revert to 5000/10000 (§3.3)
  /// CA certificates for https: a directory (CURLOPT_CAPATH) or a PEM file (CURLOPT_CAINFO).
  /// Empty: KVSSINK_CA_CERT_PATH, AWS_KVS_CACERT_PATH, AWS_CA_BUNDLE, else the system store
  /// (resolveCaCertPath in kvs/tls.h).
  std::string caCertPath;
  /// Polled while a call is in flight (about every second, and on every transfer progress);
  /// returning true aborts the call at once (a Network error). Lets a stopping element end a
  /// control-plane call without waiting for its timeout.
  std::function<bool()> shouldAbort;
};

enum class ControlPlaneErrorKind {
  Auth,             // HTTP 401/403: get credentials again
  NotFound,         // HTTP 404
  Service,          // any other HTTP error status
  Timeout,          // connect or completion timeout
  Network,          // connection refused, DNS failure, reset, ...
  Tls,              // certificate verification or TLS set-up failed (kvs/tls.h TlsFailure)
  InvalidResponse,  // a success status with a body that is not the expected JSON
  Credentials,      // the credential provider failed
  Config,           // unusable endpoint (unsupported scheme, malformed URL)
};

class ControlPlaneError : public std::runtime_error {
 public:
  ControlPlaneError(const std::string& message, ControlPlaneErrorKind errorKind, long status,
                    std::string code, bool canRetry)
      : std::runtime_error(message),
        kind(errorKind),
        httpStatus(status),
        serviceCode(std::move(code)),
        retryable(canRetry) {}

  ControlPlaneErrorKind kind;
  long httpStatus;          // 0 when no HTTP response was received
  std::string serviceCode;  // e.g. "ResourceNotFoundException"; empty when none was given
  bool retryable;           // false for Auth, NotFound, Tls, InvalidResponse, Config
};

class ControlPlane {
 public:
  ControlPlane(ControlPlaneConfig config, CredentialProvider& credentials, LogSink log = {});

  /// nullopt when the service answers 404 (the stream does not exist).
  std::optional<StreamDescription> describeStream(const std::string& name);
  /// Returns the new stream's ARN.
  std::string createStream(const std::string& name, const std::string& mediaType,
                           uint32_t retentionHours,
                           const std::string& deviceName = "Kinesis_Video_Device");
  void tagStream(const std::string& arn, const std::map<std::string, std::string>& tags);
  /// The data endpoint (scheme://host[:port], trailing slash removed) for `apiName`.
  std::string getDataEndpoint(const std::string& name, const std::string& apiName = "PUT_MEDIA");

  /// https://kinesisvideo.{region}.amazonaws.com with the partition variants of §1.1
  /// (cn-, us-gov-, us-iso-, us-isob-, AWS_USE_DUALSTACK_ENDPOINT). Empty region: us-west-2.
  static std::string defaultEndpoint(const std::string& region);
  /// `endpointProperty` if set, else CONTROL_PLANE_URI if set, else defaultEndpoint(region);
  /// a trailing slash is removed.
  static std::string resolveEndpoint(const std::string& endpointProperty,
                                     const std::string& region);

  const ControlPlaneConfig& config() const { return config_; }

 private:
  struct Response {
    long status = 0;
    std::string body;
    std::string errorType;  // x-amzn-ErrorType
    std::string requestId;  // x-amzn-RequestId
  };
  // POSTs `body` to {endpoint}{path}; returns any HTTP response (success or not) or throws
  // ControlPlaneError for transport failures.
  Response post(const std::string& operation, const std::string& path, const std::string& body);
  // Throws the ControlPlaneError matching a non-2xx response.
  [[noreturn]] void fail(const std::string& operation, const Response& response) const;

  ControlPlaneConfig config_;
  CredentialProvider& credentials_;
  LogSink log_;
};

/// Exponential backoff of the producer (§1.5, §7.3): the n-th delay is min(base * 2^n, cap)
/// plus a uniformly random jitter in [0, that wait); the sequence starts over after `resetAfter`
/// without calls to next(). Not thread-safe.
class Backoff {
 public:
  explicit Backoff(std::chrono::milliseconds base = std::chrono::seconds(1),
                   std::chrono::milliseconds cap = std::chrono::seconds(16),
                   std::chrono::milliseconds resetAfter = std::chrono::seconds(90));
  std::chrono::milliseconds next();
  void reset();

 private:
  std::chrono::milliseconds base_, cap_, resetAfter_, wait_;
  std::optional<std::chrono::steady_clock::time_point> last_;
  std::mt19937_64 rng_;
};

}  // namespace kvs
