// AWS Signature Version 4 as the KVS producer implements it (producer-protocol.md §2.1).
//
// Differences from a general-purpose SigV4 signer, all deliberate:
//  - the canonical URI and query are used as given (no re-encoding, no sorting of parameters);
//  - every header on the request is signed except x-amz-security-token, content-type,
//    content-length and authorization (compared case-insensitively);
//  - header values are trimmed at both ends, inner whitespace is kept;
//  - the session token is added after signing, unsigned;
//  - no x-amz-content-sha256 header is produced.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace kvs {

struct Credentials {
  std::string accessKeyId;
  std::string secretAccessKey;
  std::string sessionToken;  // empty: none
  std::optional<std::chrono::system_clock::time_point> expiration;  // nullopt: never expires
};

struct HttpHeader {
  std::string name;
  std::string value;
};

struct SigningInput {
  std::string method;   // "POST"
  std::string path;     // raw path, e.g. "/describeStream"; "/" when empty
  std::string query;    // raw text after '?', usually empty
  std::vector<HttpHeader> headers;  // everything the request will carry (host included)
  std::string payloadSha256Hex;     // empty: hash of the empty payload (PutMedia)
  std::string region;
  std::string service = "kinesisvideo";
  std::chrono::system_clock::time_point time;  // used when headers carry no X-Amz-Date
};

/// The intermediate values of one signature, for tests and debugging (contain no secret).
struct SignatureParts {
  std::string amzDate;           // YYYYMMDD'T'HHMMSS'Z'
  std::string scope;             // YYYYMMDD/{region}/{service}/aws4_request
  std::string canonicalRequest;
  std::string stringToSign;
  std::string signedHeaders;     // "host;user-agent;x-amz-date"
  std::string signature;         // lower-case hex
};

/// Signs a request. Returns the headers to add to it, in this order: X-Amz-Date (only when
/// `input.headers` has none; an existing one is signed as is), Authorization, and
/// x-amz-security-token when the credentials carry a session token.
/// Throws std::invalid_argument when the access key id or the secret key is empty.
std::vector<HttpHeader> signV4(const SigningInput& input, const Credentials& credentials);

/// The computation behind signV4, exposed so that tests can compare each step.
SignatureParts signatureParts(const SigningInput& input, const Credentials& credentials);

/// Lower-case hex SHA-256 of a byte range.
std::string sha256Hex(const void* data, size_t size);
std::string sha256Hex(const std::string& data);

/// Lower-case hex HMAC-SHA256.
std::string hmacSha256Hex(const std::string& key, const std::string& data);

/// UTC time as YYYYMMDD'T'HHMMSS'Z' (the X-Amz-Date format).
std::string amzDate(std::chrono::system_clock::time_point time);

/// SHA-256 of the empty string: the payload hash of PutMedia.
inline constexpr const char* kEmptyPayloadSha256 =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

}  // namespace kvs
