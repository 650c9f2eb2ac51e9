#pragma once

/// memory_transport: a connected pair of in-process transports (the bottom of a stack, like
/// plain_transport, but with no socket), for tests and for running a stack against itself.
/// What one end writes, the other reads, in order. With options.max_send > 0 every write is
/// cut into "sends" of a random 1..max_send bytes (seeded), each arriving as its own read:
/// the short-transfer shim that TLS and the content filters must survive byte-exact.
/// File ranges in a write are read with pread into pool pages (a counted copy, reason
/// fallback: there is no kernel socket to splice into).
///
/// Completions are posted to the loop (never inline). shutdown() ends the peer's reads with
/// errc::eof; destroying an end does the same. cancel() completes a waiting read with
/// ECANCELED. Threading: one context, its loop thread.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <utility>

#include <pagewire/filters/stream.h>
#include <pagewire/fs/page_pool.h>

namespace pagewire::filters {

struct memory_transport_options {
  std::size_t max_send = 0;  ///< 0: a write arrives whole; else random 1..max_send per send
  std::uint64_t seed = 1;
};

class memory_transport final : public stream {
 public:
  static std::pair<std::unique_ptr<memory_transport>, std::unique_ptr<memory_transport>> make_pair(
      runtime::context& ctx, fs::page_pool& pool, const memory_transport_options& options = {});
  ~memory_transport() override;

  void start_write(write_request& r) override;
  void start_read(read_waiter& w) override;
  void start_shutdown(done_waiter& w) override;
  void cancel() override;
  std::string describe() const override { return "memory"; }

  /// Sends so far (pieces after the max_send cut).
  std::uint64_t sends() const noexcept { return sends_; }

 private:
  memory_transport(runtime::context& ctx, fs::page_pool& pool, const memory_transport_options& o);
  void arrive(fs::chain c);
  void peer_closed();
  void serve();

  fs::page_pool& pool_;
  memory_transport_options options_;
  std::mt19937_64 rng_;
  memory_transport* peer_ = nullptr;
  std::deque<fs::chain> queue_;
  bool eof_ = false;
  bool shut_ = false;
  bool serving_ = false;
  read_waiter* rw_ = nullptr;
  std::uint64_t sends_ = 0;
  std::shared_ptr<char> alive_ = std::make_shared<char>();
};

}  // namespace pagewire::filters
