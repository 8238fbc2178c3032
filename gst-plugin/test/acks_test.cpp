// Tests of kvs/acks.h: the PutMedia ACK stream parser (§4.1–4.2).
#include "kvs/acks.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace {

using kvs::Ack;
using kvs::AckType;

// Exact lines quoted in §4.1 / §13.2 of the producer protocol spec.
const std::string kRealBuffering =
    R"({"EventType":"BUFFERING","FragmentTimecode":0,"FragmentNumber":"91343852333181447247962534042408424052728840414"})";
const std::string kAbsolutePersisted =
    R"({"EventType":"PERSISTED","FragmentTimecode":1612524911136,"FragmentNumber":"91343852333181447247962534042408424052728840415"})";

struct Collector {
  std::vector<Ack> acks;
  std::vector<std::string> invalid;
  kvs::AckParser parser{[this](const Ack& a) { acks.push_back(a); },
                        [this](const std::string& r) { invalid.push_back(r); }};

  void feed(const std::string& s) { parser.feed(s.data(), s.size()); }
  void feedByteByByte(const std::string& s) {
    for (char c : s) parser.feed(&c, 1);
  }
};

TEST(Acks, RealBufferingLine) {
  Collector c;
  c.feed(kRealBuffering + "\n");
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_TRUE(c.invalid.empty());
  EXPECT_EQ(c.acks[0].type, AckType::Buffering);
  ASSERT_TRUE(c.acks[0].timecode.has_value());
  EXPECT_EQ(*c.acks[0].timecode, 0u);
  EXPECT_EQ(c.acks[0].fragmentNumber, "91343852333181447247962534042408424052728840414");
  EXPECT_FALSE(c.acks[0].errorId.has_value());
  EXPECT_TRUE(c.acks[0].errorCode.empty());
}

TEST(Acks, EveryEventType) {
  const std::string stream =
      kRealBuffering + "\n" +
      R"({"EventType":"RECEIVED","FragmentTimecode":1612524911136,"FragmentNumber":"91343852333181447247962534042408424052728840415"})"
      "\n" +
      kAbsolutePersisted + "\n" +
      R"({"EventType":"ERROR","FragmentTimecode":1612524913136,"FragmentNumber":"91343852333181447247962534042408424052728840416","ErrorId":4006,"ErrorCode":"INVALID_MKV_DATA"})"
      "\n"
      R"({"EventType":"IDLE"})"
      "\n";
  for (int mode = 0; mode < 2; ++mode) {
    SCOPED_TRACE(mode == 0 ? "one chunk" : "byte by byte");
    Collector c;
    if (mode == 0) {
      c.feed(stream);
    } else {
      c.feedByteByByte(stream);
    }
    EXPECT_TRUE(c.invalid.empty());
    ASSERT_EQ(c.acks.size(), 5u);
    EXPECT_EQ(c.acks[0].type, AckType::Buffering);
    EXPECT_EQ(c.acks[1].type, AckType::Received);
    EXPECT_EQ(c.acks[1].timecode, 1612524911136u);
    EXPECT_EQ(c.acks[2].type, AckType::Persisted);
    EXPECT_EQ(c.acks[2].timecode, 1612524911136u);
    EXPECT_EQ(c.acks[2].fragmentNumber, "91343852333181447247962534042408424052728840415");
    EXPECT_EQ(c.acks[3].type, AckType::Error);
    EXPECT_EQ(c.acks[3].timecode, 1612524913136u);
    EXPECT_EQ(c.acks[3].errorId, 4006u);
    EXPECT_EQ(c.acks[3].errorCode, "INVALID_MKV_DATA");
    EXPECT_EQ(c.acks[4].type, AckType::Idle);
    EXPECT_FALSE(c.acks[4].timecode.has_value());
    EXPECT_TRUE(c.acks[4].fragmentNumber.empty());
  }
}

TEST(Acks, EverySplitPointOfTwoChunks) {
  const std::string stream = kRealBuffering + "\n" + kAbsolutePersisted + "\r\n";
  for (size_t split = 0; split <= stream.size(); ++split) {
    Collector c;
    c.feed(stream.substr(0, split));
    c.feed(stream.substr(split));
    ASSERT_EQ(c.acks.size(), 2u) << split;
    EXPECT_EQ(c.acks[0].type, AckType::Buffering);
    EXPECT_EQ(c.acks[1].timecode, 1612524911136u);
    EXPECT_TRUE(c.invalid.empty());
  }
}

