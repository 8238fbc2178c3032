// Which CA certificates kvssink trusts (property, then KVSSINK_CA_CERT_PATH, AWS_KVS_CACERT_PATH,
// AWS_CA_BUNDLE) and how libcurl's results map to TLS failures and their messages.
#include "kvs/tls.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <map>
#include <optional>
#include <string>

namespace {

const char* kVars[] = {"KVSSINK_CA_CERT_PATH", "AWS_KVS_CACERT_PATH", "AWS_CA_BUNDLE"};

class TlsEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    for (const char* v : kVars) {
      if (const char* old = getenv(v)) saved_[v] = old;
      unsetenv(v);
    }
  }
  void TearDown() override {
    for (const char* v : kVars) {
      auto it = saved_.find(v);
      if (it != saved_.end()) setenv(v, it->second.c_str(), 1);
      else unsetenv(v);
    }
  }
  std::map<std::string, std::string> saved_;
};

TEST_F(TlsEnv, PropertyThenEachVariableInOrder) {
  EXPECT_EQ(kvs::resolveCaCertPath(""), "");
  setenv("AWS_CA_BUNDLE", "/bundle.pem", 1);
  EXPECT_EQ(kvs::resolveCaCertPath(""), "/bundle.pem");
  setenv("AWS_KVS_CACERT_PATH", "/kvs.pem", 1);
  EXPECT_EQ(kvs::resolveCaCertPath(""), "/kvs.pem");
  setenv("KVSSINK_CA_CERT_PATH", "/sink.pem", 1);
  EXPECT_EQ(kvs::resolveCaCertPath(""), "/sink.pem");
  EXPECT_EQ(kvs::resolveCaCertPath("/property.pem"), "/property.pem");
  setenv("KVSSINK_CA_CERT_PATH", "", 1);  // set but empty: skipped
  EXPECT_EQ(kvs::resolveCaCertPath(""), "/kvs.pem");
}

TEST(TlsFailure, ClassifiesCurlResults) {
  EXPECT_EQ(kvs::classifyTlsFailure(CURLE_OK), kvs::TlsFailure::None);
  EXPECT_EQ(kvs::classifyTlsFailure(CURLE_COULDNT_CONNECT), kvs::TlsFailure::None);
  EXPECT_EQ(kvs::classifyTlsFailure(CURLE_OPERATION_TIMEDOUT), kvs::TlsFailure::None);
  EXPECT_EQ(kvs::classifyTlsFailure(CURLE_PEER_FAILED_VERIFICATION), kvs::TlsFailure::Certificate);
  EXPECT_EQ(kvs::classifyTlsFailure(CURLE_SSL_CACERT_BADFILE), kvs::TlsFailure::Configuration);
  EXPECT_EQ(kvs::classifyTlsFailure(CURLE_SSL_CONNECT_ERROR), kvs::TlsFailure::Handshake);
}

TEST(TlsFailure, MessagesNameTheEndpointTheTrustedCaAndTheFix) {
  const std::string untrusted =
      kvs::describeTlsFailure(kvs::TlsFailure::Certificate, "https://cam.example:8443", "", "self-signed certificate");
  EXPECT_NE(untrusted.find("https://cam.example:8443 is not trusted"), std::string::npos) << untrusted;
  EXPECT_NE(untrusted.find("the system store"), std::string::npos) << untrusted;
  EXPECT_NE(untrusted.find("ca-cert"), std::string::npos) << untrusted;
  const std::string badFile =
      kvs::describeTlsFailure(kvs::TlsFailure::Configuration, "https://h", "/missing.pem", "error setting certificate file");
  EXPECT_NE(badFile.find("/missing.pem cannot be used"), std::string::npos) << badFile;
  const std::string handshake = kvs::describeTlsFailure(kvs::TlsFailure::Handshake, "https://h:80", "", "wrong version number");
  EXPECT_NE(handshake.find("speaks https"), std::string::npos) << handshake;
}

}  // namespace
