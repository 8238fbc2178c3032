// kvssink properties: the names, types and defaults of the AWS element (producer-protocol.md
// §10.1) plus `endpoint` and `profile`; every readable property round-trips; the secrets are
// write-only.
#include "element_support.h"

#include <set>
#include <tuple>

namespace kvstest {
namespace {

/// A property value as text: strings verbatim ("NULL" for none), numbers in decimal, booleans
/// as true/false, enums by nick, structures serialized.
std::string show(const GValue* v) {
  const GType t = G_VALUE_TYPE(v);
  if (t == G_TYPE_STRING) {
    const gchar* s = g_value_get_string(v);
    return s ? s : "NULL";
  }
  if (t == G_TYPE_UINT) return std::to_string(g_value_get_uint(v));
  if (t == G_TYPE_UINT64) return std::to_string(g_value_get_uint64(v));
  if (t == G_TYPE_BOOLEAN) return g_value_get_boolean(v) ? "true" : "false";
  if (G_TYPE_IS_ENUM(t)) {
    GEnumClass* klass = G_ENUM_CLASS(g_type_class_ref(t));
    GEnumValue* e = g_enum_get_value(klass, g_value_get_enum(v));
    std::string nick = e ? e->value_nick : "<invalid>";
    g_type_class_unref(klass);
    return nick;
  }
  if (t == GST_TYPE_STRUCTURE) {
    const GstStructure* s = gst_value_get_structure(v);
    if (s == nullptr) return "NULL";
    gchar* text = gst_structure_to_string(s);
    std::string out = text;
    g_free(text);
    return out;
  }
  return std::string("<unhandled ") + g_type_name(t) + ">";
}

struct Expected {
  const char* name;
  GType type;
  const char* value;  // as show() renders it
};

// producer-protocol.md §10.1 (the AWS element, v3.6.0), then the two openkvs additions.
std::vector<Expected> expectedProperties() {
  return {
      {"stream-name", G_TYPE_STRING, "DEFAULT_STREAM"},
      {"user-agent", G_TYPE_STRING, "AWS-SDK-KVS-CPP-CLIENT/3.6.0"},
      {"retention-period", G_TYPE_UINT, "2"},
      {"streaming-type", GST_TYPE_KVS_SINK_STREAMING_TYPE, "realtime"},
      {"content-type", G_TYPE_STRING, "video/h264"},
      {"max-latency", G_TYPE_UINT, "60"},
      {"fragment-duration", G_TYPE_UINT, "2000"},
      {"timecode-scale", G_TYPE_UINT, "1"},
      {"key-frame-fragmentation", G_TYPE_BOOLEAN, "true"},
      {"frame-timecodes", G_TYPE_BOOLEAN, "true"},
      {"absolute-fragment-times", G_TYPE_BOOLEAN, "true"},
      {"fragment-acks", G_TYPE_BOOLEAN, "true"},
      {"restart-on-error", G_TYPE_BOOLEAN, "true"},
      {"recalculate-metrics", G_TYPE_BOOLEAN, "true"},
      {"framerate", G_TYPE_UINT, "25"},
      {"avg-bandwidth-bps", G_TYPE_UINT, "4194304"},
      {"buffer-duration", G_TYPE_UINT, "120"},
      {"replay-duration", G_TYPE_UINT, "40"},
      {"connection-staleness", G_TYPE_UINT, "60"},
      {"codec-id", G_TYPE_STRING, "V_MPEG4/ISO/AVC"},
      {"track-name", G_TYPE_STRING, "kinesis_video"},
      {"access-key", G_TYPE_STRING, "access_key"},
      {"secret-key", G_TYPE_STRING, "secret_key"},
      {"session-token", G_TYPE_STRING, "session_token"},
      {"aws-region", G_TYPE_STRING, "us-west-2"},
      {"rotation-period", G_TYPE_UINT, "3600"},
      {"log-config", G_TYPE_STRING, "../kvs_log_configuration"},
      {"storage-size", G_TYPE_UINT, "128"},
      {"stop-stream-timeout", G_TYPE_UINT, "120"},
      {"connection-timeout", G_TYPE_UINT, "5"},
      {"completion-timeout", G_TYPE_UINT, "10"},
      {"credential-path", G_TYPE_STRING, ".kvs/credential"},
      {"iot-certificate", GST_TYPE_STRUCTURE, "NULL"},
      {"stream-tags", GST_TYPE_STRUCTURE, "NULL"},
      {"file-start-time", G_TYPE_UINT64, "0"},  // the pspec's; an instance starts at "now"
      {"disable-buffer-clipping", G_TYPE_BOOLEAN, "false"},
      {"use-original-pts", G_TYPE_BOOLEAN, "false"},
      {"get-kvs-metrics", G_TYPE_BOOLEAN, "false"},
      {"allow-create-stream", G_TYPE_BOOLEAN, "true"},
      // openkvs additions
      {"endpoint", G_TYPE_STRING, "NULL"},
      {"profile", G_TYPE_STRING, "NULL"},
      {"ca-cert", G_TYPE_STRING, "NULL"},
      {"storage-path", G_TYPE_STRING, "NULL"},
      {"storage-path-size", G_TYPE_UINT, "1024"},
  };
}

bool isSecret(const std::string& name) {
  return name == "access-key" || name == "secret-key" || name == "session-token";
}

class Properties : public KvsSinkTest {
 protected:
  // A fresh element: the fixture's has endpoint, stream-name and credential-path set.
  void SetUp() override {
    KvsSinkTest::SetUp();
    fresh_ = GST_ELEMENT(gst_object_ref_sink(gst_element_factory_make("kvssink", nullptr)));
    ASSERT_NE(fresh_, nullptr);
  }
  void TearDown() override {
    if (fresh_ != nullptr) gst_object_unref(fresh_);
    KvsSinkTest::TearDown();
  }
  GParamSpec* spec(const char* name) { return g_object_class_find_property(G_OBJECT_GET_CLASS(fresh_), name); }

