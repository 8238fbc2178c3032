// SigV4 signer (producer-protocol.md §2.1).
//
// Two kinds of expected values:
//  - published vectors of the AWS Signature Version 4 test suite (the cases whose rules this
//    signer shares: no query sorting, no inner-whitespace folding);
//  - kvssink request shapes whose canonical requests are written by hand in
//    data/sigv4/*.creq and whose signatures are computed here with the `openssl dgst` command,
//    independently of the code under test.
#include "kvs/sigv4.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using kvs::Credentials;
using kvs::HttpHeader;
using kvs::SigningInput;

const char* kSuiteAccessKey = "AKIDEXAMPLE";
const char* kSuiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
const char* kSuiteScope = "AKIDEXAMPLE/20150830/us-east-1/service/aws4_request";

std::chrono::system_clock::time_point suiteTime() {
  return std::chrono::system_clock::from_time_t(1440938160);  // 2015-08-30T12:36:00Z
}

Credentials suiteCredentials() {
  Credentials c;
  c.accessKeyId = kSuiteAccessKey;
  c.secretAccessKey = kSuiteSecret;
  return c;
}

SigningInput suiteInput(const std::string& method, std::vector<HttpHeader> extra = {}) {
  SigningInput in;
  in.method = method;
  in.path = "/";
  in.headers = {{"Host", "example.amazonaws.com"}};
  for (auto& h : extra) in.headers.push_back(std::move(h));
  in.region = "us-east-1";
  in.service = "service";
  in.time = suiteTime();
  return in;
}

std::string headerValue(const std::vector<HttpHeader>& headers, const std::string& name) {
  for (const auto& h : headers) {
    if (h.name == name) return h.value;
  }
  return "<absent>";
}

std::string readData(const std::string& relative) {
  std::ifstream in(std::string(KVS_TEST_DATA_DIR) + "/" + relative, std::ios::binary);
  if (!in) throw std::runtime_error("missing test data " + relative);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string toHex(const std::string& bytes) {
  static const char digits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(digits[c >> 4]);
    out.push_back(digits[c & 15]);
  }
  return out;
}

// ---- an independent SHA-256 / HMAC-SHA256 through the openssl command-line tool ----

std::string opensslDgst(const std::string& extraArgs, const std::string& input) {
  char path[] = "/tmp/kvs-sigv4-test-XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  const ssize_t written = write(fd, input.data(), input.size());
  close(fd);
  if (written != static_cast<ssize_t>(input.size())) throw std::runtime_error("write failed");
  const std::string command = "openssl dgst -sha256 -r " + extraArgs + " " + path + " 2>/dev/null";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  if (pipe != nullptr) {
    char buf[256];
    while (fgets(buf, sizeof buf, pipe) != nullptr) output += buf;
    pclose(pipe);
  }
  unlink(path);
  const std::string hex = output.substr(0, output.find(' '));
  if (hex.size() != 64) throw std::runtime_error("openssl dgst failed: " + command);
  return hex;
}

std::string cliSha256(const std::string& data) { return opensslDgst("", data); }

std::string cliHmac(const std::string& hexKey, const std::string& data) {
  return opensslDgst("-mac HMAC -macopt hexkey:" + hexKey, data);
}

