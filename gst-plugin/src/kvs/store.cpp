#include "kvs/store.h"

#include <algorithm>
#include <cstring>

namespace kvs {

Chunk Chunk::copyOf(const std::vector<uint8_t>& bytes) {
  return adopt(std::vector<uint8_t>(bytes));
}

Chunk Chunk::adopt(std::vector<uint8_t>&& bytes) {
  auto owned = std::make_shared<std::vector<uint8_t>>(std::move(bytes));
  Chunk c;
  c.data = owned->data();
  c.size = owned->size();
  c.owner = std::move(owned);
  return c;
}

ContentStore::ContentStore(size_t maxBytes, std::chrono::nanoseconds maxDuration)
    : maxBytes_(maxBytes), maxDuration_(maxDuration) {}

ContentStore::Fragment* ContentStore::find(uint64_t id) {
  auto it = std::lower_bound(fragments_.begin(), fragments_.end(), id,
                             [](const Fragment& f, uint64_t v) { return f.info.id < v; });
  return it != fragments_.end() && it->info.id == id ? &*it : nullptr;
}

const ContentStore::Fragment* ContentStore::find(uint64_t id) const {
  return const_cast<ContentStore*>(this)->find(id);
}

size_t ContentStore::bytes() const { return totalBytes_; }

std::chrono::nanoseconds ContentStore::duration() const {
  if (fragments_.empty()) return std::chrono::nanoseconds{0};
  return std::chrono::nanoseconds{fragments_.back().info.endNs - fragments_.front().info.startNs};
}

uint64_t ContentStore::beginFragment(uint64_t timecode, int64_t ptsNs, Chunk prefix) {
  std::unique_lock<std::mutex> lock(mutex_);
  std::optional<Fragment> completed;
  if (open_ && !fragments_.empty()) {
    fragments_.back().info.complete = true;
    fragments_.back().info.completedAt = std::chrono::steady_clock::now();
    if (onComplete_) completed = Fragment{fragments_.back().info, fragments_.back().chunks};
  }
  Fragment f;
  const uint64_t id = f.info.id = nextId_++;
  f.info.timecode = timecode;
  f.info.startNs = f.info.endNs = ptsNs;
  f.info.bytes = prefix.size;
  totalBytes_ += prefix.size;
  f.chunks.push_back(std::move(prefix));
  fragments_.push_back(std::move(f));
  open_ = true;
  added(lock, id, std::move(completed));
  return id;
}

void ContentStore::appendFrame(int64_t ptsNs, std::vector<Chunk> chunks) {
  std::unique_lock<std::mutex> lock(mutex_);
  if (!open_ || fragments_.empty()) return;
  Fragment& f = fragments_.back();
  for (auto& c : chunks) {
    f.info.bytes += c.size;
    totalBytes_ += c.size;
    f.chunks.push_back(std::move(c));
  }
  f.info.endNs = std::max(f.info.endNs, ptsNs);
  f.info.frames++;
  added(lock, f.info.id);
}

void ContentStore::added(std::unique_lock<std::mutex>& lock, uint64_t protectId, std::optional<Fragment> completed) {
  std::vector<FragmentInfo> dropped = enforceLimits(protectId);
  std::function<void()> onData = onData_;
  std::function<void(const FragmentInfo&)> onDrop = dropped.empty() ? nullptr : onDrop_;
  std::function<void(const FragmentInfo&, const std::vector<Chunk>&)> onComplete = completed ? onComplete_ : nullptr;
  lock.unlock();
  changed_.notify_all();
  if (onComplete) onComplete(completed->info, completed->chunks);
  for (const auto& d : dropped) {
    if (onDrop) onDrop(d);
  }
  if (onData) onData();
}

void ContentStore::closeFragment(std::optional<Chunk> trailer) {
  std::function<void()> onData;
  std::function<void(const FragmentInfo&, const std::vector<Chunk>&)> onComplete;
  std::optional<Fragment> completed;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!open_ || fragments_.empty()) return;
    Fragment& f = fragments_.back();
    if (trailer) {
      f.info.bytes += trailer->size;
      totalBytes_ += trailer->size;
      f.chunks.push_back(std::move(*trailer));
    }
    f.info.complete = true;
    f.info.completedAt = std::chrono::steady_clock::now();
    open_ = false;
    onData = onData_;
    onComplete = onComplete_;
    if (onComplete) completed = Fragment{f.info, f.chunks};
  }
  changed_.notify_all();
  if (onComplete) onComplete(completed->info, completed->chunks);
  if (onData) onData();
}

