// A control-plane call to a server that accepts and never answers ends as soon as the caller's
// shouldAbort says so, not at the completion timeout.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "kvs/control_plane.h"
#include "kvs/credentials.h"

using namespace std::chrono_literals;

TEST(ControlPlaneAbort, AnInFlightCallEndsWhenShouldAbortTurnsTrue) {
  int listener = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(listener, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(listener, 4), 0);
  socklen_t len = sizeof addr;
  getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
  const int port = ntohs(addr.sin_port);  // the kernel completes the connect; nobody ever answers

  auto creds = kvs::staticCredentials({"AKIDEXAMPLE", "secret", "", std::nullopt});
  std::atomic<bool> abort{false};
  kvs::ControlPlaneConfig cfg;
  cfg.endpoint = "http://127.0.0.1:" + std::to_string(port);
  cfg.region = "us-east-1";
  cfg.completionTimeoutMs = 60000;
  cfg.shouldAbort = [&] { return abort.load(); };
  kvs::ControlPlane cp(cfg, *creds);

  std::thread stopper([&] {
    std::this_thread::sleep_for(300ms);
    abort = true;
  });
  auto started = std::chrono::steady_clock::now();
  EXPECT_THROW(cp.describeStream("cam1"), kvs::ControlPlaneError);
  // Ended by the abort, far before the 60 s completion timeout.
  EXPECT_LT(std::chrono::steady_clock::now() - started, 30s);
  stopper.join();
  close(listener);
}
