// Content store: the bounded buffer between the streaming thread and the uploader
// (producer-protocol.md §9, §4.3, §8.2).
//
// The streaming thread appends fragments made of chunks (MKV headers written around frame
// payloads that stay in their original buffers: a chunk holds a reference to its owner, so
// nothing is copied). The uploader reads the bytes of complete-or-growing fragments in order,
// one PutMedia connection at a time; acknowledgements move fragments through
// sent -> buffering -> received -> persisted, and PERSISTED trims the tail. After a dropped
// connection the uploader rolls back to the first fragment that must be sent again.
//
// When the store is over its byte or duration limit, the oldest whole fragment that is not
// being transmitted is dropped and reported through the drop callback.
//
// Thread safety: every public method takes the one internal mutex, and no method holds it while
// calling out: the drop, complete and data callbacks run with it released, on the writing thread (from
// beginFragment, appendFrame and closeFragment). Callers may hold locks of their own while
// calling in (the element holds its media lock while it writes), so a callback must not take
// those locks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

namespace kvs {

/// A run of bytes kept alive by its owner (a frame buffer, or bytes the writer produced).
struct Chunk {
  std::shared_ptr<const void> owner;
  const uint8_t* data = nullptr;
  size_t size = 0;

  static Chunk copyOf(const std::vector<uint8_t>& bytes);
  static Chunk adopt(std::vector<uint8_t>&& bytes);
};

enum class FragmentState { Pending, Sent, Buffering, Received, Persisted, Skipped };

struct FragmentInfo {
  uint64_t id = 0;
  uint64_t timecode = 0;  // cluster timecode as sent (the ACK's FragmentTimecode)
  int64_t startNs = 0;    // first frame timestamp
  int64_t endNs = 0;      // last frame timestamp
  size_t bytes = 0;
  uint32_t frames = 0;
  bool complete = false;
  FragmentState state = FragmentState::Pending;
  std::chrono::steady_clock::time_point completedAt;  // when its last byte was stored
};

struct StoreStats {
  size_t bufferedBytes = 0;
  std::chrono::nanoseconds bufferedDuration{0};
  size_t fragments = 0;
  uint64_t droppedFragments = 0;
  uint64_t droppedFrames = 0;
};

/// Where a connection reads next.
struct ReadCursor {
  uint64_t fragmentId = 0;
  size_t chunk = 0;
  size_t offset = 0;
};

class ContentStore {
 public:
  ContentStore(size_t maxBytes, std::chrono::nanoseconds maxDuration);

  // ---- streaming thread ----
  /// Starts a fragment (closing the open one). Returns its id.
  uint64_t beginFragment(uint64_t timecode, int64_t ptsNs, Chunk prefix);
  /// Appends a frame's chunks to the open fragment; drops old fragments when over the limits.
  void appendFrame(int64_t ptsNs, std::vector<Chunk> chunks);
  /// Closes the open fragment, optionally with trailing bytes (an end-of-fragment tag).
  void closeFragment(std::optional<Chunk> trailer = std::nullopt);

  // ---- uploader thread ----
  /// Copies up to `max` bytes at the cursor into `dst`, advancing it. Returns 0 when nothing is
  /// available yet. With `stopAtBoundary`, reading stops at the start of the next fragment.
  size_t read(ReadCursor& cursor, uint8_t* dst, size_t max, bool stopAtBoundary = false);
  /// True when the cursor is at the start of a fragment (or past everything) — a safe place to
  /// end a connection's body.
  bool atFragmentBoundary(const ReadCursor& cursor) const;
  /// True when everything up to the cursor has been read and no fragment is open.
  bool drained(const ReadCursor& cursor) const;
  /// First fragment to send on a new connection (producer-protocol.md §8.2): the fragment after
  /// the last RECEIVED one when `hostAlive`, else at most `replay` before the cursor, never
  /// before the oldest fragment kept; persisted and skipped fragments are stepped over.
  ReadCursor rollback(const ReadCursor& cursor, bool hostAlive, std::chrono::nanoseconds replay) const;
  /// A cursor at the oldest fragment not yet persisted (or at the open end).
  ReadCursor tailCursor() const;

  /// Applies an ACK. Returns the fragment it matched, if any.
  std::optional<FragmentInfo> ack(FragmentState newState, uint64_t timecode);
  /// Marks a fragment to be stepped over on resend.
  void skip(uint64_t timecode);
  /// True when every fragment kept is persisted (or skipped).
  bool allPersisted() const;
  /// True when every fragment with an id below `id` is persisted (or skipped).
  bool allPersistedBefore(uint64_t id) const;
  std::optional<FragmentInfo> fragment(uint64_t id) const;
  /// Timecode of the oldest fragment kept, if any.
  std::optional<uint64_t> oldestTimecode() const;

  /// Blocks until data is available past `cursor`, `wake()` is called, or the timeout passes.
  void waitForData(const ReadCursor& cursor, std::chrono::milliseconds timeout);
  /// Blocks until every fragment is persisted, `wake()` is called, or the deadline passes.
  bool waitAllPersisted(std::chrono::steady_clock::time_point deadline);
  void wake();
  /// Blocks until at most `bytes` are buffered, `wake()` is called, or the deadline passes.
  /// Returns true when the store is at or below `bytes`.
  bool waitBelow(size_t bytes, std::chrono::steady_clock::time_point deadline);

  void setDropCallback(std::function<void(const FragmentInfo&)> cb);
  /// Called with a fragment's info and chunks when the writer completes it (the next
  /// beginFragment, or closeFragment); on the writing thread, the store's lock released.
  void setCompleteCallback(std::function<void(const FragmentInfo&, const std::vector<Chunk>&)> cb);
  void setDataCallback(std::function<void()> cb);
  StoreStats stats() const;

 private:
  struct Fragment {
    FragmentInfo info;
    std::vector<Chunk> chunks;
  };

  Fragment* find(uint64_t id);
  const Fragment* find(uint64_t id) const;
  void trimPersisted();
  std::vector<FragmentInfo> enforceLimits(uint64_t protectId);
  /// After bytes were added (lock held): enforce the limits, then, unlocked, wake waiters and
  /// run the complete (for `completed`), drop and data callbacks.
  void added(std::unique_lock<std::mutex>& lock, uint64_t protectId, std::optional<Fragment> completed = std::nullopt);
  size_t bytes() const;
  std::chrono::nanoseconds duration() const;

  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Fragment> fragments_;  // ascending ids; front = oldest kept
  uint64_t nextId_ = 1;
  bool open_ = false;
  size_t maxBytes_;
  std::chrono::nanoseconds maxDuration_;
  size_t totalBytes_ = 0;
  uint64_t readingId_ = 0;  // fragment a connection is transmitting (never dropped)
  uint64_t wakeups_ = 0;
  StoreStats dropped_;
  std::function<void(const FragmentInfo&)> onDrop_;
  std::function<void()> onData_;
  std::function<void(const FragmentInfo&, const std::vector<Chunk>&)> onComplete_;
};

}  // namespace kvs
