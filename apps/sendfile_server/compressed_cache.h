#pragma once

/// compressed_cache: a small per-worker LRU of on-the-fly compressed bodies, keyed by
/// (device, inode, fs::file_version, coding), bounded in bytes. A hit hands out a chain that
/// shares the cached pages (refcounts only), so repeated requests for the same file and
/// coding skip the page-cache read and the encoder. A file that changes gets a new
/// version, so a stale body is never served; it ages out of the LRU.
///
/// Ownership: the worker owns it; cached chains hold page_pool pages until evicted.
/// Threading: the worker's loop thread only. Errors: none (a body over a quarter of the
/// budget is simply not cached).

#include <cstddef>
#include <cstdint>
#include <list>
#include <unordered_map>

#include <pagewire/apps/http/coding.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>

namespace pagewire::sendfile_server {

class compressed_cache {
 public:
  struct key {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    fs::file_version version;  // all of it: a rewrite that keeps size and mtime moves ctime
    http::content_coding coding = http::content_coding::identity;
    friend bool operator==(const key&, const key&) = default;
  };
  static key key_of(const fs::file& f, http::content_coding coding);

  explicit compressed_cache(std::size_t budget_bytes) : budget_(budget_bytes) {}
  compressed_cache(const compressed_cache&) = delete;
  compressed_cache& operator=(const compressed_cache&) = delete;

  /// True and `out` = the cached body (shared pages) on a hit; refreshes its LRU place.
  bool find(const key& k, fs::chain& out);
  /// Caches a copy of `body` (shared pages), evicting least recently used bodies.
  void insert(const key& k, const fs::chain& body);

  /// Drops every body (before the page pool goes away).
  void clear() noexcept {
    map_.clear();
    lru_.clear();
    bytes_ = 0;
  }

  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t entries() const noexcept { return map_.size(); }

 private:
  struct hash {
    std::size_t operator()(const key& k) const noexcept;
  };
  struct entry {
    key k;
    fs::chain body;
  };
  std::size_t budget_;
  std::size_t bytes_ = 0;
  std::list<entry> lru_;  // front: most recently used
  std::unordered_map<key, std::list<entry>::iterator, hash> map_;
};

}  // namespace pagewire::sendfile_server
