#include "kvs/credentials.h"

#include <sys/stat.h>

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>
#include "kvs/text.h"

namespace kvs {
namespace {

using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

// Producer constants (§2.2, §2.3, §7.3).
constexpr auto kMaxExpiration = 40min;
constexpr auto kRefreshMargin = 38s;

std::optional<std::string> env(const char* name) {
  const char* value = std::getenv(name);
  if (value == nullptr || *value == '\0') return std::nullopt;
  return std::string(value);
}

bool readFile(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

// ---------------------------------------------------------------- static and environment

class StaticProvider final : public CredentialProvider {
 public:
  explicit StaticProvider(Credentials c) : credentials_(std::move(c)) {}
  Credentials get() override { return credentials_; }

 private:
  const Credentials credentials_;
};

class EnvironmentProvider final : public CredentialProvider {
 public:
  explicit EnvironmentProvider(std::optional<std::string> tokenOverride = std::nullopt)
      : tokenOverride_(std::move(tokenOverride)) {}

  Credentials get() override {
    auto id = env("AWS_ACCESS_KEY_ID");
    auto secret = env("AWS_SECRET_ACCESS_KEY");
    if (!id || !secret) {
      throw std::runtime_error("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must both be set");
    }
    Credentials c;
    c.accessKeyId = std::move(*id);
    c.secretAccessKey = std::move(*secret);
    c.sessionToken = tokenOverride_ ? *tokenOverride_ : env("AWS_SESSION_TOKEN").value_or("");
    return c;
  }

 private:
  const std::optional<std::string> tokenOverride_;
};

// ---------------------------------------------------------------- credential-path file

// "YYYY-MM-DDTHH:MM:SSZ", exactly 20 characters.
std::optional<Clock::time_point> parseIso8601(const std::string& s) {
  if (s.size() != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
      s[16] != ':' || s[19] != 'Z') {
    return std::nullopt;
  }
  for (size_t i = 0; i < 19; ++i) {
    const bool separator = i == 4 || i == 7 || i == 10 || i == 13 || i == 16;
    if (!separator && (s[i] < '0' || s[i] > '9')) return std::nullopt;
  }
  std::tm tm{};
  tm.tm_year = std::stoi(s.substr(0, 4)) - 1900;
  tm.tm_mon = std::stoi(s.substr(5, 2)) - 1;
  tm.tm_mday = std::stoi(s.substr(8, 2));
  tm.tm_hour = std::stoi(s.substr(11, 2));
  tm.tm_min = std::stoi(s.substr(14, 2));
  tm.tm_sec = std::stoi(s.substr(17, 2));
  if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  return Clock::from_time_t(timegm(&tm));
}

class FileProvider final : public CredentialProvider {
 public:
  explicit FileProvider(std::string path) : path_(std::move(path)) {}

  Credentials get() override {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto now = Clock::now();
    if (!cached_ || now + kRefreshMargin >= *cached_->expiration) {
      try {
        cached_ = read(now);
      } catch (const std::exception&) {
        // A file being rewritten must not cut off credentials that are still valid.
        if (cached_ && now < *cached_->expiration) return *cached_;
        throw;
      }
    }
    return *cached_;
  }

 private:
  Credentials read(Clock::time_point now) const {
    std::string text;
    if (!readFile(path_, text)) {
      throw std::runtime_error("cannot read the credential file " + path_);
    }
    std::istringstream in(text);
    std::vector<std::string> tokens;
    for (std::string token; in >> token;) tokens.push_back(token);
    const std::string expected =
        "expected 'CREDENTIALS <access key id> <secret key>' or 'CREDENTIALS <access key id> "
        "<expiration YYYY-MM-DDTHH:MM:SSZ> <secret key> <session token>'";
    const bool wellFormed =
        !tokens.empty() && tokens[0] == "CREDENTIALS" && (tokens.size() == 3 || tokens.size() == 5);
    if (!wellFormed) {
      throw std::runtime_error("malformed credential file " + path_ + ": " + expected + ", got " +
                               std::to_string(tokens.size()) + " tokens");
    }
    Credentials c;
    c.accessKeyId = tokens[1];
    const auto cap = now + std::chrono::duration_cast<Clock::duration>(kMaxExpiration);
    if (tokens.size() == 3) {
      c.secretAccessKey = tokens[2];
      c.expiration = cap;
      return c;
    }
    const auto expiration = parseIso8601(tokens[2]);
    if (!expiration) {
      throw std::runtime_error("malformed credential file " + path_ + ": expiration '" +
                               tokens[2] + "' is not YYYY-MM-DDTHH:MM:SSZ");
    }
    if (*expiration <= now) {
      throw std::runtime_error("the credentials in " + path_ + " expired at " + tokens[2]);
    }
    c.secretAccessKey = tokens[3];
    c.sessionToken = tokens[4];
    c.expiration = std::min(*expiration, cap);
    return c;
  }

  const std::string path_;
  std::mutex mutex_;
  std::optional<Credentials> cached_;
};

// ---------------------------------------------------------------- AWS shared files

using IniSection = std::map<std::string, std::string>;
using IniFile = std::map<std::string, IniSection>;  // profile name -> keys

std::string expandHome(const std::string& path) {
  if (path.size() >= 2 && path[0] == '~' && path[1] == '/') {
    if (auto home = env("HOME")) return *home + path.substr(1);
  }
  return path;
}

std::string sharedCredentialsPath() {
  if (auto p = env("AWS_SHARED_CREDENTIALS_FILE")) return expandHome(*p);
  if (auto home = env("HOME")) return *home + "/.aws/credentials";
  return {};
}

std::string configPath() {
  if (auto p = env("AWS_CONFIG_FILE")) return expandHome(*p);
  if (auto home = env("HOME")) return *home + "/.aws/config";
  return {};
}

std::string profileName(std::string profile) {
  if (!profile.empty()) return profile;
  return env("AWS_PROFILE").value_or("default");
}

// Parses an AWS INI file. In the config file, profiles are "[profile name]" (or "[default]")
// and other section kinds (sso-session, services, ...) are skipped. Lines starting with '#' or
// ';' are comments; indented lines after a key with an empty value are nested settings
// (e.g. "s3 =\n  max_concurrent_requests = 10") and are skipped.
IniFile parseIni(const std::string& text, bool isConfigFile) {
  IniFile file;
  IniSection* section = nullptr;
  bool inNested = false;
  std::istringstream in(text);
  for (std::string raw; std::getline(in, raw);) {
    const std::string line = trim(raw);
    if (line.empty() || line[0] == '#' || line[0] == ';') continue;
    const bool indented = raw[0] == ' ' || raw[0] == '\t';
    if (line.front() == '[' && line.back() == ']') {
      inNested = false;
      std::string name = trim(line.substr(1, line.size() - 2));
      if (isConfigFile && name != "default") {
        if (name.rfind("profile ", 0) != 0 && name.rfind("profile\t", 0) != 0) {
          section = nullptr;
          continue;
        }
        name = trim(name.substr(8));
      }
      section = &file[name];
      continue;
    }
    if (indented && inNested) continue;
    inNested = false;
    const size_t eq = line.find('=');
    if (section == nullptr || eq == std::string::npos) continue;
    const std::string key = toLower(trim(line.substr(0, eq)));
    const std::string value = trim(line.substr(eq + 1));
    if (value.empty()) inNested = true;
    (*section)[key] = value;
  }
  return file;
}

std::optional<IniSection> loadProfile(const std::string& path, bool isConfigFile,
                                      const std::string& profile) {
  std::string text;
  if (path.empty() || !readFile(path, text)) return std::nullopt;
  IniFile file = parseIni(text, isConfigFile);
  auto it = file.find(profile);
  if (it == file.end()) return std::nullopt;
  return it->second;
}

bool fileExists(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0;
}

// What identifies a version of a file: changes when it is rewritten or replaced.
struct FileStamp {
  bool exists = false;
  long long mtimeSec = 0, mtimeNsec = 0, size = 0, inode = 0;
  bool operator==(const FileStamp& o) const {
    return exists == o.exists && mtimeSec == o.mtimeSec && mtimeNsec == o.mtimeNsec &&
           size == o.size && inode == o.inode;
  }
};

FileStamp stampOf(const std::string& path) {
  FileStamp s;
  struct stat st {};
  if (path.empty() || ::stat(path.c_str(), &st) != 0) return s;
  s.exists = true;
  s.mtimeSec = static_cast<long long>(st.st_mtim.tv_sec);
  s.mtimeNsec = static_cast<long long>(st.st_mtim.tv_nsec);
  s.size = static_cast<long long>(st.st_size);
  s.inode = static_cast<long long>(st.st_ino);
  return s;
}

class ProfileProvider final : public CredentialProvider {
 public:
  explicit ProfileProvider(std::string profile) : profile_(profileName(std::move(profile))) {}

  Credentials get() override {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::string credsPath = sharedCredentialsPath();
    const std::string confPath = configPath();
    const FileStamp credsStamp = stampOf(credsPath);
    const FileStamp confStamp = stampOf(confPath);
    if (cached_ && credsPath == credsPath_ && confPath == confPath_ && credsStamp == credsStamp_ &&
        confStamp == confStamp_) {
      return *cached_;
    }
    cached_.reset();
    Credentials c = load(credsPath, confPath);
    cached_ = c;
    credsPath_ = credsPath;
    confPath_ = confPath;
    credsStamp_ = credsStamp;
    confStamp_ = confStamp;
    return c;
  }

 private:
  Credentials load(const std::string& credsPath, const std::string& confPath) const {
    for (const auto& [path, isConfig] : {std::pair{credsPath, false}, std::pair{confPath, true}}) {
      auto section = loadProfile(path, isConfig, profile_);
      if (!section) continue;
      auto id = section->find("aws_access_key_id");
      auto secret = section->find("aws_secret_access_key");
      if (id == section->end() || secret == section->end() || id->second.empty() ||
          secret->second.empty()) {
        continue;
      }
      Credentials c;
      c.accessKeyId = id->second;
      c.secretAccessKey = secret->second;
      auto token = section->find("aws_session_token");
      if (token != section->end()) c.sessionToken = token->second;
      return c;
    }
    throw std::runtime_error("AWS profile '" + profile_ +
                             "' has no aws_access_key_id/aws_secret_access_key in " +
                             (credsPath.empty() ? "(no credentials file)" : credsPath) + " or " +
                             (confPath.empty() ? "(no config file)" : confPath) +
                             " (role_arn, sso and credential_process profiles are not supported)");
  }

  const std::string profile_;
  std::mutex mutex_;
  std::optional<Credentials> cached_;
  std::string credsPath_, confPath_;
  FileStamp credsStamp_, confStamp_;
};

}  // namespace

std::unique_ptr<CredentialProvider> staticCredentials(Credentials credentials) {
  return std::make_unique<StaticProvider>(std::move(credentials));
}

std::unique_ptr<CredentialProvider> environmentCredentials() {
  return std::make_unique<EnvironmentProvider>();
}

std::unique_ptr<CredentialProvider> credentialFile(std::string path) {
  return std::make_unique<FileProvider>(std::move(path));
}

std::unique_ptr<CredentialProvider> profileCredentials(std::string profile) {
  return std::make_unique<ProfileProvider>(std::move(profile));
}

std::unique_ptr<CredentialProvider> resolveCredentials(const CredentialSettings& settings,
                                                       std::string& description) {
  const CredentialSettings defaults;
  // The session token that goes with static keys: property, else AWS_SESSION_TOKEN.
  const bool tokenProperty = settings.sessionToken != defaults.sessionToken;
  std::vector<std::string> tried;

  // 1. Properties.
  if (settings.accessKey != defaults.accessKey) {
    if (settings.secretKey == defaults.secretKey || settings.secretKey.empty() ||
        settings.accessKey.empty()) {
      throw std::runtime_error("the access-key property is set but secret-key is not");
    }
    Credentials c;
    c.accessKeyId = settings.accessKey;
    c.secretAccessKey = settings.secretKey;
    c.sessionToken = tokenProperty ? settings.sessionToken : env("AWS_SESSION_TOKEN").value_or("");
    description = "the access-key/secret-key properties";
    return staticCredentials(std::move(c));
  }
  tried.push_back("access-key/secret-key properties (not set)");

  // 2. Environment.
  if (env("AWS_ACCESS_KEY_ID") && env("AWS_SECRET_ACCESS_KEY")) {
    description = "the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY environment variables";
    return std::make_unique<EnvironmentProvider>(
        tokenProperty ? std::optional<std::string>(settings.sessionToken) : std::nullopt);
  }
  tried.push_back("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (not both set)");

  // 3. An explicitly named profile.
  const std::string named = !settings.profile.empty() ? settings.profile
                                                      : env("AWS_PROFILE").value_or("");
  if (!named.empty()) {
    auto provider = profileCredentials(named);
    try {
      provider->get();
    } catch (const std::exception& e) {
      throw std::runtime_error(std::string("Could not use the AWS profile set by ") +
                               (settings.profile.empty() ? "AWS_PROFILE" : "the profile property") +
                               ": " + e.what());
    }
    description = "AWS profile '" + named + "'";
    return provider;
  }
  tried.push_back("profile property/AWS_PROFILE (not set)");

  // 4. The kvssink credential file.
  if (!settings.credentialPath.empty() && std::ifstream(settings.credentialPath).is_open()) {
    auto provider = credentialFile(settings.credentialPath);
    provider->get();  // a malformed file is an error, not a reason to look further
    description = "credential file " + settings.credentialPath;
    return provider;
  }
  tried.push_back(settings.credentialPath.empty()
                      ? std::string("credential-path (empty)")
                      : "credential-path " + settings.credentialPath + " (cannot be opened)");

  // 5. The default profile of the shared files.
  if (fileExists(sharedCredentialsPath()) || fileExists(configPath())) {
    auto provider = profileCredentials("default");
    try {
      provider->get();
      description = "AWS profile 'default'";
      return provider;
    } catch (const std::exception& e) {
      tried.push_back(e.what());
    }
  } else {
    tried.push_back("shared credentials/config files (none found)");
  }

  std::string message = "Could not find any AWS credentials; tried: ";
  for (size_t i = 0; i < tried.size(); ++i) message += (i ? "; " : "") + tried[i];
  throw std::runtime_error(message);
}

std::optional<std::string> profileRegion(std::string profile) {
  auto section = loadProfile(configPath(), true, profileName(std::move(profile)));
  if (!section) return std::nullopt;
  auto it = section->find("region");
  if (it == section->end() || it->second.empty()) return std::nullopt;
  return it->second;
}

}  // namespace kvs
