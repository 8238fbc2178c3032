#include "kvs/tls.h"

#include <sys/stat.h>

#include <cstdlib>

namespace kvs {

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? std::string(v) : std::string();
}

const char* kHowToTrust =
    "set the ca-cert property (or KVSSINK_CA_CERT_PATH / AWS_KVS_CACERT_PATH) to the CA certificate that issued "
    "the server's certificate";

}  // namespace

std::string resolveCaCertPath(const std::string& property) {
  if (!property.empty()) return property;
  for (const char* name : {"KVSSINK_CA_CERT_PATH", "AWS_KVS_CACERT_PATH", "AWS_CA_BUNDLE"}) {
    std::string v = env(name);
    if (!v.empty()) return v;
  }
  return {};
}

void applyTlsOptions(CURL* curl, const std::string& caCertPath) {
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(curl, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (caCertPath.empty()) return;
  struct stat st {};
  const bool isDir = ::stat(caCertPath.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  curl_easy_setopt(curl, isDir ? CURLOPT_CAPATH : CURLOPT_CAINFO, caCertPath.c_str());
}

TlsFailure classifyTlsFailure(CURLcode result) {
  switch (result) {
    case CURLE_PEER_FAILED_VERIFICATION:  // also CURLE_SSL_CACERT, an alias since curl 7.62
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
      return TlsFailure::Certificate;
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
      return TlsFailure::Configuration;
    case CURLE_SSL_CONNECT_ERROR:
      return TlsFailure::Handshake;
    default:
      return TlsFailure::None;
  }
}

std::string curlFailureDetail(const char* errorBuffer, CURLcode result) {
  return errorBuffer[0] != '\0' ? std::string(errorBuffer) : std::string(curl_easy_strerror(result));
}

std::string describeTlsFailure(TlsFailure failure, const std::string& endpoint, const std::string& caCertPath,
                               const std::string& detail) {
  const std::string trusted = caCertPath.empty() ? "the system store" : caCertPath;
  switch (failure) {
    case TlsFailure::Certificate:
      return "the TLS certificate of " + endpoint + " is not trusted (" + detail + "; CA certificates: " + trusted +
             "): " + kHowToTrust;
    case TlsFailure::Configuration:
      return "cannot verify the TLS certificate of " + endpoint + ": the CA certificates " + trusted +
             " cannot be used (" + detail +
             "): the ca-cert property (or KVSSINK_CA_CERT_PATH / AWS_KVS_CACERT_PATH) must name a readable PEM file "
             "or a directory of hashed certificates";
    case TlsFailure::Handshake:
      return "the TLS handshake with " + endpoint + " failed (" + detail +
             "): check that the endpoint speaks https on that port";
    case TlsFailure::None:
      break;
  }
  return "TLS failure talking to " + endpoint + ": " + detail;
}

}  // namespace kvs
