#pragma once

/// Fault injection: makes chosen operations complete with a chosen result instead
/// of the kernel's, so every layer can test its error paths. The hook is compiled
/// into the context only when PAGEWIRE_FAULT_INJECTION is defined (every build but
/// `-c opt`, see runtime/BUILD); in release builds rules are accepted but never
/// consulted (faults_enabled() says which).
///
/// How a fault lands, decided when the operation is submitted:
///  - an error result (EAGAIN, EINTR, ECANCELED, ECONNRESET, EPIPE, ENOBUFS,
///    ENOMEM, ...): the SQE is replaced by a NOP, so the real I/O never happens,
///    and the NOP's CQE carries the chosen result;
///  - a short transfer: for opcodes with a length (READ/WRITE[_FIXED], SEND, RECV,
///    SEND_ZC, SPLICE, TEE) the SQE's length is clamped, so the kernel really
///    transfers fewer bytes; for vectored opcodes (READV/WRITEV/SENDMSG/RECVMSG) the
///    result is clamped at completion.
/// Owned by its context; configure and read it from the context's loop thread.

#include <cstdint>
#include <vector>

#include <liburing.h>

namespace pagewire::runtime {

/// True in builds with the hook compiled in.
constexpr bool faults_enabled() noexcept {
#ifdef PAGEWIRE_FAULT_INJECTION
  return true;
#else
  return false;
#endif
}

/// One rule. A submission matches when its opcode matches; after `skip` matches
/// have passed, each match is hit with `probability` until `count` hits.
struct fault_rule {
  int opcode = -1;                ///< IORING_OP_*, or -1 for any opcode
  std::uint64_t skip = 0;         ///< matches to let through first
  std::uint64_t count = 1;        ///< hits before the rule retires (0: unlimited)
  double probability = 1.0;       ///< chance per match (random mode; seeded)
  int result = 0;                 ///< injected result, a negated errno (e.g. -EAGAIN)
  std::int64_t short_bytes = -1;  ///< >= 0: short transfer of at most this many bytes

  /// The `nth` (1-based) submission of `opcode` fails with -err.
  static fault_rule fail_nth(int opcode, std::uint64_t nth, int err) {
    fault_rule r;
    r.opcode = opcode;
    r.skip = nth - 1;
    r.result = -err;
    return r;
  }
  /// The `nth` submission of `opcode` transfers at most `bytes`.
  static fault_rule short_nth(int opcode, std::uint64_t nth, std::int64_t bytes) {
    fault_rule r;
    r.opcode = opcode;
    r.skip = nth - 1;
    r.short_bytes = bytes;
    return r;
  }
  /// Every submission of `opcode` (-1: any) fails with -err with `probability`.
  static fault_rule random(int opcode, double probability, int err) {
    fault_rule r;
    r.opcode = opcode;
    r.count = 0;
    r.probability = probability;
    r.result = -err;
    return r;
  }
};

/// What the context must do with the CQE of a faulted submission.
struct fault_verdict {
  enum kind : std::uint8_t { none, replace, clamp } what = none;
  int value = 0;  ///< replace: the result; clamp: the byte cap
};

class fault_injector {
 public:
  fault_injector();
  void add(const fault_rule& rule);
  void clear() noexcept;
  bool armed() const noexcept { return !rules_.empty(); }
  /// Seeds the random mode. Without a call, the seed comes from std::random_device
  /// and is printed to stderr once, at the first random decision, so a failing run
  /// can be replayed.
  void seed(std::uint64_t s) noexcept;
  std::uint64_t current_seed() const noexcept { return seed_; }
  /// Hits so far, all rules together.
  std::uint64_t injected() const noexcept { return injected_; }

  /// Called by the context after prepare(): may rewrite `sqe` (NOP, clamped length)
  /// and says what to do with its CQE.
  fault_verdict apply(io_uring_sqe* sqe);

 private:
  struct state {
    fault_rule rule;
    std::uint64_t seen = 0;
    std::uint64_t hits = 0;
  };
  bool chance(double p);

  std::vector<state> rules_;
  std::uint64_t seed_ = 0;
  std::uint64_t rng_ = 0;
  bool seeded_ = false;
  std::uint64_t injected_ = 0;
};

}  // namespace pagewire::runtime
