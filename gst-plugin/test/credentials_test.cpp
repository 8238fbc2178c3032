// Credential providers and the kvssink precedence (producer-protocol.md §2.2, §2.3), with real
// files in a temporary directory and environment variables set and restored by each test.
#include "kvs/credentials.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::system_clock;
using namespace std::chrono_literals;

const char* kEnvVars[] = {"AWS_ACCESS_KEY_ID",     "AWS_SECRET_ACCESS_KEY",
                          "AWS_SESSION_TOKEN",     "AWS_PROFILE",
                          "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
                          "HOME"};

std::string dataFile(const std::string& name) {
  return std::string(KVS_TEST_DATA_DIR) + "/credentials/" + name;
}

void writeFile(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
}

std::string iso8601(Clock::time_point t) {
  const std::time_t tt = Clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Every test starts from a clean environment: HOME is an empty temporary directory and no AWS
// variable is set. The original values come back afterwards.
class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* name : kEnvVars) {
      const char* v = std::getenv(name);
      saved_[name] = v ? std::optional<std::string>(v) : std::nullopt;
      unsetenv(name);
    }
    char pattern[] = "/tmp/kvs-credentials-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    setenv("HOME", dir_.c_str(), 1);
  }

  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    for (const auto& [name, value] : saved_) {
      if (value) {
        setenv(name.c_str(), value->c_str(), 1);
      } else {
        unsetenv(name.c_str());
      }
    }
  }

  // Installs the sample shared files where the AWS tools look by default (~/.aws/).
  void installSharedFiles() {
    fs::create_directories(dir_ / ".aws");
    fs::copy_file(dataFile("aws-credentials"), dir_ / ".aws" / "credentials");
    fs::copy_file(dataFile("aws-config"), dir_ / ".aws" / "config");
  }

  fs::path dir_;
  std::map<std::string, std::optional<std::string>> saved_;
};

// ---------------------------------------------------------------- static and environment

TEST_F(CredentialsTest, StaticReturnsWhatItWasGiven) {
  kvs::Credentials c{"AKID", "secret", "token", Clock::time_point(1000s)};
  auto provider = kvs::staticCredentials(c);
  const auto got = provider->get();
  EXPECT_EQ(got.accessKeyId, "AKID");
  EXPECT_EQ(got.secretAccessKey, "secret");
  EXPECT_EQ(got.sessionToken, "token");
  EXPECT_EQ(got.expiration, c.expiration);
}

TEST_F(CredentialsTest, EnvironmentIsReadOnEveryGet) {
  auto provider = kvs::environmentCredentials();
  EXPECT_THROW(provider->get(), std::runtime_error);

  setenv("AWS_ACCESS_KEY_ID", "AKIDENV1", 1);
  EXPECT_THROW(provider->get(), std::runtime_error) << "secret key missing";
  setenv("AWS_SECRET_ACCESS_KEY", "secretenv1", 1);
  auto c = provider->get();
  EXPECT_EQ(c.accessKeyId, "AKIDENV1");
  EXPECT_EQ(c.secretAccessKey, "secretenv1");
  EXPECT_EQ(c.sessionToken, "");
  EXPECT_FALSE(c.expiration.has_value());

  setenv("AWS_ACCESS_KEY_ID", "AKIDENV2", 1);
  setenv("AWS_SESSION_TOKEN", "tokenenv2", 1);
  c = provider->get();
  EXPECT_EQ(c.accessKeyId, "AKIDENV2");
  EXPECT_EQ(c.sessionToken, "tokenenv2");

  setenv("AWS_SECRET_ACCESS_KEY", "", 1);
  EXPECT_THROW(provider->get(), std::runtime_error) << "empty counts as unset";
}

// ---------------------------------------------------------------- credential-path file

TEST_F(CredentialsTest, FileWithoutExpirationExpiresIn40Minutes) {
  auto provider = kvs::credentialFile(dataFile("kvs-credential-static"));
  const auto before = Clock::now();
  const auto c = provider->get();
  EXPECT_EQ(c.accessKeyId, "AKIDFILESTATIC");
  EXPECT_EQ(c.secretAccessKey, "secretfilestatic");
  EXPECT_EQ(c.sessionToken, "");
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_GE(*c.expiration, before + 40min);
  EXPECT_LE(*c.expiration, Clock::now() + 40min);
}

TEST_F(CredentialsTest, FileExpirationIsCappedAt40Minutes) {
  auto provider = kvs::credentialFile(dataFile("kvs-credential-session"));
  const auto c = provider->get();
  EXPECT_EQ(c.accessKeyId, "AKIDFILESESSION");
  EXPECT_EQ(c.secretAccessKey, "secretfilesession");
  EXPECT_EQ(c.sessionToken, "tokenfilesession");
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_LE(*c.expiration, Clock::now() + 40min);  // the file says 2099
  EXPECT_GT(*c.expiration, Clock::now() + 39min);
}

