#include "kvs/sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>
#include "kvs/text.h"

namespace kvs {
namespace {

constexpr const char* kAlgorithm = "AWS4-HMAC-SHA256";

std::string toHex(const unsigned char* bytes, size_t size) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(digits[bytes[i] >> 4]);
    out.push_back(digits[bytes[i] & 0x0f]);
  }
  return out;
}

// Raw (binary) HMAC-SHA256, the building block of the signing-key chain.
std::string hmacRaw(const std::string& key, const std::string& data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int outSize = 0;
  const unsigned char* ok =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(data.data()), data.size(), out, &outSize);
  if (ok == nullptr) throw std::runtime_error("HMAC-SHA256 failed");
  return std::string(reinterpret_cast<const char*>(out), outSize);
}

// Headers the producer leaves out of the signature (§2.1).
bool isUnsignedHeader(const std::string& lowerName) {
  return lowerName == "x-amz-security-token" || lowerName == "content-type" ||
         lowerName == "content-length" || lowerName == "authorization";
}

const HttpHeader* findHeader(const std::vector<HttpHeader>& headers, const std::string& lowerName) {
  for (const HttpHeader& h : headers) {
    if (toLower(h.name) == lowerName) return &h;
  }
  return nullptr;
}

bool looksLikeAmzDate(const std::string& s) {
  if (s.size() != 16 || s[8] != 'T' || s[15] != 'Z') return false;
  for (size_t i = 0; i < 15; ++i) {
    if (i != 8 && (s[i] < '0' || s[i] > '9')) return false;
  }
  return true;
}

}  // namespace

std::string sha256Hex(const void* data, size_t size) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digestSize = 0;
  if (EVP_Digest(data, size, digest, &digestSize, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return toHex(digest, digestSize);
}

std::string sha256Hex(const std::string& data) { return sha256Hex(data.data(), data.size()); }

std::string hmacSha256Hex(const std::string& key, const std::string& data) {
  const std::string raw = hmacRaw(key, data);
  return toHex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string amzDate(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  const size_t n = std::strftime(buf, sizeof buf, "%Y%m%dT%H%M%SZ", &tm);
  return std::string(buf, n);
}

SignatureParts signatureParts(const SigningInput& input, const Credentials& credentials) {
  if (credentials.accessKeyId.empty() || credentials.secretAccessKey.empty()) {
    throw std::invalid_argument("SigV4: the access key id and the secret key must not be empty");
  }
  SignatureParts parts;

  // The date: an X-Amz-Date already on the request wins, so that what is signed is what is sent.
  if (const HttpHeader* dateHeader = findHeader(input.headers, "x-amz-date")) {
    parts.amzDate = trim(dateHeader->value);
    if (!looksLikeAmzDate(parts.amzDate)) {
      throw std::invalid_argument("SigV4: X-Amz-Date is not YYYYMMDDTHHMMSSZ: " + parts.amzDate);
    }
  } else {
    parts.amzDate = amzDate(input.time);
  }
  const std::string date = parts.amzDate.substr(0, 8);
  parts.scope = date + "/" + input.region + "/" + input.service + "/aws4_request";

  // Canonical headers: lower-case names sorted, values trimmed, repeated names joined by ','.
  std::vector<std::pair<std::string, std::string>> signedList;
  for (const HttpHeader& h : input.headers) {
    std::string name = toLower(h.name);
    if (!isUnsignedHeader(name)) signedList.emplace_back(std::move(name), trim(h.value));
  }
  if (findHeader(input.headers, "x-amz-date") == nullptr) {
    signedList.emplace_back("x-amz-date", parts.amzDate);
  }
  std::stable_sort(signedList.begin(), signedList.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });

  std::string canonicalHeaders;
  for (size_t i = 0; i < signedList.size(); ++i) {
    const bool repeat = i > 0 && signedList[i].first == signedList[i - 1].first;
    if (repeat) {
      canonicalHeaders.pop_back();  // the '\n' of the previous line
      canonicalHeaders += "," + signedList[i].second + "\n";
    } else {
      canonicalHeaders += signedList[i].first + ":" + signedList[i].second + "\n";
      if (!parts.signedHeaders.empty()) parts.signedHeaders += ";";
      parts.signedHeaders += signedList[i].first;
    }
  }

  const std::string payloadHash =
      input.payloadSha256Hex.empty() ? std::string(kEmptyPayloadSha256) : input.payloadSha256Hex;
  parts.canonicalRequest = input.method + "\n" + (input.path.empty() ? "/" : input.path) + "\n" +
                           input.query + "\n" + canonicalHeaders + "\n" + parts.signedHeaders +
                           "\n" + payloadHash;

  parts.stringToSign = std::string(kAlgorithm) + "\n" + parts.amzDate + "\n" + parts.scope + "\n" +
                       sha256Hex(parts.canonicalRequest);

  std::string key = hmacRaw("AWS4" + credentials.secretAccessKey, date);
  key = hmacRaw(key, input.region);
  key = hmacRaw(key, input.service);
  key = hmacRaw(key, "aws4_request");
  parts.signature = hmacSha256Hex(key, parts.stringToSign);
  return parts;
}

std::vector<HttpHeader> signV4(const SigningInput& input, const Credentials& credentials) {
  const SignatureParts parts = signatureParts(input, credentials);
  std::vector<HttpHeader> added;
  if (findHeader(input.headers, "x-amz-date") == nullptr) {
    added.push_back({"X-Amz-Date", parts.amzDate});
  }
  added.push_back({"Authorization", std::string(kAlgorithm) + " Credential=" +
                                        credentials.accessKeyId + "/" + parts.scope +
                                        ", SignedHeaders=" + parts.signedHeaders +
                                        ", Signature=" + parts.signature});
  if (!credentials.sessionToken.empty()) {
    added.push_back({"x-amz-security-token", credentials.sessionToken});
  }
  return added;
}

}  // namespace kvs
