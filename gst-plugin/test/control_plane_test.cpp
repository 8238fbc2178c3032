// Control-plane client (producer-protocol.md §1, §2.1; service-api.md §1.5) over real HTTP:
// a small HTTP/1.1 server runs on 127.0.0.1 in a thread of the test, records each request and
// answers with canned responses.
#include "kvs/control_plane.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "loopback_server.h"

namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

struct RecordedRequest {
  std::string method, target, version;
  std::vector<kvs::HttpHeader> headers;  // as received, in order
  std::string body;

  std::string header(const std::string& name) const {
    for (const auto& h : headers) {
      if (lower(h.name) == lower(name)) return h.value;
    }
    return "<absent>";
  }
};

struct CannedResponse {
  int status = 200;
  std::string reason = "OK";
  std::vector<std::string> headers;  // "Name: value"
  std::string body;
  bool hang = false;  // never answer (until the client gives up)
};

// One connection at a time; every response closes its connection.
class TestServer {
 public:
  std::string url() const { return server_.url(); }

  void respond(CannedResponse r) {
    std::lock_guard<std::mutex> lock(mutex_);
    canned_.push_back(std::move(r));
  }
  void respondJson(int status, const std::string& body, std::vector<std::string> headers = {}) {
    CannedResponse r;
    r.status = status;
    r.reason = status == 200 ? "OK" : "Error";
    r.headers = std::move(headers);
    r.headers.push_back("Content-Type: application/json");
    r.body = body;
    respond(std::move(r));
  }

  std::vector<RecordedRequest> requests() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return requests_;
  }
  RecordedRequest last() const {
    auto all = requests();
    if (all.empty()) throw std::runtime_error("no request received");
    return all.back();
  }

 private:
  void serve(int fd) {
    std::string data;
    size_t headerEnd = std::string::npos;
    while ((headerEnd = data.find("\r\n\r\n")) == std::string::npos) {
      if (!server_.readSome(fd, data)) return;
    }
    RecordedRequest req;
    std::istringstream head(data.substr(0, headerEnd));
    std::string line;
    std::getline(head, line);
    std::istringstream requestLine(line);
    requestLine >> req.method >> req.target >> req.version;
    size_t contentLength = 0;
    while (std::getline(head, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      const size_t colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string value = line.substr(colon + 1);
      value.erase(0, value.find_first_not_of(' '));
      req.headers.push_back({line.substr(0, colon), value});
      if (lower(line.substr(0, colon)) == "content-length") contentLength = std::stoul(value);
    }
    req.body = data.substr(headerEnd + 4);
    while (req.body.size() < contentLength) {
      if (!server_.readSome(fd, req.body)) return;
    }

    CannedResponse response;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      requests_.push_back(req);
      if (canned_.empty()) {
        response.status = 500;
        response.reason = "No canned response";
      } else {
        response = canned_.front();
        canned_.pop_front();
      }
    }
    if (response.hang) {
      std::string ignored;
      while (server_.readSome(fd, ignored)) {
      }  // until the client closes the connection or the server stops
      return;
    }
    std::string out = "HTTP/1.1 " + std::to_string(response.status) + " " + response.reason +
                      "\r\nContent-Length: " + std::to_string(response.body.size()) +
                      "\r\nConnection: close\r\n";
    for (const auto& h : response.headers) out += h + "\r\n";
    out += "\r\n" + response.body;
    kvstest::LoopbackServer::sendAll(fd, out);
  }

  mutable std::mutex mutex_;
  std::deque<CannedResponse> canned_;
  std::vector<RecordedRequest> requests_;
  kvstest::LoopbackServer server_{[this](int fd) { serve(fd); }};  // last: destroyed first
};