  GstElement* fresh_ = nullptr;
};

TEST_F(Properties, ExactlyTheAwsPropertiesPlusEndpointProfileCaCertAndStoragePath) {
  std::set<std::string> expected = {"name", "parent"};  // GstObject's
  for (const auto& e : expectedProperties()) expected.insert(e.name);
  guint n = 0;
  GParamSpec** specs = g_object_class_list_properties(G_OBJECT_GET_CLASS(fresh_), &n);
  std::set<std::string> actual;
  for (guint i = 0; i < n; i++) actual.insert(g_param_spec_get_name(specs[i]));
  g_free(specs);
  EXPECT_EQ(actual, expected);
}

TEST_F(Properties, TypesAndDefaultsMatchTheAwsElement) {
  for (const auto& e : expectedProperties()) {
    SCOPED_TRACE(e.name);
    GParamSpec* p = spec(e.name);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(G_PARAM_SPEC_VALUE_TYPE(p), e.type) << g_type_name(G_PARAM_SPEC_VALUE_TYPE(p));
    EXPECT_NE(g_param_spec_get_blurb(p), nullptr);
    EXPECT_TRUE(p->flags & G_PARAM_WRITABLE);
    // The pspec default (what gst-inspect shows) ...
    EXPECT_EQ(show(g_param_spec_get_default_value(p)), e.value);
    // ... and the value of a new element.
    if (isSecret(e.name)) continue;
    GValue v = G_VALUE_INIT;
    g_value_init(&v, e.type);
    g_object_get_property(G_OBJECT(fresh_), e.name, &v);
    if (std::string(e.name) == "file-start-time") {
      const guint64 now = static_cast<guint64>(g_get_real_time() / G_USEC_PER_SEC);
      EXPECT_LE(g_value_get_uint64(&v), now);
      EXPECT_GE(g_value_get_uint64(&v) + 600, now) << "an instance's file-start-time is the time it was created";
    } else {
      EXPECT_EQ(show(&v), e.value);
    }
    g_value_unset(&v);
  }
}

TEST_F(Properties, StreamingTypeEnumIsTheAwsOne) {
  GEnumClass* klass = G_ENUM_CLASS(g_type_class_ref(GST_TYPE_KVS_SINK_STREAMING_TYPE));
  EXPECT_STREQ(g_type_name(GST_TYPE_KVS_SINK_STREAMING_TYPE), "GstKvsSinkStreamingType");
  EXPECT_EQ(klass->n_values, 3u);
  const std::pair<gint, const char*> values[] = {{0, "realtime"}, {1, "near-realtime"}, {2, "offline"}};
  for (const auto& [value, nick] : values) {
    GEnumValue* e = g_enum_get_value(klass, value);
    ASSERT_NE(e, nullptr) << nick;
    EXPECT_STREQ(e->value_nick, nick);
  }
  g_type_class_unref(klass);
}

TEST_F(Properties, SecretsAreWriteOnly) {
  for (const char* name : {"access-key", "secret-key", "session-token"}) {
    GParamSpec* p = spec(name);
    ASSERT_NE(p, nullptr) << name;
    EXPECT_FALSE(p->flags & G_PARAM_READABLE) << name << " must not be readable";
    EXPECT_TRUE(p->flags & G_PARAM_WRITABLE) << name;
  }
  // Writing them works (and is used: see credentials_test.cpp).
  g_object_set(fresh_, "access-key", "AKIDWRITEONLY", "secret-key", "s3cr3t", "session-token", "tok", nullptr);
}

/// A value of the property's type different from its default.
void otherValue(GParamSpec* p, GValue* v) {
  const GType t = G_PARAM_SPEC_VALUE_TYPE(p);
  g_value_init(v, t);
  const std::string name = g_param_spec_get_name(p);
  if (t == G_TYPE_STRING) {
    if (name == "endpoint") {
      g_value_set_string(v, "http://127.0.0.1:4567");
    } else {
      g_value_set_string(v, ("other-" + name).c_str());
    }
  } else if (t == G_TYPE_UINT) {
    const GParamSpecUInt* u = G_PARAM_SPEC_UINT(p);
    g_value_set_uint(v, u->default_value < u->maximum ? u->default_value + 1 : u->default_value - 1);
  } else if (t == G_TYPE_UINT64) {
    g_value_set_uint64(v, 1234567890u);
  } else if (t == G_TYPE_BOOLEAN) {
    g_value_set_boolean(v, !G_PARAM_SPEC_BOOLEAN(p)->default_value);
  } else if (G_TYPE_IS_ENUM(t)) {
    g_value_set_enum(v, 2);  // offline
  } else if (t == GST_TYPE_STRUCTURE) {
    GstStructure* s = gst_structure_new("test", "owner", G_TYPE_STRING, "element-test", "team", G_TYPE_STRING,
                                        "video", nullptr);
    gst_value_set_structure(v, s);
    gst_structure_free(s);
  } else {
    ADD_FAILURE() << "no test value for " << name;
  }
}

TEST_F(Properties, EveryReadablePropertyRoundTrips) {
  for (const auto& e : expectedProperties()) {
    if (isSecret(e.name)) continue;
    SCOPED_TRACE(e.name);
    GParamSpec* p = spec(e.name);
    ASSERT_NE(p, nullptr);
    GValue set = G_VALUE_INIT;
    otherValue(p, &set);
    ASSERT_NE(show(&set), show(g_param_spec_get_default_value(p)));
    g_object_set_property(G_OBJECT(fresh_), e.name, &set);
    GValue got = G_VALUE_INIT;
    g_value_init(&got, e.type);
    g_object_get_property(G_OBJECT(fresh_), e.name, &got);
    EXPECT_EQ(show(&got), show(&set));
    g_value_unset(&got);
    g_value_unset(&set);
  }
}

TEST_F(Properties, NullStringsRestoreTheDefault) {
  g_object_set(fresh_, "stream-name", "cam1", "endpoint", "http://127.0.0.1:4567", "profile", "dev", nullptr);
  g_object_set(fresh_, "stream-name", nullptr, "endpoint", nullptr, "profile", nullptr, nullptr);
  gchar *stream = nullptr, *endpoint = nullptr, *profile = nullptr;
  g_object_get(fresh_, "stream-name", &stream, "endpoint", &endpoint, "profile", &profile, nullptr);
  EXPECT_STREQ(stream, "DEFAULT_STREAM");
  EXPECT_EQ(endpoint, nullptr);
  EXPECT_EQ(profile, nullptr);
  g_free(stream);
  g_free(endpoint);
  g_free(profile);
}

TEST_F(Properties, StructuresCanBeCleared) {
  GstStructure* tags = gst_structure_from_string("tags, owner=(string)me", nullptr);
  g_object_set(fresh_, "stream-tags", tags, nullptr);
  gst_structure_free(tags);
  GstStructure* got = nullptr;
  g_object_get(fresh_, "stream-tags", &got, nullptr);
  ASSERT_NE(got, nullptr);
  EXPECT_EQ(fieldString(got, "owner"), "me");
  gst_structure_free(got);
  g_object_set(fresh_, "stream-tags", nullptr, nullptr);
  g_object_get(fresh_, "stream-tags", &got, nullptr);
  EXPECT_EQ(got, nullptr);
}

TEST_F(Properties, RangesOfBoundedProperties) {
  for (const auto& [name, min, max] : {std::tuple<const char*, guint, guint>{"storage-size", 1, 10240},
                                       {"connection-timeout", 1, G_MAXUINT},
                                       {"completion-timeout", 1, G_MAXUINT},
                                       {"retention-period", 0, 87600}}) {
    GParamSpecUInt* u = G_PARAM_SPEC_UINT(spec(name));
    EXPECT_EQ(u->minimum, min) << name;
    EXPECT_EQ(u->maximum, max) << name;
  }
}

}  // namespace
}  // namespace kvstest