TEST(Acks, SeveralObjectsInOneChunkWithoutSeparators) {
  Collector c;
  c.feed(kRealBuffering + kAbsolutePersisted + R"({"EventType":"IDLE"})");
  ASSERT_EQ(c.acks.size(), 3u);
  EXPECT_EQ(c.acks[2].type, AckType::Idle);
}

TEST(Acks, GarbageBetweenObjectsIsSkipped) {
  Collector c;
  c.feed("HTTP junk ] } \"unbalanced quote\n" + kRealBuffering + "\n\n  xyz 123 }}} " +
         kAbsolutePersisted + "trailing");
  ASSERT_EQ(c.acks.size(), 2u);
  EXPECT_EQ(c.acks[0].type, AckType::Buffering);
  EXPECT_EQ(c.acks[1].type, AckType::Persisted);
  EXPECT_TRUE(c.invalid.empty());
}

TEST(Acks, BracesAndEscapesInsideStrings) {
  Collector c;
  c.feedByteByByte(
      R"({"EventType":"IDLE","Note":"} { \" \\\" ] [ \\","Nested":{"a":[1,{"b":"}"}]}})"
      "\n" +
      kRealBuffering);
  ASSERT_EQ(c.acks.size(), 2u);
  EXPECT_EQ(c.acks[0].type, AckType::Idle);
  EXPECT_EQ(c.acks[1].type, AckType::Buffering);
  EXPECT_TRUE(c.invalid.empty());
}

TEST(Acks, UnknownKeysAreIgnored) {
  Collector c;
  c.feed(R"({"Foo":1,"EventType":"RECEIVED","Bar":[null,true],"FragmentTimecode":7,)"
         R"("ErrorCode":5})");
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].type, AckType::Received);
  EXPECT_EQ(c.acks[0].timecode, 7u);
  EXPECT_TRUE(c.acks[0].errorCode.empty());  // not a string: ignored like any unknown key
}

TEST(Acks, InvalidTimecodesAreRejected) {
  for (const char* value : {"-1", "\"123\"", "\"abc\"", "1.5", "1e3", "null", "true", "{}", "[]",
                            "18446744073709551616"}) {
    SCOPED_TRACE(value);
    Collector c;
    c.feed(std::string(R"({"EventType":"PERSISTED","FragmentTimecode":)") + value +
           R"(,"FragmentNumber":"1"})" + "\n" + kRealBuffering);
    ASSERT_EQ(c.invalid.size(), 1u);
    ASSERT_EQ(c.acks.size(), 1u);  // the parser carries on with the next object
    EXPECT_EQ(c.acks[0].type, AckType::Buffering);
  }
  Collector max;
  max.feed(R"({"EventType":"PERSISTED","FragmentTimecode":18446744073709551615})");
  ASSERT_EQ(max.acks.size(), 1u);
  EXPECT_EQ(max.acks[0].timecode, 18446744073709551615u);
}

TEST(Acks, ErrorAcksNeedAValidErrorId) {
  for (const char* object : {R"({"EventType":"ERROR","FragmentTimecode":5})",
                             R"({"EventType":"ERROR","ErrorId":-4000})",
                             R"({"EventType":"ERROR","ErrorId":"4000"})",
                             R"({"EventType":"ERROR","ErrorId":4294967296})",
                             R"({"EventType":"PERSISTED","FragmentTimecode":5,"ErrorId":"x"})"}) {
    SCOPED_TRACE(object);
    Collector c;
    c.feed(object);
    EXPECT_EQ(c.invalid.size(), 1u);
    EXPECT_TRUE(c.acks.empty());
  }
  Collector c;
  c.feed(R"({"EventType":"ERROR","ErrorId":5000})");  // §13.2: FragmentTimecode may be omitted
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].errorId, 5000u);
  EXPECT_FALSE(c.acks[0].timecode.has_value());
}

