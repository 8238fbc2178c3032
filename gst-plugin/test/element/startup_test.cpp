// NULL -> READY resolves the credentials (producer-protocol.md §2.3, docs/kvssink.md): without
// usable ones the state change fails with a LIBRARY error that names the problem; iot-certificate
// (not supported yet) fails clearly.
#include "element_support.h"

#include <filesystem>

namespace kvstest {
namespace {

namespace fs = std::filesystem;

std::string credentialData(const std::string& name) {
  return std::string(KVS_TEST_DATA_DIR) + "/credentials/" + name;
}

class Startup : public KvsSinkTest {
 protected:
  void SetUp() override {
    KvsSinkTest::SetUp();
    // Nothing to find: no AWS variable, HOME an empty directory, no credential file.
    for (const char* name : {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                             "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE"}) {
      env_.set(name, std::nullopt);
    }
    ASSERT_FALSE(home_.path().empty());
    env_.set("HOME", home_.path());
    missing_ = home_.path() + "/no-such-dir/credential";
    g_object_set(sink_, "credential-path", missing_.c_str(), nullptr);
  }

  /// NULL -> READY must fail with an ERROR message in `domain`/`code`; returns it.
  ErrorInfo expectStartFailure(GQuark domain, int code) {
    EXPECT_EQ(gst_element_set_state(sink_, GST_STATE_READY), GST_STATE_CHANGE_FAILURE);
    GstState state = GST_STATE_VOID_PENDING;
    gst_element_get_state(sink_, &state, nullptr, 0);
    EXPECT_EQ(state, GST_STATE_NULL);
    auto m = waitForType(bus_, GST_MESSAGE_ERROR, 1s);
    auto e = parseError(m.get());
    if (!e) {
      ADD_FAILURE() << "no ERROR message on the bus";
      return {};
    }
    EXPECT_EQ(GST_MESSAGE_SRC(m.get()), GST_OBJECT(sink_));
    EXPECT_EQ(g_quark_to_string(e->domain), g_quark_to_string(domain));
    EXPECT_EQ(e->code, code);
    return *e;
  }

  void expectStart() {
    EXPECT_EQ(gst_element_set_state(sink_, GST_STATE_READY), GST_STATE_CHANGE_SUCCESS);
    auto m = waitForType(bus_, GST_MESSAGE_ERROR, 10ms);
    if (m) ADD_FAILURE() << "unexpected error: " << parseError(m.get())->message;
  }

  TempDir home_;
  std::string missing_;
};

TEST_F(Startup, NoCredentialsAnywhereFailsNamingWhatWasTried) {
  const ErrorInfo e = expectStartFailure(GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT);
  EXPECT_NE(e.message.find("Could not find any AWS credentials"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("AWS_ACCESS_KEY_ID"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(missing_), std::string::npos) << "names the credential-path: " << e.message;
}

TEST_F(Startup, DefaultCredentialPathIsLookedUpToo) {
  g_object_set(sink_, "credential-path", nullptr, nullptr);  // back to .kvs/credential
  ASSERT_FALSE(fs::exists(".kvs/credential")) << "the test directory has a .kvs/credential";
  const ErrorInfo e = expectStartFailure(GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT);
  EXPECT_NE(e.message.find(".kvs/credential"), std::string::npos) << e.message;
}

TEST_F(Startup, AccessKeyWithoutSecretKeyFails) {
  g_object_set(sink_, "access-key", "AKIDONLY", nullptr);
  const ErrorInfo e = expectStartFailure(GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT);
  EXPECT_NE(e.message.find("secret-key"), std::string::npos) << e.message;
  EXPECT_EQ(e.message.find("AKIDONLY"), std::string::npos) << "no key material in messages";
}

TEST_F(Startup, MissingNamedProfileFails) {
  g_object_set(sink_, "profile", "nobody", nullptr);
  const ErrorInfo e = expectStartFailure(GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT);
  EXPECT_NE(e.message.find("nobody"), std::string::npos) << e.message;
}

TEST_F(Startup, MalformedCredentialFileFails) {
  const std::string path = credentialData("kvs-credential-bad-keyword");
  g_object_set(sink_, "credential-path", path.c_str(), nullptr);
  const ErrorInfo e = expectStartFailure(GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT);
  EXPECT_NE(e.message.find("malformed credential file"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find(path), std::string::npos) << e.message;
}

TEST_F(Startup, IotCertificateFailsClearly) {
  env_.set("AWS_ACCESS_KEY_ID", "AKIDELEMENTTEST");  // usable credentials do not matter
  env_.set("AWS_SECRET_ACCESS_KEY", "element-test-secret");
  GstStructure* iot = gst_structure_from_string(
      "iot-certificate, endpoint=(string)example.credentials.iot.us-west-2.amazonaws.com, "
      "cert-path=(string)/tmp/cert.pem, key-path=(string)/tmp/key.pem, ca-path=(string)/tmp/ca.pem, "
      "role-aliases=(string)alias",
      nullptr);
  ASSERT_NE(iot, nullptr);
  g_object_set(sink_, "iot-certificate", iot, nullptr);
  gst_structure_free(iot);
  const ErrorInfo e = expectStartFailure(GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_SETTINGS);
  EXPECT_NE(e.message.find("iot-certificate"), std::string::npos) << e.message;
  EXPECT_NE(e.message.find("not supported"), std::string::npos) << e.message;
}

TEST_F(Startup, AfterAFailedStartFixedSettingsStart) {
  expectStartFailure(GST_LIBRARY_ERROR, GST_LIBRARY_ERROR_INIT);
  g_object_set(sink_, "access-key", "AKIDPROPERTY", "secret-key", "property-secret", nullptr);
  expectStart();
}

TEST_F(Startup, CredentialFileStarts) {
  g_object_set(sink_, "credential-path", credentialData("kvs-credential-static").c_str(), nullptr);
  expectStart();
}

TEST_F(Startup, DefaultProfileOfHomeStarts) {
  fs::create_directories(home_.path() + "/.aws");
  fs::copy_file(credentialData("aws-credentials"), home_.path() + "/.aws/credentials");
  expectStart();
}

TEST_F(Startup, EnvironmentStarts) {
  env_.set("AWS_ACCESS_KEY_ID", "AKIDENV");
  env_.set("AWS_SECRET_ACCESS_KEY", "env-secret");
  expectStart();
}

}  // namespace
}  // namespace kvstest