// Checks the SigV4 Authorization of a received request by signing again what was received
// (the headers named in SignedHeaders, the body hash), as a verifying server would.
void expectValidSignature(const RecordedRequest& req, const kvs::Credentials& credentials,
                          const std::string& region, const std::string& expectedSignedHeaders) {
  const std::string auth = req.header("Authorization");
  const std::string credentialPrefix = "AWS4-HMAC-SHA256 Credential=" + credentials.accessKeyId +
                                       "/" + req.header("X-Amz-Date").substr(0, 8) + "/" + region +
                                       "/kinesisvideo/aws4_request, SignedHeaders=";
  ASSERT_EQ(auth.rfind(credentialPrefix, 0), 0u) << auth;
  const size_t sigPos = auth.find(", Signature=");
  ASSERT_NE(sigPos, std::string::npos) << auth;
  const std::string signedHeaders =
      auth.substr(credentialPrefix.size(), sigPos - credentialPrefix.size());
  EXPECT_EQ(signedHeaders, expectedSignedHeaders);

  std::set<std::string> names;
  std::istringstream list(signedHeaders);
  for (std::string name; std::getline(list, name, ';');) names.insert(name);
  kvs::SigningInput in;
  in.method = req.method;
  in.path = req.target;
  for (const auto& h : req.headers) {
    if (names.count(lower(h.name))) in.headers.push_back(h);
  }
  in.payloadSha256Hex = kvs::sha256Hex(req.body);
  in.region = region;
  EXPECT_EQ(auth.substr(sigPos + 12), kvs::signatureParts(in, credentials).signature);
}

class ControlPlaneTest : public ::testing::Test {
 protected:
  void SetUp() override {
    credentials_.accessKeyId = "AKIDCONTROLPLANE";
    credentials_.secretAccessKey = "secret/control+plane";
    provider_ = kvs::staticCredentials(credentials_);
  }

  kvs::ControlPlaneConfig config() const {
    kvs::ControlPlaneConfig c;
    c.endpoint = server_.url();
    c.region = "us-west-2";
    c.userAgent = "AWS-SDK-KVS-CPP-CLIENT/3.6.0 kvs-test";
    c.connectTimeoutMs = 2000;
    c.completionTimeoutMs = 5000;
    return c;
  }

  kvs::ControlPlane client() {
    return kvs::ControlPlane(config(), *provider_, [this](kvs::LogLevel, const std::string& m) {
      std::lock_guard<std::mutex> lock(logMutex_);
      logs_.push_back(m);
    });
  }

  std::string allLogs() {
    std::lock_guard<std::mutex> lock(logMutex_);
    std::string all;
    for (const auto& l : logs_) all += l + "\n";
    return all;
  }

  TestServer server_;
  kvs::Credentials credentials_;
  std::unique_ptr<kvs::CredentialProvider> provider_;
  std::mutex logMutex_;
  std::vector<std::string> logs_;
};

const char* kDescribeOk = R"({"StreamInfo":{"CreationTime":1.735442939457E9,
  "DataRetentionInHours":24,"DeviceName":"Kinesis_Video_Device","KmsKeyId":null,
  "MediaType":"video/h264","Status":"ACTIVE",
  "StreamARN":"arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1735442939457",
  "StreamName":"cam1","Version":"FhH7KJXkTQSLfXV123cU"}})";

// ---------------------------------------------------------------- requests on the wire

TEST_F(ControlPlaneTest, DescribeStreamRequestShapeAndSignature) {
  server_.respondJson(200, kDescribeOk, {"x-amzn-RequestId: 11111111-2222"});
  auto cp = client();
  const auto d = cp.describeStream("cam1");

  const auto req = server_.last();
  EXPECT_EQ(req.method, "POST");
  EXPECT_EQ(req.target, "/describeStream");
  EXPECT_EQ(req.version, "HTTP/1.1");
  EXPECT_EQ(req.body, "{\n\t\"StreamName\": \"cam1\"\n}");
  EXPECT_EQ(req.header("host"), "127.0.0.1") << "host is sent without the port";
  EXPECT_EQ(req.header("user-agent"), "AWS-SDK-KVS-CPP-CLIENT/3.6.0 kvs-test");
  EXPECT_EQ(req.header("content-type"), "application/json");
  EXPECT_EQ(req.header("content-length"), std::to_string(req.body.size()));
  EXPECT_EQ(req.header("X-Amz-Date").size(), 16u);
  EXPECT_EQ(req.header("x-amz-security-token"), "<absent>");
  EXPECT_EQ(req.header("x-amz-content-sha256"), "<absent>");
  EXPECT_EQ(req.header("Expect"), "<absent>");
  expectValidSignature(req, credentials_, "us-west-2", "host;user-agent;x-amz-date");

  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->name, "cam1");
  EXPECT_EQ(d->arn, "arn:aws:kinesisvideo:us-west-2:123456789012:stream/cam1/1735442939457");
  EXPECT_EQ(d->status, "ACTIVE");
  EXPECT_EQ(d->version, "FhH7KJXkTQSLfXV123cU");
  EXPECT_EQ(d->retentionHours, 24u);

  const std::string logs = allLogs();
  EXPECT_NE(logs.find("11111111-2222"), std::string::npos) << logs;
  EXPECT_EQ(logs.find(credentials_.secretAccessKey), std::string::npos) << logs;
  EXPECT_EQ(logs.find("Signature="), std::string::npos) << logs;
}