TEST_F(CredentialsTest, FileExpirationIsParsedAsUtc) {
  const auto expiration = Clock::now() + 10min;
  const fs::path path = dir_ / "credential";
  writeFile(path, "CREDENTIALS AKID " + iso8601(expiration) + " secret token\n");
  const auto c = kvs::credentialFile(path.string())->get();
  ASSERT_TRUE(c.expiration.has_value());
  EXPECT_LE(*c.expiration, expiration);
  EXPECT_GT(*c.expiration, expiration - 2s);  // the file has whole seconds
}

TEST_F(CredentialsTest, FileIsReadAgainOnlyWhenLessThan38SecondsRemain) {
  const fs::path path = dir_ / "credential";

  // Valid for an hour: a rewrite is not noticed before the cached credentials near expiry.
  writeFile(path, "CREDENTIALS AKIDHOUR " + iso8601(Clock::now() + 1h) + " secret1 token1\n");
  auto provider = kvs::credentialFile(path.string());
  EXPECT_EQ(provider->get().accessKeyId, "AKIDHOUR");
  writeFile(path, "CREDENTIALS AKIDNEXT " + iso8601(Clock::now() + 1h) + " secret2 token2\n");
  EXPECT_EQ(provider->get().accessKeyId, "AKIDHOUR");

  // Valid for 30 s (< 38 s): every get() reads the file again.
  writeFile(path, "CREDENTIALS AKIDSHORT " + iso8601(Clock::now() + 30s) + " secret3 token3\n");
  auto shortLived = kvs::credentialFile(path.string());
  EXPECT_EQ(shortLived->get().accessKeyId, "AKIDSHORT");
  writeFile(path, "CREDENTIALS half-written\n");
  EXPECT_EQ(shortLived->get().accessKeyId, "AKIDSHORT") << "still valid: kept";
  writeFile(path, "CREDENTIALS AKIDROTATED " + iso8601(Clock::now() + 1h) + " secret4 token4\n");
  const auto rotated = shortLived->get();
  EXPECT_EQ(rotated.accessKeyId, "AKIDROTATED");
  EXPECT_EQ(rotated.sessionToken, "token4");
}

TEST_F(CredentialsTest, FileErrorsAreClearAndKeepSecretsOut) {
  for (const char* name : {"kvs-credential-bad-token-count", "kvs-credential-bad-date",
                           "kvs-credential-bad-keyword"}) {
    auto provider = kvs::credentialFile(dataFile(name));
    try {
      provider->get();
      ADD_FAILURE() << name << " was accepted";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find("malformed credential file"), std::string::npos) << what;
      EXPECT_NE(what.find(name), std::string::npos) << what;
      EXPECT_EQ(what.find("secretfilebad"), std::string::npos) << what;
      EXPECT_EQ(what.find("tokenfilebad"), std::string::npos) << what;
    }
  }
  EXPECT_THROW(kvs::credentialFile((dir_ / "missing").string())->get(), std::runtime_error);

  const fs::path expired = dir_ / "expired";
  writeFile(expired, "CREDENTIALS AKID 2001-01-01T00:00:00Z secret token\n");
  try {
    kvs::credentialFile(expired.string())->get();
    ADD_FAILURE() << "expired credentials were accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("expired at 2001-01-01T00:00:00Z"), std::string::npos)
        << e.what();
  }
}

TEST_F(CredentialsTest, FileProviderIsUsableFromSeveralThreads) {
  const fs::path path = dir_ / "credential";
  writeFile(path, "CREDENTIALS AKIDTHREADS " + iso8601(Clock::now() + 20s) + " secret token\n");
  auto provider = kvs::credentialFile(path.string());
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 100; ++i) {
        if (provider->get().accessKeyId == "AKIDTHREADS") ++good;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 400);
}

// ---------------------------------------------------------------- AWS shared files

TEST_F(CredentialsTest, ProfileFromTheDefaultLocations) {
  installSharedFiles();
  const auto def = kvs::profileCredentials("")->get();
  EXPECT_EQ(def.accessKeyId, "AKIDDEFAULT");
  EXPECT_EQ(def.secretAccessKey, "secretdefault");
  EXPECT_EQ(def.sessionToken, "");
  EXPECT_FALSE(def.expiration.has_value());

  const auto dev = kvs::profileCredentials("dev")->get();
  EXPECT_EQ(dev.accessKeyId, "AKIDDEV");
  EXPECT_EQ(dev.secretAccessKey, "secretdev");
  EXPECT_EQ(dev.sessionToken, "tokendev");

  setenv("AWS_PROFILE", "dev", 1);
  EXPECT_EQ(kvs::profileCredentials("")->get().accessKeyId, "AKIDDEV");
  EXPECT_EQ(kvs::profileCredentials("default")->get().accessKeyId, "AKIDDEFAULT");
}

