// TLS for every libcurl handle kvssink opens (the control-plane calls and PutMedia): peer and
// host verification always on, TLS 1.2 or later, and which CA certificates to trust. Also how a
// failed transfer's CURLcode relates to TLS, so that both callers turn certificate problems into
// the same fatal, actionable message instead of retrying.
#pragma once

#include <curl/curl.h>

#include <string>

namespace kvs {

/// The CA certificates to trust: `property` (the ca-cert property) if set, else
/// KVSSINK_CA_CERT_PATH, else AWS_KVS_CACERT_PATH (the AWS producer SDK's variable), else
/// AWS_CA_BUNDLE (the AWS CLI's). Empty means libcurl's default, the system store.
std::string resolveCaCertPath(const std::string& property);

/// Sets peer verification, host verification (the name must match a subject alternative name),
/// TLS 1.2 as the minimum, and, when `caCertPath` is set, the CA certificates to trust: a
/// directory (hashed certificates, `openssl rehash`) becomes CURLOPT_CAPATH, anything else a PEM
/// file, CURLOPT_CAINFO.
void applyTlsOptions(CURL* curl, const std::string& caCertPath);

enum class TlsFailure {
  None,           // not a TLS failure
  Certificate,    // the server's certificate was refused: untrusted issuer, wrong name, expired
  Configuration,  // the CA certificates (or CRL, client certificate) given cannot be used
  Handshake,      // the TLS handshake failed (not a TLS server, no common protocol, reset)
};

TlsFailure classifyTlsFailure(CURLcode result);

/// libcurl's description of a failed transfer: its CURLOPT_ERRORBUFFER text when set (it names
/// the certificate problem), else the generic text of `result`.
std::string curlFailureDetail(const char* errorBuffer, CURLcode result);

/// One message for a TLS failure talking to `endpoint` (scheme://host[:port]): what failed,
/// libcurl's `detail`, which CA certificates were trusted and what to set.
std::string describeTlsFailure(TlsFailure failure, const std::string& endpoint, const std::string& caCertPath,
                               const std::string& detail);

}  // namespace kvs