size_t ContentStore::read(ReadCursor& cursor, uint8_t* dst, size_t max, bool stopAtBoundary) {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t n = 0;
  while (n < max) {
    Fragment* f = find(cursor.fragmentId);
    if (f == nullptr) {
      // The fragment was dropped or trimmed (or not written yet): go to the next one's start,
      // unless we were in the middle of it (then its bytes are gone; the next one starts clean).
      auto it = std::upper_bound(fragments_.begin(), fragments_.end(), cursor.fragmentId,
                                 [](uint64_t v, const Fragment& fr) { return v < fr.info.id; });
      if (cursor.chunk == 0 && cursor.offset == 0) {
        it = std::lower_bound(fragments_.begin(), fragments_.end(), cursor.fragmentId,
                              [](const Fragment& fr, uint64_t v) { return fr.info.id < v; });
      } else if (n > 0) {
        break;  // never splice the start of another fragment into a truncated one in one read
      }
      if (it == fragments_.end()) break;
      cursor = ReadCursor{it->info.id, 0, 0};
      continue;
    }
    if (cursor.chunk == 0 && cursor.offset == 0) {
      if (f->info.state == FragmentState::Skipped || f->info.state == FragmentState::Persisted) {
        cursor = ReadCursor{f->info.id + 1, 0, 0};
        continue;
      }
    }
    if (cursor.chunk >= f->chunks.size()) {
      if (!f->info.complete) break;  // wait for more frames
      cursor = ReadCursor{f->info.id + 1, 0, 0};
      readingId_ = 0;
      if (stopAtBoundary) break;
      continue;
    }
    const Chunk& c = f->chunks[cursor.chunk];
    size_t take = std::min(max - n, c.size - cursor.offset);
    std::memcpy(dst + n, c.data + cursor.offset, take);
    n += take;
    cursor.offset += take;
    readingId_ = f->info.id;
    if (f->info.state == FragmentState::Pending) f->info.state = FragmentState::Sent;
    if (cursor.offset == c.size) {
      cursor.chunk++;
      cursor.offset = 0;
    }
  }
  return n;
}

bool ContentStore::atFragmentBoundary(const ReadCursor& cursor) const {
  return cursor.chunk == 0 && cursor.offset == 0;
}

bool ContentStore::drained(const ReadCursor& cursor) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (open_) return false;
  if (cursor.chunk != 0 || cursor.offset != 0) {
    const Fragment* f = find(cursor.fragmentId);
    if (f != nullptr) return false;
  }
  for (const auto& f : fragments_) {
    if (f.info.id < cursor.fragmentId) continue;
    if (f.info.state != FragmentState::Skipped && f.info.state != FragmentState::Persisted) return false;
  }
  return true;
}

ReadCursor ContentStore::rollback(const ReadCursor& cursor, bool hostAlive, std::chrono::nanoseconds replay) const {
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t limit = cursor.fragmentId;  // never start after the fragment the cursor is in or before
  uint64_t start = limit;
  const Fragment* cur = find(cursor.fragmentId);
  int64_t curStart = cur != nullptr ? cur->info.startNs : (fragments_.empty() ? 0 : fragments_.back().info.endNs);
  if (hostAlive) {
    uint64_t afterReceived = 0;
    for (const auto& f : fragments_) {
      if (f.info.id >= limit) break;
      if (f.info.state == FragmentState::Received || f.info.state == FragmentState::Persisted) afterReceived = f.info.id + 1;
    }
    start = afterReceived;
  } else {
    for (auto it = fragments_.rbegin(); it != fragments_.rend(); ++it) {
      if (it->info.id > limit) continue;
      if (curStart - it->info.startNs > replay.count()) break;
      start = it->info.id;
    }
  }
  // Never before the oldest kept fragment; step over persisted/skipped ones.
  for (const auto& f : fragments_) {
    if (f.info.id < start) continue;
    if (f.info.id > limit) break;
    if (f.info.state == FragmentState::Persisted || f.info.state == FragmentState::Skipped) {
      start = f.info.id + 1;
      continue;
    }
    return ReadCursor{f.info.id, 0, 0};
  }
  return ReadCursor{std::max(start, limit), 0, 0};
}

ReadCursor ContentStore::tailCursor() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& f : fragments_) {
    if (f.info.state != FragmentState::Persisted && f.info.state != FragmentState::Skipped) return ReadCursor{f.info.id, 0, 0};
  }
  return ReadCursor{nextId_, 0, 0};
}

std::optional<FragmentInfo> ContentStore::ack(FragmentState newState, uint64_t timecode) {
  std::optional<FragmentInfo> matched;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto it = fragments_.rbegin(); it != fragments_.rend(); ++it) {
      if (it->info.timecode != timecode) continue;
      if (it->info.state == FragmentState::Skipped) break;
      if (newState > it->info.state || newState == FragmentState::Skipped) it->info.state = newState;
      matched = it->info;
      if (newState == FragmentState::Persisted) {
        // PERSISTED is in order: everything up to this fragment is done.
        for (auto& f : fragments_) {
          if (f.info.id > matched->id) break;
          if (f.info.state != FragmentState::Skipped) f.info.state = FragmentState::Persisted;
        }
        trimPersisted();
      }
      break;
    }
  }
  changed_.notify_all();
  return matched;
}

