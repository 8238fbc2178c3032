// A TCP server on 127.0.0.1 for the HTTP stubs of the unit tests: it listens on a port the kernel
// picks and hands each accepted connection to `serve` (one at a time, or each on a thread of its
// own), closing it when `serve` returns. The destructor stops every wait of waitReadable() and
// readSome() and joins the threads, so a stub declares its LoopbackServer after the members
// `serve` uses: it is then destroyed first.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace kvstest {

class LoopbackServer {
 public:
  enum class Connections { OneAtATime, Concurrent };

  explicit LoopbackServer(std::function<void(int fd)> serve, Connections mode = Connections::OneAtATime)
      : serve_(std::move(serve)), mode_(mode) {
    listenFd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listenFd_ < 0 || bind(listenFd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listenFd_, 8) != 0) {
      if (listenFd_ >= 0) close(listenFd_);
      throw std::runtime_error("cannot listen on 127.0.0.1");
    }
    socklen_t len = sizeof addr;
    getsockname(listenFd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  ~LoopbackServer() {
    stop_ = true;
    acceptor_.join();
    std::lock_guard<std::mutex> lock(connectionsMutex_);
    for (auto& t : connections_) t.join();
    close(listenFd_);
  }

  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  /// Waits until `fd` is readable; false once the server is stopping, or on a poll error.
  bool waitReadable(int fd) const {
    while (!stop_) {
      pollfd p{fd, POLLIN, 0};
      const int n = poll(&p, 1, 20);
      if (n > 0) return true;
      if (n < 0 && errno != EINTR) return false;
    }
    return false;
  }

  /// Appends what one recv() returns to `into`; false when the peer closed, on an error, or once
  /// the server is stopping.
  bool readSome(int fd, std::string& into) const {
    if (!waitReadable(fd)) return false;
    char buf[4096];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n <= 0) return false;
    into.append(buf, static_cast<size_t>(n));
    return true;
  }

  /// Sends all of `data`; false when the connection failed.
  static bool sendAll(int fd, const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      const ssize_t n = send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }

 private:
  void acceptLoop() {
    while (waitReadable(listenFd_)) {
      const int fd = accept(listenFd_, nullptr, nullptr);
      if (fd < 0) continue;
      if (mode_ == Connections::OneAtATime) {
        serve_(fd);
        close(fd);
        continue;
      }
      std::lock_guard<std::mutex> lock(connectionsMutex_);
      connections_.emplace_back([this, fd] {
        serve_(fd);
        close(fd);
      });
    }
  }

  std::function<void(int fd)> serve_;
  Connections mode_;
  int listenFd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread acceptor_;
  std::mutex connectionsMutex_;
  std::vector<std::thread> connections_;
};

}  // namespace kvstest
