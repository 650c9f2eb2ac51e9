#include <random>

#include <pagewire/runtime/fault_injection.h>
#include <pagewire/runtime/log.h>

namespace pagewire::runtime {
namespace {

bool has_length(unsigned op) {
  switch (op) {
    case IORING_OP_READ:
    case IORING_OP_WRITE:
    case IORING_OP_READ_FIXED:
    case IORING_OP_WRITE_FIXED:
    case IORING_OP_SEND:
    case IORING_OP_RECV:
    case IORING_OP_SEND_ZC:
    case IORING_OP_SPLICE:
    case IORING_OP_TEE:
      return true;
    default:
      return false;
  }
}

}  // namespace

fault_injector::fault_injector() = default;

void fault_injector::add(const fault_rule& rule) {
  rules_.push_back(state{rule, 0, 0});
}

void fault_injector::clear() noexcept {
  rules_.clear();
}

void fault_injector::seed(std::uint64_t s) noexcept {
  seed_ = s;
  rng_ = s ? s : 0x9e3779b97f4a7c15ull;
  seeded_ = true;
}

bool fault_injector::chance(double p) {
  if (p >= 1.0) return true;
  if (!seeded_) {
    std::random_device rd;
    seed((static_cast<std::uint64_t>(rd()) << 32) | rd());
    log_line("fault injection seed=%llu", static_cast<unsigned long long>(seed_));
  }
  // xorshift64*
  rng_ ^= rng_ >> 12;
  rng_ ^= rng_ << 25;
  rng_ ^= rng_ >> 27;
  const std::uint64_t x = rng_ * 0x2545f4914f6cdd1dull;
  return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0) < p;
}

fault_verdict fault_injector::apply(io_uring_sqe* sqe) {
  const unsigned op = sqe->opcode;
  for (state& s : rules_) {
    const fault_rule& r = s.rule;
    if (r.opcode >= 0 && static_cast<unsigned>(r.opcode) != op) continue;
    if (r.count && s.hits >= r.count) continue;
    if (s.seen++ < r.skip) continue;
    if (!chance(r.probability)) continue;
    ++s.hits;
    ++injected_;
    if (r.short_bytes >= 0) {
      if (has_length(op)) {
        if (sqe->len > r.short_bytes) sqe->len = static_cast<unsigned>(r.short_bytes);
        return {};
      }
      return {fault_verdict::clamp, static_cast<int>(r.short_bytes)};
    }
    const std::uint8_t flags = sqe->flags & (IOSQE_IO_LINK | IOSQE_IO_HARDLINK);
    io_uring_prep_nop(sqe);
    sqe->flags |= flags;
    return {fault_verdict::replace, r.result};
  }
  return {};
}

}  // namespace pagewire::runtime