bool haveOpensslCli() {
  try {
    return cliSha256("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  } catch (const std::exception&) {
    return false;
  }
}

// SigV4 from a canonical request, step by step as the spec describes it.
std::string cliSignature(const std::string& canonicalRequest, const std::string& amzDate,
                         const std::string& region, const std::string& service,
                         const std::string& secret) {
  const std::string date = amzDate.substr(0, 8);
  const std::string stringToSign = "AWS4-HMAC-SHA256\n" + amzDate + "\n" + date + "/" + region +
                                   "/" + service + "/aws4_request\n" + cliSha256(canonicalRequest);
  std::string key = cliHmac(toHex("AWS4" + secret), date);
  key = cliHmac(key, region);
  key = cliHmac(key, service);
  key = cliHmac(key, "aws4_request");
  return cliHmac(key, stringToSign);
}

// ---------------------------------------------------------------- primitives

TEST(SigV4, Sha256HexMatchesPublishedVectors) {
  EXPECT_EQ(kvs::sha256Hex("", 0), kvs::kEmptyPayloadSha256);
  EXPECT_EQ(kvs::sha256Hex(std::string("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const std::string twoBlocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  EXPECT_EQ(kvs::sha256Hex(twoBlocks.data(), twoBlocks.size()),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(SigV4, HmacSha256MatchesRfc4231Case2) {
  EXPECT_EQ(kvs::hmacSha256Hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

TEST(SigV4, AmzDateIsUtcBasicFormat) {
  EXPECT_EQ(kvs::amzDate(suiteTime()), "20150830T123600Z");
  EXPECT_EQ(kvs::amzDate(std::chrono::system_clock::from_time_t(0)), "19700101T000000Z");
  // Sub-second parts are dropped, not rounded.
  EXPECT_EQ(kvs::amzDate(suiteTime() + std::chrono::milliseconds(999)), "20150830T123600Z");
}

// ---------------------------------------------------------------- AWS test-suite vectors

TEST(SigV4Suite, GetVanilla) {
  const auto in = suiteInput("GET");
  const auto parts = kvs::signatureParts(in, suiteCredentials());
  EXPECT_EQ(parts.canonicalRequest,
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
            "host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(parts.stringToSign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
            "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");

  const auto added = kvs::signV4(in, suiteCredentials());
  ASSERT_EQ(added.size(), 2u);
  EXPECT_EQ(added[0].name, "X-Amz-Date");
  EXPECT_EQ(added[0].value, "20150830T123600Z");
  EXPECT_EQ(added[1].name, "Authorization");
  EXPECT_EQ(added[1].value,
            std::string("AWS4-HMAC-SHA256 Credential=") + kSuiteScope +
                ", SignedHeaders=host;x-amz-date, "
                "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4Suite, PostVanilla) {
  const auto parts = kvs::signatureParts(suiteInput("POST"), suiteCredentials());
  EXPECT_EQ(parts.signedHeaders, "host;x-amz-date");
  EXPECT_EQ(parts.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4Suite, PostHeaderKeyCaseUsesTheGivenDateHeader) {
  // The request already carries X-Amz-Date (mixed case): it is signed as is and not added again,
  // whatever `time` says.
  auto in = suiteInput("POST", {{"X-Amz-Date", "20150830T123600Z"}});
  in.time = std::chrono::system_clock::from_time_t(0);
  const auto added = kvs::signV4(in, suiteCredentials());
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0].name, "Authorization");
  EXPECT_NE(added[0].value.find(
                "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"),
            std::string::npos)
      << added[0].value;
}

TEST(SigV4Suite, PostHeaderKeySort) {
  const auto parts =
      kvs::signatureParts(suiteInput("POST", {{"My-Header1", "value1"}}), suiteCredentials());
  EXPECT_EQ(parts.signedHeaders, "host;my-header1;x-amz-date");
  EXPECT_EQ(kvs::sha256Hex(parts.canonicalRequest),
            "9368318c2967cf6de74404b30c65a91e8f6253e0a8659d6d5319f1a812f87d65");
  EXPECT_EQ(parts.signature, "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c");
}

TEST(SigV4Suite, PostHeaderValueCaseIsPreserved) {
  const auto parts =
      kvs::signatureParts(suiteInput("POST", {{"My-Header1", "VALUE1"}}), suiteCredentials());
  EXPECT_EQ(parts.signature, "cdbc9802e29d2942e5e10b5bccfdd67c5f22c7c4e8ae67b53629efa58b974b7d");
}

TEST(SigV4Suite, PostVanillaQueryIsUsedVerbatim) {
  auto in = suiteInput("POST");
  in.query = "Param1=value1";
  EXPECT_EQ(kvs::signatureParts(in, suiteCredentials()).signature,
            "28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11");
}

TEST(SigV4Suite, PostStsHeaderAfterLeavesTheTokenUnsigned) {
  // post-sts-header-after: the token is added after signing, so the signature is post-vanilla's.
  auto credentials = suiteCredentials();
  credentials.sessionToken = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQW";
  const auto added = kvs::signV4(suiteInput("POST"), credentials);
  ASSERT_EQ(added.size(), 3u);
  EXPECT_EQ(added[1].value,
            std::string("AWS4-HMAC-SHA256 Credential=") + kSuiteScope +
                ", SignedHeaders=host;x-amz-date, "
                "Signature=5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
  EXPECT_EQ(added[2].name, "x-amz-security-token");
  EXPECT_EQ(added[2].value, credentials.sessionToken);
}

// ---------------------------------------------------------------- kvssink request shapes

const char* kUserAgent = "AWS-SDK-KVS-CPP-CLIENT/3.6.0/1.6.2 GCC/11.4.0 Linux/6.5.0 x86_64 CPPSDK";

Credentials kvsCredentials() {
  Credentials c;
  c.accessKeyId = "AKIAIOSFODNN7EXAMPLE";
  c.secretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
  c.sessionToken = "FwoGZXIvYXdzEXAMPLE/token+with=chars";
  return c;
}

class SigV4Kvs : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!haveOpensslCli()) GTEST_SKIP() << "the openssl command is not available";
  }
};

TEST_F(SigV4Kvs, ControlPlaneRequestSignsHostUserAgentAndDate) {
  const std::string body = "{\n\t\"StreamName\": \"cam1\"\n}";
  SigningInput in;
  in.method = "POST";
  in.path = "/describeStream";
  in.headers = {{"user-agent", kUserAgent},
                {"host", "kinesisvideo.us-west-2.amazonaws.com"},
                {"content-type", "application/json"},
                {"content-length", std::to_string(body.size())}};
  in.payloadSha256Hex = kvs::sha256Hex(body);
  in.region = "us-west-2";
  in.time = suiteTime();
  const auto credentials = kvsCredentials();

  const std::string expected = readData("sigv4/describe-stream.creq");
  EXPECT_EQ(in.payloadSha256Hex, cliSha256(body));
  const auto parts = kvs::signatureParts(in, credentials);
  EXPECT_EQ(parts.canonicalRequest, expected);
  EXPECT_EQ(parts.signedHeaders, "host;user-agent;x-amz-date");
  EXPECT_EQ(parts.scope, "20150830/us-west-2/kinesisvideo/aws4_request");

  const auto added = kvs::signV4(in, credentials);
  ASSERT_EQ(added.size(), 3u);
  EXPECT_EQ(added[0].name, "X-Amz-Date");
  EXPECT_EQ(added[0].value, "20150830T123600Z");
  EXPECT_EQ(added[1].name, "Authorization");
  EXPECT_EQ(added[1].value,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20150830/us-west-2/kinesisvideo/"
            "aws4_request, SignedHeaders=host;user-agent;x-amz-date, Signature=" +
                cliSignature(expected, "20150830T123600Z", "us-west-2", "kinesisvideo",
                             credentials.secretAccessKey));
  EXPECT_EQ(added[2].name, "x-amz-security-token");
  EXPECT_EQ(added[2].value, credentials.sessionToken);
}

TEST_F(SigV4Kvs, PutMediaSignsItsHeaderSetWithTheEmptyPayloadHash) {
  SigningInput in;
  in.method = "POST";
  in.path = "/putMedia";
  // In the order the producer adds them; the signer sorts.
  in.headers = {{"user-agent", kUserAgent},
                {"x-amzn-stream-name", "cam1"},
                {"x-amzn-producer-start-timestamp", "1440938160.000"},
                {"x-amzn-fragment-acknowledgment-required", "1"},
                {"x-amzn-fragment-timecode-type", "ABSOLUTE"},
                {"transfer-encoding", "chunked"},
                {"connection", "keep-alive"},
                {"host", "s-12345678.kinesisvideo.us-west-2.amazonaws.com"},
                {"content-type", "application/json"}};
  in.region = "us-west-2";
  in.time = suiteTime();  // payloadSha256Hex left empty: the empty-payload hash
  const auto credentials = kvsCredentials();

  const std::string expected = readData("sigv4/put-media.creq");
  const auto parts = kvs::signatureParts(in, credentials);
  EXPECT_EQ(parts.canonicalRequest, expected);
  EXPECT_EQ(parts.signedHeaders,
            "connection;host;transfer-encoding;user-agent;x-amz-date;"
            "x-amzn-fragment-acknowledgment-required;x-amzn-fragment-timecode-type;"
            "x-amzn-producer-start-timestamp;x-amzn-stream-name");
  EXPECT_EQ(parts.signature, cliSignature(expected, "20150830T123600Z", "us-west-2",
                                          "kinesisvideo", credentials.secretAccessKey));

  const auto added = kvs::signV4(in, credentials);
  EXPECT_EQ(headerValue(added, "x-amz-security-token"), credentials.sessionToken);
}

TEST_F(SigV4Kvs, ValuesAreTrimmedButNotFoldedAndRepeatedNamesAreJoined) {
  auto in = suiteInput("POST", {{"My-Header2", "  a   b   c \t"},
                                {"my-header3", "one"},
                                {"My-Header1", "value1"},
                                {"MY-HEADER3", " two "}});
  const std::string expected = readData("sigv4/trim-and-merge.creq");
  const auto parts = kvs::signatureParts(in, suiteCredentials());
  EXPECT_EQ(parts.canonicalRequest, expected);
  EXPECT_EQ(parts.signature,
            cliSignature(expected, "20150830T123600Z", "us-east-1", "service", kSuiteSecret));
}

// ---------------------------------------------------------------- rules

TEST(SigV4, ExcludedHeadersAreNotSignedWhateverTheirCase) {
  auto in = suiteInput("POST", {{"Content-Type", "application/json"},
                                {"content-length", "12"},
                                {"Authorization", "old"},
                                {"X-Amz-Security-Token", "tok"}});
  const auto withExtras = kvs::signatureParts(in, suiteCredentials());
  EXPECT_EQ(withExtras.signedHeaders, "host;x-amz-date");
  EXPECT_EQ(withExtras.signature,
            "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4, EmptyPathSignsAsSlash) {
  auto in = suiteInput("GET");
  in.path = "";
  EXPECT_EQ(kvs::signatureParts(in, suiteCredentials()).signature,
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
}

TEST(SigV4, ExplicitPayloadHashIsUsed) {
  auto in = suiteInput("POST");
  in.payloadSha256Hex = kvs::sha256Hex(std::string("{}"));
  const auto parts = kvs::signatureParts(in, suiteCredentials());
  EXPECT_EQ(parts.canonicalRequest.substr(parts.canonicalRequest.size() - 64),
            in.payloadSha256Hex);
  EXPECT_NE(parts.signature, "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b");
}

TEST(SigV4, NoSessionTokenMeansNoTokenHeader) {
  const auto added = kvs::signV4(suiteInput("GET"), suiteCredentials());
  EXPECT_EQ(headerValue(added, "x-amz-security-token"), "<absent>");
}

TEST(SigV4, RejectsMissingKeysAndMalformedDates) {
  Credentials noSecret = suiteCredentials();
  noSecret.secretAccessKey.clear();
  EXPECT_THROW(kvs::signV4(suiteInput("GET"), noSecret), std::invalid_argument);
  Credentials noId = suiteCredentials();
  noId.accessKeyId.clear();
  EXPECT_THROW(kvs::signV4(suiteInput("GET"), noId), std::invalid_argument);
  EXPECT_THROW(kvs::signV4(suiteInput("GET", {{"x-amz-date", "2015-08-30T12:36:00Z"}}),
                           suiteCredentials()),
               std::invalid_argument);
}

}  // namespace
