#include "apps/zcbench/path_pagewire.h"

#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <memory>
#include <vector>

#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/page_pool.h>
#include <pagewire/fs/stats.h>
#include <pagewire/net/pipe_pool.h>
#include <pagewire/net/policy.h>
#include <pagewire/net/transmit.h>
#include <pagewire/runtime/context.h>

#include "apps/zcbench/page_window.h"

namespace zcbench {
namespace {

namespace pw = pagewire;

enum class mode { splice, sendfile, send_zc, gather };

class pw_sender final : public sender {
 public:
  class op final : public pw::net::transmit_op {
   public:
    using transmit_op::transmit_op;
    bool done = false;
    std::error_code ec;

   protected:
    void on_complete(std::error_code e, std::uint64_t) override {
      done = true;
      ec = e;
    }
  };

  pw_sender(const transfer& t, mode m, std::error_code& ec)
      : t_(t),
        mode_(m),
        opts_(net_options(m)),
        ctx_(context_options()),
        pipes_(opts_),
        op_(ctx_, opts_, pipes_) {
    // io_uring ops do not care; the sendfile fallback waits for POLLOUT instead of blocking.
    ::fcntl(t.socket, F_SETFL, ::fcntl(t.socket, F_GETFL) | O_NONBLOCK);
    if (m == mode::splice || m == mode::sendfile) {
      file_ = pw::fs::file::adopt(::dup(t.src.file_fd), ec);
      return;
    }
    // Memory paths: the stream window copied once into pool pages (not timed).
    pw::fs::page_pool_options po;
    po.max_bytes = std::size_t{1} << 30;
    po.initial_arenas = (t.src.memory.size() + (2u << 20) - 1) / (2u << 20);
    pool_ = std::make_unique<pw::fs::page_pool>(po);
    if (m == mode::send_zc) {
      if (!ctx_.probe().send_zc) {
        ec = std::make_error_code(std::errc::not_supported);
        return;
      }
      opts_.send_zc_min_bytes = 4096;
      if ((ec = pool_->register_buffers(*ctx_.native_ring()))) return;
    }
    ec = window_.fill(*pool_, t.src.memory);
  }

  std::error_code send(send_counts& counts) override {
    const auto enters = ctx_.stats().snapshot().enters;
    const auto direct = op_.stats().syscalls;
    const auto copied = pw::fs::stats::copied_bytes();
    std::uint64_t offset = 0;
    std::error_code ec;
    while (offset < t_.src.total && !ec) {
      const std::uint64_t n = std::min<std::uint64_t>(t_.message_size, t_.src.total - offset);
      op_.done = false;
      fill_message(offset, n);
      op_.start(t_.socket, std::move(message_));  // message_ gets the last one's storage back
      while (!op_.done && ctx_.run_one() > 0) {
      }
      ec = op_.done ? op_.ec : std::make_error_code(std::errc::io_error);
      counts.bytes += op_.sent();
      offset += n;
    }
    // Every system call: io_uring_enter, plus the direct ones (inline splice, sendfile,
    // fstat, cachestat...).
    counts.syscalls = ctx_.stats().snapshot().enters - enters + op_.stats().syscalls - direct;
    counts.bytes_copied = pw::fs::stats::copied_bytes() - copied;
    // pw_send_zc's calls were mostly sendmsg (the kernel reported copying SEND_ZC's pages,
    // or the messages were shorter than send_zc_min_bytes): compared with the sendmsg loop.
    const auto& st = op_.stats();
    if (mode_ == mode::send_zc &&
        st.bytes_of(pw::net::send_path::gather) > st.bytes_of(pw::net::send_path::send_zc))
      counts.raw_used = "sendmsg";
    return ec;
  }

 private:
  // Each file path pinned by options::file_range_path (the source file is resident: zcbench
  // fills it before timing), so pw_splice_pipe measures the pipe and pw_sendfile sendfile(2).
  static pw::net::options net_options(mode m) {
    pw::net::options o;
    if (m == mode::splice) o.file_range_path = pw::net::options::file_path::splice;
    if (m == mode::sendfile) o.file_range_path = pw::net::options::file_path::sendfile;
    return o;
  }
  static pw::runtime::context_options context_options() {
    pw::runtime::context_options o;
    o.backend = pw::runtime::backend_kind::io_uring;
    return o;
  }
  // The message's chain: a file range, or shares of the memory window (wrapping around),
  // built in one chain whose storage transmit_op::start hands back, as an application that
  // sends message after message would (no allocation per message).
  void fill_message(std::uint64_t offset, std::uint64_t n) {
    if (file_) {
      message_.append(pw::fs::file_range(file_, offset, n));
    } else {
      window_.share(offset, n, message_);  // shares of pool pages: refcounts only
    }
  }

  transfer t_;
  mode mode_;
  pw::net::options opts_;
  pw::runtime::context ctx_;
  pw::net::pipe_pool pipes_;
  std::unique_ptr<pw::fs::page_pool> pool_;
  page_window window_;
  std::shared_ptr<const pw::fs::file> file_;
  pw::fs::chain message_;
  op op_;
};

template <mode M>
std::unique_ptr<sender> make(const transfer& t, std::error_code& ec) {
  try {
    auto s = std::make_unique<pw_sender>(t, M, ec);
    if (ec) return nullptr;
    return s;
  } catch (const std::system_error& e) {  // io_uring refused (EPERM, ENOSYS)
    ec = e.code();
    return nullptr;
  }
}

}  // namespace

const path pw_splice_pipe_path{
    .name = "pw_splice_pipe",
    .raw = "splice",
    .summary = "pagewire transmit: file range -> splice_pipe (inline when resident), 0 copied",
    .reads = source_kind::file,
    .make = make<mode::splice>,
};

const path pw_sendfile_path{
    .name = "pw_sendfile",
    .raw = "sendfile",
    .summary =
        "pagewire transmit: resident file range -> sendfile(2) on the loop (file_range_path)",
    .reads = source_kind::file,
    .make = make<mode::sendfile>,
};

const path pw_send_zc_path{
    .name = "pw_send_zc",
    .raw = "send_zc",
    .summary =
        "pagewire transmit: registered pages -> SEND_ZC (gather once the kernel copies; "
        "then compared with sendmsg)",
    .reads = source_kind::memory,
    .make = make<mode::send_zc>,
};

const path pw_gather_path{
    .name = "pw_gather",
    .raw = "sendmsg",
    .summary =
        "pagewire transmit: unregistered pages -> gathered sendmsg (options::max_iovecs per call)",
    .reads = source_kind::memory,
    .make = make<mode::gather>,
};

}  // namespace zcbench
