#include "kvs/spool.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

namespace fs = std::filesystem;

namespace kvs {

namespace {

constexpr const char* kHeader = "header.mkv";
constexpr const char* kFragmentSuffix = ".frag";
constexpr const char* kTempSuffix = ".tmp";

std::string padded(uint64_t n, int width) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%0*llu", width, static_cast<unsigned long long>(n));
  return buf;
}

/// Writes the parts to `path` under a temporary name, fsyncs and renames. Empty on success,
/// else what failed.
std::string writeAtomically(const std::string& path, const std::vector<std::pair<const uint8_t*, size_t>>& parts) {
  const std::string tmp = path + kTempSuffix;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return "cannot create " + tmp + ": " + std::strerror(errno);
  std::string error;
  for (const auto& [data, size] : parts) {
    size_t done = 0;
    while (done < size && error.empty()) {
      ssize_t n = ::write(fd, data + done, size - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) error = "cannot write " + tmp + ": " + std::strerror(errno);
      else done += static_cast<size_t>(n);
    }
  }
  if (error.empty() && ::fdatasync(fd) != 0) error = "cannot sync " + tmp + ": " + std::strerror(errno);
  ::close(fd);
  if (error.empty() && ::rename(tmp.c_str(), path.c_str()) != 0) error = "cannot rename " + tmp + ": " + std::strerror(errno);
  if (!error.empty()) ::unlink(tmp.c_str());
  return error;
}

std::optional<std::vector<uint8_t>> readFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return std::nullopt;
  return bytes;
}

}  // namespace

Spool::Spool(std::string dir, uint64_t maxBytes, LogSink log) : dir_(std::move(dir)), maxBytes_(maxBytes), log_(std::move(log)) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec || !fs::is_directory(dir_)) throw std::runtime_error("storage-path " + dir_ + " cannot be created: " + ec.message());
  if (::access(dir_.c_str(), W_OK) != 0) throw std::runtime_error("storage-path " + dir_ + " is not writable");
  // One producer per spool: another one's session would look like fragments left by a crash.
  lockFd_ = ::open((fs::path(dir_) / ".lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (lockFd_ < 0 || ::flock(lockFd_, LOCK_EX | LOCK_NB) != 0) {
    if (lockFd_ >= 0) ::close(lockFd_);
    throw std::runtime_error("storage-path " + dir_ + " is in use by another kvssink for this stream");
  }

  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (!entry.is_directory()) continue;
    const std::string name = entry.path().filename().string();
    Session s;
    s.dir = entry.path().string();
    for (const auto& f : fs::directory_iterator(entry.path(), ec)) {
      const std::string file = f.path().filename().string();
      if (file == kHeader) {
        s.hasHeader = true;
      } else if (f.path().extension() == kTempSuffix) {
        fs::remove(f.path(), ec);  // a write a crash interrupted
      } else if (f.path().extension() == kFragmentSuffix) {
        const uint64_t timecode = std::strtoull(f.path().stem().string().c_str(), nullptr, 10);
        const uint64_t size = f.file_size(ec);
        s.fragments[timecode] = size;
        bytes_ += size;
      }
    }
    if (!s.hasHeader) {
      for (const auto& [timecode, size] : s.fragments) bytes_ -= size;
      logTo(log_, LogLevel::Warning, "spool session " + s.dir + " has no stream header: removed");
      fs::remove_all(entry.path(), ec);
      continue;
    }
    sessions_[name] = std::move(s);
  }
  if (!sessions_.empty()) {
    logTo(log_, LogLevel::Info,
          "spool " + dir_ + ": " + std::to_string(fragments()) + " fragments (" + std::to_string(bytes_) +
              " bytes) left by earlier runs will be sent first");
  }

  const auto nowMs = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  uint64_t stamp = static_cast<uint64_t>(nowMs);
  while (sessions_.count(padded(stamp, 16)) != 0) stamp++;
  current_ = padded(stamp, 16);
  Session cur;
  cur.dir = (fs::path(dir_) / current_).string();
  fs::create_directories(cur.dir, ec);
  if (ec) throw std::runtime_error("storage-path " + cur.dir + " cannot be created: " + ec.message());
  sessions_[current_] = std::move(cur);
}

Spool::~Spool() {
  std::error_code ec;
  // This run's session directory goes when nothing in it is left to send.
  auto it = sessions_.find(current_);
  if (it != sessions_.end() && it->second.fragments.empty()) fs::remove_all(it->second.dir, ec);
  ::close(lockFd_);
}

std::string Spool::fragmentPath(const std::string& session, uint64_t timecode) const {
  return (fs::path(sessions_.at(session).dir) / (padded(timecode, 20) + kFragmentSuffix)).string();
}