TEST_F(CredentialsTest, ProfileFromTheConfigFileAndPrecedenceOfTheCredentialsFile) {
  setenv("AWS_SHARED_CREDENTIALS_FILE", dataFile("aws-credentials").c_str(), 1);
  setenv("AWS_CONFIG_FILE", dataFile("aws-config").c_str(), 1);
  // Only in the config file; the indented (nested s3) key does not override the profile's.
  const auto cfg = kvs::profileCredentials("cfg")->get();
  EXPECT_EQ(cfg.accessKeyId, "AKIDCONFIG");
  EXPECT_EQ(cfg.secretAccessKey, "secretconfig");
  // In both: the credentials file wins (its key name is upper case, which is accepted).
  EXPECT_EQ(kvs::profileCredentials("both")->get().accessKeyId, "AKIDBOTHCREDENTIALS");
}

TEST_F(CredentialsTest, ProfileErrorsNameTheProfileAndTheFiles) {
  setenv("AWS_SHARED_CREDENTIALS_FILE", dataFile("aws-credentials").c_str(), 1);
  setenv("AWS_CONFIG_FILE", dataFile("aws-config").c_str(), 1);
  for (const char* profile : {"nosuchprofile", "sso"}) {
    try {
      kvs::profileCredentials(profile)->get();
      ADD_FAILURE() << profile << " gave credentials";
    } catch (const std::runtime_error& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(std::string("'") + profile + "'"), std::string::npos) << what;
      EXPECT_NE(what.find("aws-credentials"), std::string::npos) << what;
      EXPECT_NE(what.find("not supported"), std::string::npos) << what;
    }
  }
}

TEST_F(CredentialsTest, ProfileRotatedKeysAreUsedForTheNextGet) {
  const fs::path creds = dir_ / "rotating-credentials";
  setenv("AWS_SHARED_CREDENTIALS_FILE", creds.c_str(), 1);
  writeFile(creds, "[default]\naws_access_key_id = AKIDOLD\naws_secret_access_key = secretold\n");
  auto provider = kvs::profileCredentials("");
  EXPECT_EQ(provider->get().accessKeyId, "AKIDOLD");

  // Same size, so only the modification time tells the versions apart.
  writeFile(creds, "[default]\naws_access_key_id = AKIDNEW\naws_secret_access_key = secretnew\n");
  fs::last_write_time(creds, fs::last_write_time(creds) + 2s);
  auto c = provider->get();
  EXPECT_EQ(c.accessKeyId, "AKIDNEW");
  EXPECT_EQ(c.secretAccessKey, "secretnew");

  // Replaced by rename (how most tools rotate files).
  const fs::path staged = dir_ / "staged";
  writeFile(staged,
            "[default]\naws_access_key_id = AKIDRENAMED\naws_secret_access_key = secretrenamed\n"
            "aws_session_token = tokenrenamed\n");
  fs::rename(staged, creds);
  c = provider->get();
  EXPECT_EQ(c.accessKeyId, "AKIDRENAMED");
  EXPECT_EQ(c.sessionToken, "tokenrenamed");

  fs::remove(creds);
  EXPECT_THROW(provider->get(), std::runtime_error);
}

TEST_F(CredentialsTest, ProfileRegionComesFromTheConfigFile) {
  EXPECT_EQ(kvs::profileRegion(""), std::nullopt) << "no config file";
  setenv("AWS_CONFIG_FILE", dataFile("aws-config").c_str(), 1);
  EXPECT_EQ(kvs::profileRegion(""), "eu-west-1");
  EXPECT_EQ(kvs::profileRegion("cfg"), "ap-southeast-2");
  EXPECT_EQ(kvs::profileRegion("dev"), std::nullopt) << "[dev] is not a profile in a config file";
  EXPECT_EQ(kvs::profileRegion("sso"), std::nullopt);
  setenv("AWS_PROFILE", "both", 1);
  EXPECT_EQ(kvs::profileRegion(""), "us-east-2");
}

// ---------------------------------------------------------------- precedence

TEST_F(CredentialsTest, PropertiesComeFirst) {
  installSharedFiles();
  setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
  setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
  kvs::CredentialSettings s;
  s.accessKey = "AKIDPROP";
  s.secretKey = "secretprop";
  std::string description;
  auto c = kvs::resolveCredentials(s, description)->get();
  EXPECT_EQ(c.accessKeyId, "AKIDPROP");
  EXPECT_EQ(c.secretAccessKey, "secretprop");
  EXPECT_EQ(c.sessionToken, "tokenenv") << "session token falls back to AWS_SESSION_TOKEN";
  EXPECT_NE(description.find("properties"), std::string::npos) << description;
  EXPECT_EQ(description.find("secretprop"), std::string::npos);

  s.sessionToken = "tokenprop";
  c = kvs::resolveCredentials(s, description)->get();
  EXPECT_EQ(c.sessionToken, "tokenprop");

  s.secretKey = "secret_key";  // the sentinel: not set
  EXPECT_THROW(kvs::resolveCredentials(s, description), std::runtime_error);
}