void ContentStore::skip(uint64_t timecode) { ack(FragmentState::Skipped, timecode); }

void ContentStore::trimPersisted() {
  while (!fragments_.empty()) {
    const Fragment& f = fragments_.front();
    bool done = f.info.state == FragmentState::Persisted || (f.info.state == FragmentState::Skipped && f.info.complete);
    if (!done || f.info.id == readingId_ || (open_ && fragments_.size() == 1)) break;
    totalBytes_ -= f.info.bytes;
    fragments_.pop_front();
  }
}

bool ContentStore::allPersisted() const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& f : fragments_) {
    if (f.info.state != FragmentState::Persisted && f.info.state != FragmentState::Skipped) return false;
  }
  return true;
}

bool ContentStore::allPersistedBefore(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& f : fragments_) {
    if (f.info.id >= id) break;
    if (f.info.state != FragmentState::Persisted && f.info.state != FragmentState::Skipped) return false;
  }
  return true;
}

std::optional<FragmentInfo> ContentStore::fragment(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Fragment* f = find(id);
  if (f == nullptr) return std::nullopt;
  return f->info;
}

void ContentStore::waitForData(const ReadCursor& cursor, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mutex_);
  uint64_t wakeups = wakeups_;
  auto available = [&] {
    if (wakeups_ != wakeups) return true;
    for (const auto& f : fragments_) {
      if (f.info.id < cursor.fragmentId) continue;
      if (f.info.id > cursor.fragmentId) return true;
      if (cursor.chunk < f.chunks.size() || f.info.complete) return true;
    }
    return false;
  };
  changed_.wait_for(lock, timeout, available);
}

bool ContentStore::waitAllPersisted(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  uint64_t wakeups = wakeups_;
  auto done = [&] {
    if (wakeups_ != wakeups) return true;
    for (const auto& f : fragments_) {
      if (f.info.state != FragmentState::Persisted && f.info.state != FragmentState::Skipped) return false;
    }
    return true;
  };
  changed_.wait_until(lock, deadline, done);
  for (const auto& f : fragments_) {
    if (f.info.state != FragmentState::Persisted && f.info.state != FragmentState::Skipped) return false;
  }
  return true;
}

bool ContentStore::waitBelow(size_t bytes, std::chrono::steady_clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mutex_);
  uint64_t wakeups = wakeups_;
  changed_.wait_until(lock, deadline, [&] { return totalBytes_ <= bytes || wakeups_ != wakeups; });
  return totalBytes_ <= bytes;
}

void ContentStore::wake() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    wakeups_++;
  }
  changed_.notify_all();
}

void ContentStore::setDropCallback(std::function<void(const FragmentInfo&)> cb) {
  std::lock_guard<std::mutex> lock(mutex_);
  onDrop_ = std::move(cb);
}

std::optional<uint64_t> ContentStore::oldestTimecode() const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (fragments_.empty()) return std::nullopt;
  return fragments_.front().info.timecode;
}

void ContentStore::setCompleteCallback(std::function<void(const FragmentInfo&, const std::vector<Chunk>&)> cb) {
  std::lock_guard<std::mutex> lock(mutex_);
  onComplete_ = std::move(cb);
}

void ContentStore::setDataCallback(std::function<void()> cb) {
  std::lock_guard<std::mutex> lock(mutex_);
  onData_ = std::move(cb);
}

StoreStats ContentStore::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  StoreStats s = dropped_;
  s.bufferedBytes = totalBytes_;
  s.bufferedDuration = duration();
  s.fragments = fragments_.size();
  return s;
}

std::vector<FragmentInfo> ContentStore::enforceLimits(uint64_t protectId) {
  std::vector<FragmentInfo> dropped;
  while ((totalBytes_ > maxBytes_ || duration() > maxDuration_) && fragments_.size() > 1) {
    auto victim = std::find_if(fragments_.begin(), fragments_.end(), [&](const Fragment& f) {
      return f.info.id != readingId_ && f.info.id != protectId;
    });
    if (victim == fragments_.end()) break;
    if (victim->info.state == FragmentState::Pending) {
      dropped_.droppedFragments++;
      dropped_.droppedFrames += victim->info.frames;
      dropped.push_back(victim->info);
    }
    totalBytes_ -= victim->info.bytes;
    fragments_.erase(victim);
  }
  return dropped;
}

}  // namespace kvs