void Spool::setHeader(const std::vector<uint8_t>& header) {
  std::lock_guard<std::mutex> lock(mutex_);
  Session& s = sessions_.at(current_);
  const std::string error = writeAtomically((fs::path(s.dir) / kHeader).string(), {{header.data(), header.size()}});
  if (!error.empty()) {
    logTo(log_, LogLevel::Warning, "spool: " + error);
    return;
  }
  s.hasHeader = true;
}

std::vector<Spool::Dropped> Spool::write(uint64_t timecode, const std::vector<Chunk>& chunks) {
  std::lock_guard<std::mutex> lock(mutex_);
  Session& s = sessions_.at(current_);
  if (!s.hasHeader) return {};
  if (ackedUnwritten_.erase(timecode) != 0) return {};  // acknowledged for good already
  std::vector<std::pair<const uint8_t*, size_t>> parts;
  uint64_t size = 0;
  for (const auto& c : chunks) {
    parts.emplace_back(c.data, c.size);
    size += c.size;
  }
  const std::string error = writeAtomically(fragmentPath(current_, timecode), parts);
  if (!error.empty()) {
    logTo(log_, LogLevel::Warning, "spool: fragment " + std::to_string(timecode) + " not written: " + error);
    return {};
  }
  auto [it, inserted] = s.fragments.emplace(timecode, size);
  if (!inserted) {
    bytes_ -= it->second;
    it->second = size;
  }
  bytes_ += size;

  std::vector<Dropped> dropped;
  while (bytes_ > maxBytes_) {
    auto oldest = sessions_.begin();
    while (oldest != sessions_.end() && oldest->second.fragments.empty()) ++oldest;
    if (oldest == sessions_.end()) break;
    const auto [tc, bytes] = *oldest->second.fragments.begin();
    if (oldest->first == current_ && tc == timecode) break;  // never the one just written
    dropped.push_back({tc, bytes});
    removeLocked(oldest->first, tc);
  }
  return dropped;
}

void Spool::remove(uint64_t timecode) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& [name, s] : sessions_) {
    if (s.fragments.count(timecode) != 0) {
      removeLocked(name, timecode);
      return;
    }
  }
  // Acknowledged before the streaming thread wrote it (the uploader sends a fragment as soon as
  // the next one starts, the write comes just after): it must not be written then.
  ackedUnwritten_.insert(timecode);
  while (ackedUnwritten_.size() > 256) ackedUnwritten_.erase(ackedUnwritten_.begin());
}

void Spool::removeLocked(const std::string& session, uint64_t timecode) {
  Session& s = sessions_.at(session);
  auto it = s.fragments.find(timecode);
  if (it == s.fragments.end()) return;
  std::error_code ec;
  fs::remove(fragmentPath(session, timecode), ec);
  bytes_ -= it->second;
  s.fragments.erase(it);
  dropSessionIfDone(session);
}

void Spool::dropSessionIfDone(const std::string& session) {
  if (session == current_) return;
  auto it = sessions_.find(session);
  if (it == sessions_.end() || !it->second.fragments.empty()) return;
  std::error_code ec;
  fs::remove_all(it->second.dir, ec);
  sessions_.erase(it);
}

std::optional<Spool::Batch> Spool::nextBatch(uint64_t currentBefore, uint64_t maxBytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<std::string> names;  // by name, not iterators: removeLocked may drop a session
  for (const auto& entry : sessions_) names.push_back(entry.first);
  for (const std::string& name : names) {
    if (sessions_.count(name) == 0) continue;
    Session& s = sessions_.at(name);
    const bool current = name == current_;
    if (s.fragments.empty() || (current && s.fragments.begin()->first >= currentBefore)) continue;
    auto header = readFile((fs::path(s.dir) / kHeader).string());
    if (!header) {
      logTo(log_, LogLevel::Warning, "spool: the stream header of " + s.dir + " cannot be read");
      continue;
    }
    Batch batch;
    batch.currentSession = current;
    batch.header = std::move(*header);
    uint64_t total = 0;
    std::vector<uint64_t> unreadable;
    for (const auto& [timecode, size] : s.fragments) {
      if (current && timecode >= currentBefore) break;
      if (!batch.fragments.empty() && total + size > maxBytes) break;
      auto bytes = readFile(fragmentPath(name, timecode));
      if (!bytes) {
        unreadable.push_back(timecode);
        continue;
      }
      total += size;
      batch.fragments.emplace_back(timecode, std::move(*bytes));
    }
    for (uint64_t tc : unreadable) {
      logTo(log_, LogLevel::Warning, "spool: fragment " + std::to_string(tc) + " cannot be read: dropped");
      removeLocked(name, tc);
    }
    if (!batch.fragments.empty()) return batch;
  }
  return std::nullopt;
}

uint64_t Spool::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return bytes_;
}

size_t Spool::fragments() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  for (const auto& [name, s] : sessions_) n += s.fragments.size();
  return n;
}

}  // namespace kvs