TEST_F(CredentialsTest, EnvironmentComesSecond) {
  installSharedFiles();
  const fs::path file = dir_ / "credential";
  writeFile(file, "CREDENTIALS AKIDFILE secretfile\n");
  setenv("AWS_PROFILE", "dev", 1);
  setenv("AWS_ACCESS_KEY_ID", "AKIDENV", 1);
  setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
  kvs::CredentialSettings s;
  s.credentialPath = file.string();
  std::string description;
  auto provider = kvs::resolveCredentials(s, description);
  EXPECT_EQ(provider->get().accessKeyId, "AKIDENV");
  EXPECT_NE(description.find("AWS_ACCESS_KEY_ID"), std::string::npos) << description;

  // Still the environment provider: later changes are picked up.
  setenv("AWS_ACCESS_KEY_ID", "AKIDENV2", 1);
  EXPECT_EQ(provider->get().accessKeyId, "AKIDENV2");

  // The session-token property goes with the environment keys too.
  s.sessionToken = "tokenprop";
  setenv("AWS_SESSION_TOKEN", "tokenenv", 1);
  EXPECT_EQ(kvs::resolveCredentials(s, description)->get().sessionToken, "tokenprop");
}

TEST_F(CredentialsTest, NamedProfileComesBeforeTheCredentialFile) {
  installSharedFiles();
  const fs::path file = dir_ / "credential";
  writeFile(file, "CREDENTIALS AKIDFILE secretfile\n");
  kvs::CredentialSettings s;
  s.credentialPath = file.string();
  std::string description;

  setenv("AWS_PROFILE", "dev", 1);
  EXPECT_EQ(kvs::resolveCredentials(s, description)->get().accessKeyId, "AKIDDEV");
  EXPECT_NE(description.find("'dev'"), std::string::npos) << description;

  s.profile = "cfg";  // the property wins over AWS_PROFILE
  EXPECT_EQ(kvs::resolveCredentials(s, description)->get().accessKeyId, "AKIDCONFIG");

  s.profile = "nosuchprofile";  // named but missing: an error, not a fall-through
  try {
    kvs::resolveCredentials(s, description);
    ADD_FAILURE() << "a missing named profile was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("profile property"), std::string::npos) << e.what();
  }
}

TEST_F(CredentialsTest, CredentialFileComesBeforeTheDefaultProfile) {
  installSharedFiles();
  const fs::path file = dir_ / "credential";
  writeFile(file, "CREDENTIALS AKIDFILE secretfile\n");
  kvs::CredentialSettings s;
  s.credentialPath = file.string();
  std::string description;
  EXPECT_EQ(kvs::resolveCredentials(s, description)->get().accessKeyId, "AKIDFILE");
  EXPECT_NE(description.find(file.string()), std::string::npos) << description;

  // A malformed file is reported, not skipped.
  writeFile(file, "CREDENTIALS only-two\n");
  EXPECT_THROW(kvs::resolveCredentials(s, description), std::runtime_error);

  // No file: the default profile.
  s.credentialPath = (dir_ / "missing").string();
  EXPECT_EQ(kvs::resolveCredentials(s, description)->get().accessKeyId, "AKIDDEFAULT");
  EXPECT_NE(description.find("'default'"), std::string::npos) << description;
}

TEST_F(CredentialsTest, NothingFoundListsWhatWasTried) {
  kvs::CredentialSettings s;
  s.credentialPath = (dir_ / "missing").string();
  std::string description;
  try {
    kvs::resolveCredentials(s, description);
    ADD_FAILURE() << "credentials were found";
  } catch (const std::runtime_error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("Could not find any AWS credentials", 0), 0u) << what;
    const std::string missing = (dir_ / "missing").string();
    for (const std::string& tried : {std::string("access-key"), std::string("AWS_ACCESS_KEY_ID"),
                                     std::string("AWS_PROFILE"), missing,
                                     std::string("shared credentials")}) {
      EXPECT_NE(what.find(tried), std::string::npos) << tried << " in " << what;
    }
  }

  // Shared files that exist but have no default profile: still "not found", with the reason.
  writeFile(dir_ / ".aws" / "config", "[profile other]\nregion = eu-west-1\n");
  try {
    kvs::resolveCredentials(s, description);
    ADD_FAILURE() << "credentials were found";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("'default'"), std::string::npos) << e.what();
  }
}

}  // namespace
