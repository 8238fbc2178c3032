// AWS credential sources of kvssink (producer-protocol.md §2.2, §2.3) plus the standard AWS
// shared credentials/config files.
//
// Every provider's get() is thread-safe; it returns the credentials to use for the next
// signature and throws std::runtime_error (without secrets in the message) when none can be
// produced. Providers that read files re-read them when needed (see each factory).
#pragma once

#include "kvs/sigv4.h"

#include <memory>
#include <optional>
#include <string>

namespace kvs {

class CredentialProvider {
 public:
  virtual ~CredentialProvider() = default;
  /// Current credentials; refreshes them when they are near expiry. Thread-safe.
  virtual Credentials get() = 0;
};

/// Always the same credentials (expiration as given; nullopt = never expires).
std::unique_ptr<CredentialProvider> staticCredentials(Credentials credentials);

/// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, read again on each get().
/// get() throws when either of the first two is unset or empty.
std::unique_ptr<CredentialProvider> environmentCredentials();

/// The kvssink `credential-path` file (§2.3), whitespace-separated tokens, either
///   CREDENTIALS <accessKeyId> <secretKey>
///   CREDENTIALS <accessKeyId> <expiration YYYY-MM-DDTHH:MM:SSZ> <secretKey> <sessionToken>
/// The first form expires 40 min after it is read. Expiration is capped at now + 40 min; the
/// file is read again when less than 38 s remain (a failed re-read keeps the previous
/// credentials until they expire). get() throws when the file cannot be read, is malformed, or
/// holds credentials that have already expired.
std::unique_ptr<CredentialProvider> credentialFile(std::string path);

/// A profile of the standard AWS shared files: AWS_SHARED_CREDENTIALS_FILE (default
/// ~/.aws/credentials, sections "[name]") and AWS_CONFIG_FILE (default ~/.aws/config, sections
/// "[profile name]" or "[default]"); keys aws_access_key_id, aws_secret_access_key,
/// aws_session_token. The credentials file wins over the config file for the same profile.
/// Empty `profile`: AWS_PROFILE, else "default". The files are parsed again whenever their
/// modification time, size or inode changes, so rotated keys are used for the next signature.
/// Only static keys are supported (no role_arn, sso or credential_process).
std::unique_ptr<CredentialProvider> profileCredentials(std::string profile);

/// Element properties relevant to credentials; the defaults are the kvssink sentinels.
struct CredentialSettings {
  std::string accessKey = "access_key";
  std::string secretKey = "secret_key";
  std::string sessionToken = "session_token";
  std::string profile;  // empty: none (AWS_PROFILE still applies)
  std::string credentialPath = ".kvs/credential";
};

/// Picks the credential source, in this order:
///  1. access-key/secret-key properties (not the sentinels); session token from the
///     session-token property (not the sentinel) else AWS_SESSION_TOKEN;
///  2. AWS_ACCESS_KEY_ID + AWS_SECRET_ACCESS_KEY (session token as in 1);
///  3. the `profile` property, else AWS_PROFILE, when set: that profile must exist;
///  4. the credential-path file, if it can be opened;
///  5. the "default" profile, if a shared credentials/config file exists and has it;
///  6. otherwise throws std::runtime_error("Could not find any AWS credentials ...") listing
///     what was tried.
/// Sources 3-5 are read once here so that a broken file fails at startup.
/// `description` receives a human-readable name of the chosen source (no secrets).
std::unique_ptr<CredentialProvider> resolveCredentials(const CredentialSettings& settings,
                                                       std::string& description);

/// `region` of a profile in the AWS config file (empty `profile`: AWS_PROFILE, else
/// "default"); nullopt when there is no such file, profile or key.
std::optional<std::string> profileRegion(std::string profile);

}  // namespace kvs