TEST_F(ControlPlaneTest, SessionTokenIsSentUnsigned) {
  credentials_.sessionToken = "session/token+value=";
  provider_ = kvs::staticCredentials(credentials_);
  server_.respondJson(200, kDescribeOk);
  auto cp = client();
  cp.describeStream("cam1");
  const auto req = server_.last();
  EXPECT_EQ(req.header("x-amz-security-token"), "session/token+value=");
  expectValidSignature(req, credentials_, "us-west-2", "host;user-agent;x-amz-date");
  EXPECT_EQ(allLogs().find("session/token+value="), std::string::npos);
}

TEST_F(ControlPlaneTest, CreateStreamBodyFieldsInProducerOrder) {
  server_.respondJson(200, R"({"StreamARN":"arn:aws:kinesisvideo:us-west-2:1:stream/cam1/1"})");
  auto cp = client();
  EXPECT_EQ(cp.createStream("cam1", "video/h264,audio/aac", 2),
            "arn:aws:kinesisvideo:us-west-2:1:stream/cam1/1");
  const auto req = server_.last();
  EXPECT_EQ(req.target, "/createStream");
  EXPECT_EQ(req.body,
            "{\n\t\"DeviceName\": \"Kinesis_Video_Device\",\n\t\"StreamName\": \"cam1\",\n\t"
            "\"MediaType\": \"video/h264,audio/aac\",\n\t\"DataRetentionInHours\": 2\n}");
  expectValidSignature(req, credentials_, "us-west-2", "host;user-agent;x-amz-date");
}

TEST_F(ControlPlaneTest, NamesAreJsonEscaped) {
  server_.respondJson(200, kDescribeOk);
  auto cp = client();
  const std::string name = "we\"ird\\name\n\x01";
  cp.describeStream(name);
  const json body = json::parse(server_.last().body);
  EXPECT_EQ(body.at("StreamName"), name);
}

TEST_F(ControlPlaneTest, TagStreamSendsTheArnAndTagsObject) {
  server_.respondJson(200, "");
  auto cp = client();
  std::map<std::string, std::string> tags{{"site", "north \"gate\""}, {"owner", "ops"}};
  cp.tagStream("arn:aws:kinesisvideo:us-west-2:1:stream/cam1/1", tags);
  const auto req = server_.last();
  EXPECT_EQ(req.target, "/tagStream");
  const json body = json::parse(req.body);
  EXPECT_EQ(body.at("StreamARN"), "arn:aws:kinesisvideo:us-west-2:1:stream/cam1/1");
  EXPECT_EQ(body.at("Tags"), json({{"site", "north \"gate\""}, {"owner", "ops"}}));
  EXPECT_LT(req.body.find("\"StreamARN\""), req.body.find("\"Tags\"")) << req.body;

  cp.tagStream("arn", {});  // nothing to tag: no request
  EXPECT_EQ(server_.requests().size(), 1u);
}

