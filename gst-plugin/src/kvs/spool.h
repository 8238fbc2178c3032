// On-disk spool of kvssink (storage-path): each fragment is written to a file when the element
// completes it and removed once acknowledged for good (PERSISTED; RECEIVED without retention;
// skipped after an ERROR ack). What was not acknowledged survives a producer restart, or an
// outage longer than the memory buffer holds, and is sent again at its original timestamps.
//
// Layout, one directory per stream:
//   <dir>/<session>/header.mkv          the stream header (EBML, Segment, Info, Tracks) the
//                                       session's fragments were made with
//   <dir>/<session>/<timecode>.frag     one fragment (tags, cluster), timecode zero-padded so
//                                       names sort in time order
// <session> is the start time of a run (ms since the epoch). Files are written under a temporary
// name, synced and renamed: a crash leaves whole files or none (temporary files are removed at
// the next start). Above `maxBytes` of fragment files the oldest are deleted and returned to the
// caller to report.
//
// One run owns a stream's directory at a time (an flock on <dir>/.lock). Thread safety: one
// internal mutex; nothing is called back.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kvs/log.h"
#include "kvs/store.h"

namespace kvs {

class Spool {
 public:
  struct Dropped {
    uint64_t timecode = 0;
    uint64_t bytes = 0;
  };
  /// Spooled fragments of one session to send again, oldest first.
  struct Batch {
    bool currentSession = false;
    std::vector<uint8_t> header;
    std::vector<std::pair<uint64_t, std::vector<uint8_t>>> fragments;  // timecode, bytes
  };

  /// Opens `dir` (created if missing) and indexes what earlier runs left; this run's session
  /// starts empty. Throws std::runtime_error naming the directory when it cannot be used.
  Spool(std::string dir, uint64_t maxBytes, LogSink log = {});
  ~Spool();
  Spool(const Spool&) = delete;
  Spool& operator=(const Spool&) = delete;

  /// The current session's stream header; written before its first fragment.
  void setHeader(const std::vector<uint8_t>& header);
  /// Writes a complete fragment of the current session. Returns the fragments deleted to stay
  /// within maxBytes (the oldest, of any session). A write that fails is logged and skipped.
  std::vector<Dropped> write(uint64_t timecode, const std::vector<Chunk>& chunks);
  /// The fragment is acknowledged for good: its file is deleted (and an earlier session's
  /// directory once it is empty).
  void remove(uint64_t timecode);
  /// Up to `maxBytes` (at least one fragment) of what to send again: an earlier session's
  /// fragments first, else the current session's with a timecode below `currentBefore` (those
  /// the memory buffer no longer holds). Nothing when there is none.
  std::optional<Batch> nextBatch(uint64_t currentBefore, uint64_t maxBytes);

  uint64_t bytes() const;
  size_t fragments() const;

 private:
  struct Session {
    std::string dir;
    bool hasHeader = false;
    std::map<uint64_t, uint64_t> fragments;  // timecode -> bytes
  };

  std::string fragmentPath(const std::string& session, uint64_t timecode) const;
  void removeLocked(const std::string& session, uint64_t timecode);
  void dropSessionIfDone(const std::string& session);

  std::string dir_;
  uint64_t maxBytes_;
  LogSink log_;
  mutable std::mutex mutex_;
  std::map<std::string, Session> sessions_;  // by name: oldest first
  std::string current_;
  uint64_t bytes_ = 0;
  std::set<uint64_t> ackedUnwritten_;  // timecodes removed before they were written
  int lockFd_ = -1;                    // flock()ed while this run owns the directory
};

}  // namespace kvs
