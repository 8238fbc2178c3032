// Entry point of element_tests: makes GStreamer and the credential lookup hermetic, then
// registers kvssink statically (the element is compiled into this binary).
#include <gst/gst.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "gstkvssink.h"

namespace {

// GLib/GStreamer warnings and criticals (API misuse, sticky event misordering, ...) fail the
// test that caused them.
void failOnWarnings(const gchar* domain, GLogLevelFlags level, const gchar* message, gpointer) {
  g_log_default_handler(domain, level, message, nullptr);
  if (level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) {
    ADD_FAILURE() << (domain ? domain : "") << ": " << message;
  }
}

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);

  // Set before gst_init() and before any thread exists. No system or user plugins and a
  // private registry: nothing but the core and the statically registered kvssink, and no
  // libgstkvssink.so from GST_PLUGIN_PATH registering a second kvssink type.
  gchar* tmp = g_dir_make_tmp("kvssink-element-tests-XXXXXX", nullptr);
  if (tmp == nullptr) {
    std::fprintf(stderr, "cannot create a temporary directory\n");
    return 1;
  }
  const std::string dir = tmp;
  g_free(tmp);
  const std::string home = dir + "/home";
  g_mkdir_with_parents(home.c_str(), 0700);
  g_setenv("GST_REGISTRY_1_0", (dir + "/registry.bin").c_str(), TRUE);
  g_setenv("GST_PLUGIN_SYSTEM_PATH_1_0", "", TRUE);
  g_setenv("GST_REGISTRY_FORK", "no", TRUE);
  for (const char* name : {"GST_PLUGIN_PATH_1_0", "GST_PLUGIN_PATH"}) g_unsetenv(name);
  // Credentials and endpoints come only from what each test sets.
  g_setenv("HOME", home.c_str(), TRUE);
  for (const char* name :
       {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE", "AWS_DEFAULT_REGION", "AWS_REGION", "CONTROL_PLANE_URI",
        "KVSSINK_CA_CERT_PATH", "KVSSINK_CONNECTION_ROTATION_SECONDS", "AWS_USE_DUALSTACK_ENDPOINT"}) {
    g_unsetenv(name);
  }

  g_log_set_default_handler(failOnWarnings, nullptr);
  gst_init(&argc, &argv);
  if (!gst_kvs_sink_register(nullptr)) {
    std::fprintf(stderr, "cannot register kvssink\n");
    return 1;
  }
  const int rc = RUN_ALL_TESTS();
  const std::string rm = "rm -rf '" + dir + "'";
  if (std::system(rm.c_str()) != 0) std::fprintf(stderr, "could not remove %s\n", dir.c_str());
  return rc;
}