TEST_F(ControlPlaneTest, GetDataEndpointAsksForPutMedia) {
  server_.respondJson(
      200, R"({"DataEndpoint":"https://s-1234abcd.kinesisvideo.us-west-2.amazonaws.com/"})");
  auto cp = client();
  EXPECT_EQ(cp.getDataEndpoint("cam1"), "https://s-1234abcd.kinesisvideo.us-west-2.amazonaws.com");
  const auto req = server_.last();
  EXPECT_EQ(req.target, "/getDataEndpoint");
  EXPECT_EQ(req.body, "{\n\t\"StreamName\": \"cam1\",\n\t\"APIName\": \"PUT_MEDIA\"\n}");
}

TEST_F(ControlPlaneTest, EndpointPathPrefixAndTrailingSlash) {
  auto c = config();
  c.endpoint = server_.url() + "/some/prefix/";
  server_.respondJson(200, kDescribeOk);
  kvs::ControlPlane cp(c, *provider_);
  EXPECT_EQ(cp.config().endpoint, server_.url() + "/some/prefix");
  cp.describeStream("cam1");
  const auto req = server_.last();
  EXPECT_EQ(req.target, "/some/prefix/describeStream");
  expectValidSignature(req, credentials_, "us-west-2", "host;user-agent;x-amz-date");
}

// ---------------------------------------------------------------- responses

TEST_F(ControlPlaneTest, DescribeStream404IsNotAnError) {
  server_.respondJson(404, R"({"Message":"The requested stream is not found or not active."})",
                      {"x-amzn-ErrorType: ResourceNotFoundException:http://internal.amazon.com/"});
  auto cp = client();
  EXPECT_EQ(cp.describeStream("missing"), std::nullopt);
}

TEST_F(ControlPlaneTest, ErrorTypeHeaderIsSanitized) {
  server_.respondJson(400, R"({"Message":"The stream is being deleted."})",
                      {"x-amzn-ErrorType: ResourceInUseException:http://internal.amazon.com/"});
  auto cp = client();
  try {
    cp.createStream("cam1", "video/h264", 2);
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.httpStatus, 400);
    EXPECT_EQ(e.serviceCode, "ResourceInUseException");
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Service);
    EXPECT_TRUE(e.retryable);
    EXPECT_NE(std::string(e.what()).find("CreateStream"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("The stream is being deleted."), std::string::npos)
        << e.what();
  }
}