TEST(Acks, EventTypeMustBeExact) {
  for (const char* object : {R"({"FragmentTimecode":5})", R"({"EventType":"buffering"})",
                             R"({"EventType":"DONE"})", R"({"EventType":1})",
                             R"({"AckEventType":"PERSISTED"})", R"({"eventtype":"IDLE"})"}) {
    SCOPED_TRACE(object);
    Collector c;
    c.feed(object);
    EXPECT_EQ(c.invalid.size(), 1u);
    EXPECT_TRUE(c.acks.empty());
  }
}

TEST(Acks, DuplicateKnownKeysAreRejected) {
  Collector c;
  c.feed(R"({"EventType":"IDLE","EventType":"PERSISTED"})");
  c.feed(R"({"EventType":"PERSISTED","FragmentTimecode":1,"FragmentTimecode":2})");
  c.feed(R"({"EventType":"IDLE","X":{"EventType":"a"},"Y":{"EventType":"b"}})");  // nested: fine
  EXPECT_EQ(c.invalid.size(), 2u);
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].type, AckType::Idle);
}

TEST(Acks, FragmentNumberTypes) {
  Collector c;
  c.feed(R"({"EventType":"RECEIVED","FragmentNumber":12345})");
  c.feed(R"({"EventType":"RECEIVED","FragmentNumber":[1]})");
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].fragmentNumber, "12345");
  EXPECT_EQ(c.invalid.size(), 1u);
}

TEST(Acks, MalformedJsonIsReportedAndSkipped) {
  Collector c;
  c.feed(R"({"EventType":"IDLE",})" "\n" R"({"EventType" "IDLE"})" "\n" R"({"EventType":"IDLE"])"
         "\n" + kRealBuffering);
  EXPECT_EQ(c.invalid.size(), 3u);
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].type, AckType::Buffering);
}

TEST(Acks, OversizedObjectIsDroppedAndParsingResumes) {
  Collector c;
  const std::string padding(kvs::AckParser::kMaxObjectSize, 'x');
  const std::string huge = R"({"EventType":"IDLE","Padding":")" + padding + "\"}";
  c.feed(huge + "\n" + kRealBuffering);
  ASSERT_EQ(c.invalid.size(), 1u);
  EXPECT_NE(c.invalid[0].find("larger"), std::string::npos);
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].type, AckType::Buffering);

  // An object that never closes is dropped at the limit too, fed in small chunks.
  Collector open;
  open.feed(R"({"EventType":"IDLE","Padding":[)");
  const std::string chunk(1000, ' ');
  for (int i = 0; i < 100; ++i) open.feed(chunk);
  EXPECT_EQ(open.invalid.size(), 1u);
  open.feed(kRealBuffering);
  EXPECT_EQ(open.acks.size(), 1u);
}

TEST(Acks, DeepNestingIsRejected) {
  Collector c;
  c.feed(R"({"EventType":"IDLE","x":)" + std::string(1000, '[') + std::string(1000, ']') + "}\n" +
         kRealBuffering);
  EXPECT_GE(c.invalid.size(), 1u);
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].type, AckType::Buffering);
}

TEST(Acks, ResetDropsAPartialObject) {
  Collector c;
  c.feed(R"({"EventType":"PERSI)");
  c.parser.reset();
  c.feed(kRealBuffering);
  ASSERT_EQ(c.acks.size(), 1u);
  EXPECT_EQ(c.acks[0].type, AckType::Buffering);
  EXPECT_TRUE(c.invalid.empty());
}

TEST(Acks, WorksWithoutAnInvalidCallback) {
  std::vector<Ack> acks;
  kvs::AckParser parser([&](const Ack& a) { acks.push_back(a); });
  const std::string s = "{bad}" + kRealBuffering;
  parser.feed(s.data(), s.size());
  EXPECT_EQ(acks.size(), 1u);
}

TEST(Acks, TypeNames) {
  EXPECT_STREQ(kvs::ackTypeName(AckType::Buffering), "BUFFERING");
  EXPECT_STREQ(kvs::ackTypeName(AckType::Received), "RECEIVED");
  EXPECT_STREQ(kvs::ackTypeName(AckType::Persisted), "PERSISTED");
  EXPECT_STREQ(kvs::ackTypeName(AckType::Error), "ERROR");
  EXPECT_STREQ(kvs::ackTypeName(AckType::Idle), "IDLE");
}

}  // namespace