TEST_F(ControlPlaneTest, ErrorCodeFromTheBody) {
  server_.respondJson(
      400, R"({"__type":"com.amazonaws.kinesisvideo#InvalidArgumentException","message":"bad"})");
  server_.respondJson(409, R"({"Code":"ResourceInUseException","Message":"in use"})");
  server_.respondJson(500, R"({"Message":"internal"})");
  auto cp = client();
  try {
    cp.getDataEndpoint("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.serviceCode, "InvalidArgumentException");
    EXPECT_NE(std::string(e.what()).find(": bad"), std::string::npos) << e.what();
  }
  try {
    cp.getDataEndpoint("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.httpStatus, 409);
    EXPECT_EQ(e.serviceCode, "ResourceInUseException");
    EXPECT_TRUE(e.retryable);
  }
  try {
    cp.getDataEndpoint("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.httpStatus, 500);
    EXPECT_EQ(e.serviceCode, "");
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Service);
    EXPECT_TRUE(e.retryable);
  }
}

TEST_F(ControlPlaneTest, AuthErrorsAreNotRetryableAndNonJsonBodiesAreQuoted) {
  CannedResponse html;
  html.status = 403;
  html.reason = "Forbidden";
  html.headers = {"Content-Type: text/html"};
  html.body = "<html><body>Access denied</body></html>";
  server_.respond(html);
  server_.respondJson(401, R"({"message":"The security token included in the request is bad."})",
                      {"x-amzn-ErrorType: UnrecognizedClientException"});
  auto cp = client();
  try {
    cp.describeStream("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Auth);
    EXPECT_EQ(e.httpStatus, 403);
    EXPECT_FALSE(e.retryable);
    EXPECT_NE(std::string(e.what()).find("non-JSON body: '<html><body>Access denied"),
              std::string::npos)
        << e.what();
  }
  try {
    cp.describeStream("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Auth);
    EXPECT_EQ(e.serviceCode, "UnrecognizedClientException");
  }
}

TEST_F(ControlPlaneTest, NotFoundFromOtherCallsIsAnError) {
  server_.respondJson(404, R"({"Message":"no stream"})",
                      {"x-amzn-ErrorType: ResourceNotFoundException"});
  auto cp = client();
  try {
    cp.getDataEndpoint("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::NotFound);
    EXPECT_FALSE(e.retryable);
  }
}

TEST_F(ControlPlaneTest, UnusableSuccessBodiesAreInvalidResponses) {
  CannedResponse notJson;
  notJson.body = "<html>proxy login</html>";
  server_.respond(notJson);
  server_.respondJson(200, R"({"StreamName":"cam1"})");   // no StreamInfo
  server_.respondJson(200, R"({"StreamARN":null})");      // CreateStream without an ARN
  server_.respondJson(200, R"({"DataEndpoint":"s-1234.example.com"})");  // no scheme
  auto cp = client();
  auto expectInvalid = [](auto&& call, const std::string& mention) {
    try {
      call();
      ADD_FAILURE() << "no error";
    } catch (const kvs::ControlPlaneError& e) {
      EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::InvalidResponse) << e.what();
      EXPECT_FALSE(e.retryable);
      EXPECT_EQ(e.httpStatus, 200);
      EXPECT_NE(std::string(e.what()).find(mention), std::string::npos) << e.what();
    }
  };
  expectInvalid([&] { cp.describeStream("cam1"); }, "<html>proxy login</html>");
  expectInvalid([&] { cp.describeStream("cam1"); }, "no StreamInfo");
  expectInvalid([&] { cp.createStream("cam1", "video/h264", 2); }, "no StreamARN");
  expectInvalid([&] { cp.getDataEndpoint("cam1"); }, "no scheme");
}

TEST_F(ControlPlaneTest, NullFieldsAndMissingRetentionAreTolerated) {
  server_.respondJson(200, R"({"StreamInfo":{"StreamName":"cam1","StreamARN":"arn",
                                             "Status":"CREATING","Version":null}})");
  auto cp = client();
  const auto d = cp.describeStream("cam1");
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->status, "CREATING");
  EXPECT_EQ(d->version, "");
  EXPECT_EQ(d->retentionHours, 0u);
}

// ---------------------------------------------------------------- transport failures

TEST_F(ControlPlaneTest, CompletionTimeout) {
  CannedResponse hang;
  hang.hang = true;
  server_.respond(hang);
  auto c = config();
  c.connectTimeoutMs = 200;
  c.completionTimeoutMs = 300;
  kvs::ControlPlane cp(c, *provider_);
  try {
    cp.describeStream("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Timeout) << e.what();
    EXPECT_EQ(e.httpStatus, 0);
    EXPECT_TRUE(e.retryable);
  }
}

TEST_F(ControlPlaneTest, ConnectionRefused) {
  // A port that was just free: bind, read the port, close.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  auto c = config();
  c.endpoint = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  kvs::ControlPlane cp(c, *provider_);
  try {
    cp.describeStream("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Network) << e.what();
    EXPECT_TRUE(e.retryable);
  }
}

TEST_F(ControlPlaneTest, CredentialProviderFailure) {
  auto c = config();
  auto env = kvs::environmentCredentials();
  const char* saved = std::getenv("AWS_ACCESS_KEY_ID");
  const std::string savedValue = saved ? saved : "";
  unsetenv("AWS_ACCESS_KEY_ID");
  kvs::ControlPlane cp(c, *env);
  try {
    cp.describeStream("cam1");
    FAIL() << "no error";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Credentials) << e.what();
    EXPECT_TRUE(e.retryable);
  }
  if (saved) setenv("AWS_ACCESS_KEY_ID", savedValue.c_str(), 1);
  EXPECT_TRUE(server_.requests().empty());
}

TEST_F(ControlPlaneTest, ConfigurationChecks) {
  auto c = config();
  c.endpoint = "ftp://127.0.0.1:21";
  try {
    kvs::ControlPlane cp(c, *provider_);
    FAIL() << "accepted an ftp endpoint";
  } catch (const kvs::ControlPlaneError& e) {
    EXPECT_EQ(e.kind, kvs::ControlPlaneErrorKind::Config);
    EXPECT_FALSE(e.retryable);
  }

  c = config();
  c.connectTimeoutMs = 20000;  // above the completion timeout: both revert to the defaults
  std::vector<std::string> warnings;
  kvs::ControlPlane cp(c, *provider_, [&](kvs::LogLevel level, const std::string& m) {
    if (level == kvs::LogLevel::Warning) warnings.push_back(m);
  });
  EXPECT_EQ(cp.config().connectTimeoutMs, 5000);
  EXPECT_EQ(cp.config().completionTimeoutMs, 10000);
  EXPECT_EQ(warnings.size(), 1u);
}

// ---------------------------------------------------------------- endpoints

TEST(ControlPlaneEndpoint, DefaultEndpointsByPartition) {
  unsetenv("AWS_USE_DUALSTACK_ENDPOINT");
  using kvs::ControlPlane;
  EXPECT_EQ(ControlPlane::defaultEndpoint("us-west-2"),
            "https://kinesisvideo.us-west-2.amazonaws.com");
  EXPECT_EQ(ControlPlane::defaultEndpoint(""), "https://kinesisvideo.us-west-2.amazonaws.com");
  EXPECT_EQ(ControlPlane::defaultEndpoint("cn-north-1"),
            "https://kinesisvideo.cn-north-1.amazonaws.com.cn");
  EXPECT_EQ(ControlPlane::defaultEndpoint("us-gov-west-1"),
            "https://kinesisvideo-fips.us-gov-west-1.amazonaws.com");
  EXPECT_EQ(ControlPlane::defaultEndpoint("us-iso-east-1"),
            "https://kinesisvideo-fips.us-iso-east-1.c2s.ic.gov");
  EXPECT_EQ(ControlPlane::defaultEndpoint("us-isob-east-1"),
            "https://kinesisvideo-fips.us-isob-east-1.sc2s.sgov.gov");
  setenv("AWS_USE_DUALSTACK_ENDPOINT", "TRUE", 1);
  EXPECT_EQ(ControlPlane::defaultEndpoint("eu-west-1"), "https://kinesisvideo.eu-west-1.api.aws");
  EXPECT_EQ(ControlPlane::defaultEndpoint("cn-north-1"),
            "https://kinesisvideo.cn-north-1.api.amazonwebservices.com.cn");
  unsetenv("AWS_USE_DUALSTACK_ENDPOINT");
}

TEST(ControlPlaneEndpoint, PropertyThenEnvironmentThenDefault) {
  const char* saved = std::getenv("CONTROL_PLANE_URI");
  const std::string savedValue = saved ? saved : "";
  using kvs::ControlPlane;
  setenv("CONTROL_PLANE_URI", "http://127.0.0.1:4567/", 1);
  EXPECT_EQ(ControlPlane::resolveEndpoint("http://10.0.0.1:9000", "eu-west-1"),
            "http://10.0.0.1:9000");
  EXPECT_EQ(ControlPlane::resolveEndpoint("", "eu-west-1"), "http://127.0.0.1:4567");
  unsetenv("CONTROL_PLANE_URI");
  EXPECT_EQ(ControlPlane::resolveEndpoint("", "eu-west-1"),
            "https://kinesisvideo.eu-west-1.amazonaws.com");
  if (saved) setenv("CONTROL_PLANE_URI", savedValue.c_str(), 1);
}

// ---------------------------------------------------------------- backoff

TEST(Backoff, DoublesToTheCapWithJitterBelowTheWait) {
  kvs::Backoff b;  // 1 s .. 16 s
  const long long waits[] = {1000, 2000, 4000, 8000, 16000, 16000, 16000};
  for (long long wait : waits) {
    const auto d = b.next().count();
    EXPECT_GE(d, wait);
    EXPECT_LT(d, 2 * wait);
  }
  b.reset();
  EXPECT_LT(b.next().count(), 2000);
}

TEST(Backoff, JitterIsSpread) {
  std::set<long long> seen;
  for (int i = 0; i < 50; ++i) {
    kvs::Backoff b;
    seen.insert(b.next().count());
  }
  EXPECT_GT(seen.size(), 10u);
}

TEST(Backoff, StartsOverAfterAQuietPeriod) {
  kvs::Backoff b(10ms, 160ms, 50ms);
  b.next();
  b.next();
  EXPECT_GE(b.next().count(), 40);
  std::this_thread::sleep_for(80ms);
  EXPECT_LT(b.next().count(), 20);
}

}  // namespace
