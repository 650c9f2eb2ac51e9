// Socket, splice and multi-CQE operations, run on both backends: the fallback
// must give the same operation objects the same results as io_uring.

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fcntl.h>
#include <netinet/in.h>
#include <string>
#include <sys/socket.h>
#include <sys/uio.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <gtest/gtest.h>

#include <pagewire/runtime/asio_host.h>
#include <pagewire/runtime/context.h>

#include "tests/runtime/test_ops.h"

namespace pagewire::runtime {
namespace {

using testing::nop_op;
using testing::pipe_fds;

struct recv_op : operation {
  int fd;
  char buf[64];
  int res = INT_MIN;
  void prepare(io_uring_sqe* sqe) override { io_uring_prep_recv(sqe, fd, buf, sizeof buf, 0); }
  void complete(int r, unsigned) override { res = r; }
};

struct send_zc_op : operation {
  int fd;
  std::string data;
  int msg_flags = 0;
  std::vector<std::pair<int, unsigned>> cqes;
  int final_res = INT_MIN;
  unsigned final_flags = 0;
  void prepare(io_uring_sqe* sqe) override {
    io_uring_prep_send_zc(sqe, fd, data.data(), data.size(), msg_flags, 0);
  }
  void partial(int r, unsigned f) override { cqes.emplace_back(r, f); }
  void complete(int r, unsigned f) override {
    final_res = r;
    final_flags = f;
  }
};

struct accept_op : operation {
  int fd;
  bool multishot = false;
  std::vector<int> accepted;
  int final_res = INT_MIN;
  void prepare(io_uring_sqe* sqe) override {
    if (multishot) {
      io_uring_prep_multishot_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    } else {
      io_uring_prep_accept(sqe, fd, nullptr, nullptr, SOCK_CLOEXEC);
    }
  }
  void partial(int r, unsigned) override { accepted.push_back(r); }
  void complete(int r, unsigned) override {
    final_res = r;
    if (r >= 0) accepted.push_back(r);
  }
};

struct connect_op : operation {
  int fd;
  sockaddr_in addr{};
  int res = INT_MIN;
  void prepare(io_uring_sqe* sqe) override {
    io_uring_prep_connect(sqe, fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  }
  void complete(int r, unsigned) override { res = r; }
};

struct splice_op : operation {
  int in, out;
  long long off_in;
  unsigned len;
  int res = INT_MIN;
  void prepare(io_uring_sqe* sqe) override {
    io_uring_prep_splice(sqe, in, off_in, out, -1, len, 0);
  }
  void complete(int r, unsigned) override { res = r; }
};

int listen_loopback(sockaddr_in& addr) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::listen(fd, 16);
  return fd;
}

// Two connected TCP sockets on loopback (SEND_ZC needs an inet socket: AF_UNIX refuses it).
bool connected_loopback_pair(int sv[2]) {
  sockaddr_in addr{};
  const int lfd = listen_loopback(addr);
  sv[0] = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const bool connected = ::connect(sv[0], reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  sv[1] = connected ? ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC) : -1;
  ::close(lfd);
  return sv[1] >= 0;
}

class Backend : public ::testing::TestWithParam<backend_kind> {
 protected:
  context ctx{testing::options_for(GetParam())};
};

TEST_P(Backend, RecvWaitsForDataThenCompletes) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  recv_op r;
  r.fd = sv[0];
  ctx.start(r);
  ctx.poll();
  EXPECT_TRUE(r.in_flight());
  ASSERT_EQ(::write(sv[1], "abc", 3), 3);
  ctx.run();
  EXPECT_EQ(r.res, 3);
  EXPECT_EQ(std::string(r.buf, 3), "abc");
  ::close(sv[0]);
  ::close(sv[1]);
}

// io_uring fails a link on a short send/recv only with MSG_WAITALL; the fallback must agree.
TEST_P(Backend, ShortRecvInALinkedChainLetsTheNextLinkRun) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(::write(sv[1], "hello", 5), 5);
  recv_op r;
  r.fd = sv[0];
  nop_op n;
  linked_op chain[] = {{&r, {}}, {&n, {}}};
  ASSERT_FALSE(ctx.start_linked(chain));
  ctx.run();
  EXPECT_EQ(r.res, 5);  // of 64
  EXPECT_EQ(n.result_seen, 0);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(Backend, ShortRecvmsgWithWaitallInALinkedChainCancelsTheNextLink) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  ASSERT_EQ(::write(sv[1], "hello", 5), 5);
  ASSERT_EQ(::shutdown(sv[1], SHUT_WR), 0);  // the recv ends short, at end of stream
  struct recvmsg_op : operation {
    char buf[64];
    iovec iov{buf, sizeof buf};
    msghdr msg{};
    int fd = -1;
    int res = INT_MIN;
    void prepare(io_uring_sqe* sqe) override {
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      io_uring_prep_recvmsg(sqe, fd, &msg, MSG_WAITALL);
    }
    void complete(int r, unsigned) override { res = r; }
  } r;
  r.fd = sv[0];
  nop_op n;
  linked_op chain[] = {{&r, {}}, {&n, {}}};
  ASSERT_FALSE(ctx.start_linked(chain));
  ctx.run();
  EXPECT_EQ(r.res, 5);
  EXPECT_EQ(n.result_seen, -ECANCELED);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(Backend, SendZcDeliversResultThenNotificationAndStaysRegisteredUntilIt) {
  if (!ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  int sv[2];
  ASSERT_TRUE(connected_loopback_pair(sv));
  send_zc_op s;
  s.fd = sv[0];
  s.data = "zero-copy";
  ctx.start(s);
  ctx.run();
  ASSERT_EQ(s.cqes.size(), 1u);
  EXPECT_EQ(s.cqes[0].first, 9);
  EXPECT_TRUE(s.cqes[0].second & IORING_CQE_F_MORE);
  EXPECT_EQ(s.final_res, 9);  // the bytes, carried over to the NOTIF
  EXPECT_TRUE(s.final_flags & IORING_CQE_F_NOTIF);
  char buf[16];
  EXPECT_EQ(::read(sv[1], buf, sizeof buf), 9);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(Backend, RunOneRunsASendZcResultAndItsNotificationOneAtATime) {
  if (!ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  int sv[2];
  ASSERT_TRUE(connected_loopback_pair(sv));
  send_zc_op s;
  s.fd = sv[0];
  s.data = "zero-copy";
  ctx.start(s);
  ASSERT_EQ(ctx.run_one(), 1u);
  EXPECT_EQ(s.cqes.size(), 1u);
  EXPECT_EQ(s.final_res, INT_MIN);  // the NOTIF is a handler of its own
  ASSERT_EQ(ctx.run_one(), 1u);
  EXPECT_EQ(s.final_res, 9);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(Backend, AcceptAndConnectOverLoopback) {
  sockaddr_in addr{};
  const int lfd = listen_loopback(addr);
  accept_op a;
  a.fd = lfd;
  connect_op c;
  c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  c.addr = addr;
  ctx.start(a);
  ctx.start(c);
  ctx.run();
  EXPECT_EQ(c.res, 0);
  ASSERT_EQ(a.accepted.size(), 1u);
  EXPECT_GE(a.accepted[0], 0);
  ::close(a.accepted[0]);
  ::close(c.fd);
  ::close(lfd);
}

TEST_P(Backend, MultishotAcceptStaysRegisteredUntilCancelled) {
  if (!ctx.probe().multishot_accept) GTEST_SKIP() << "no multishot accept";
  sockaddr_in addr{};
  const int lfd = listen_loopback(addr);
  accept_op a;
  a.fd = lfd;
  a.multishot = true;
  ctx.start(a);
  ctx.poll();
  int clients[3];
  for (int& fd : clients) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  }
  ASSERT_TRUE(testing::run_until(ctx, [&] { return a.accepted.size() == 3; }));
  EXPECT_TRUE(a.in_flight());
  ctx.cancel(a);
  ctx.run();
  EXPECT_EQ(a.final_res, -ECANCELED);
  EXPECT_FALSE(a.in_flight());
  for (int fd : a.accepted)
    ::close(fd);
  for (int fd : clients)
    ::close(fd);
  ::close(lfd);
}

TEST_P(Backend, SpliceMovesFileBytesIntoAPipe) {
  char path[] = "/tmp/pagewire_splice_XXXXXX";
  const int f = ::mkstemp(path);
  ASSERT_GE(f, 0);
  ::unlink(path);
  const std::string body = "file body bytes";
  ASSERT_EQ(::write(f, body.data(), body.size()), static_cast<ssize_t>(body.size()));
  pipe_fds p;
  splice_op s;
  s.in = f;
  s.out = p.w;
  s.off_in = 5;
  s.len = 4;
  ctx.start(s);
  ctx.run();
  EXPECT_EQ(s.res, 4);
  char buf[8];
  ASSERT_EQ(::read(p.r, buf, sizeof buf), 4);
  EXPECT_EQ(std::string(buf, 4), "body");
  ::close(f);
}

// io_uring writes what a pipe has room for and completes short (pipes and sockets are not
// regular files: no retry for the rest). The fallback must not block the loop's thread in a
// write(2) that waits for a reader, even on a pipe opened without O_NONBLOCK: here the only
// reader is a watchdog that drains the pipe after two seconds. (The loop runs on a thread of its
// own: task work that an earlier test's ring sends the main thread would cut a blocked write
// short and hide the block.)
TEST_P(Backend, WriteLargerThanABlockingPipeHoldsCompletesShortWithoutBlockingTheLoop) {
  pipe_fds p;  // blocking
  const int capacity = ::fcntl(p.w, F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  std::vector<char> big(4 * static_cast<std::size_t>(capacity), 'x');
  testing::write_op w(p.w, big.data(), big.size());
  std::atomic<bool> done{false};
  std::atomic<bool> drained{false};
  std::thread watchdog([&] {
    for (int i = 0; i < 200 && !done.load(); ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (done.load()) return;
    drained = true;
    char buf[4096];
    while (!done.load() && ::read(p.r, buf, sizeof buf) > 0) {
    }
  });
  std::thread loop([&] {
    context c(testing::options_for(GetParam()));
    c.start(w);
    c.run();
  });
  loop.join();
  done = true;
  ::close(p.w);  // ends the watchdog's read
  p.w = -1;
  watchdog.join();
  EXPECT_FALSE(drained.load()) << "the write blocked the loop until the pipe was drained";
  EXPECT_EQ(w.result_seen, capacity);
}

// A pipe or socket has no file position: io_uring ignores a READ's or WRITE's offset on one,
// where pread/pwrite fail with ESPIPE.
TEST_P(Backend, OffsetOfAReadOrWriteOnAPipeIsIgnored) {
  pipe_fds p;
  const char msg[] = "abc";
  testing::write_op w(p.w, msg, 3, 0);
  ctx.start(w);
  ctx.run();
  ASSERT_EQ(w.result_seen, 3);  // (else the read below would wait for ever)
  char buf[8] = {};
  testing::read_op r(p.r, buf, sizeof buf, 4096);
  ctx.start(r);
  ctx.run();
  EXPECT_EQ(r.result_seen, 3);
  EXPECT_EQ(std::string(buf, 3), "abc");
}

// The fallback has no registered file table: an fd flagged IOSQE_FIXED_FILE is an index into
// one, never a descriptor of this process to read or write.
TEST_P(Backend, FixedFileIndexIsNeverUsedAsAPlainFd) {
  pipe_fds p;
  struct fixed_write : nop_op {
    int fd = -1;
    void prepare(io_uring_sqe* sqe) override {
      io_uring_prep_write(sqe, fd, "abc", 3, ~0ull);
      sqe->flags |= IOSQE_FIXED_FILE;
    }
  } w;
  w.fd = p.w;
  ctx.start(w);
  ctx.run();
  // io_uring: no file registered under that index (EBADF); the fallback: not supported (EINVAL).
  EXPECT_EQ(w.result_seen, GetParam() == backend_kind::fallback ? -EINVAL : -EBADF);
  ASSERT_EQ(::fcntl(p.r, F_SETFL, O_NONBLOCK), 0);
  char buf[4];
  EXPECT_EQ(::read(p.r, buf, sizeof buf), -1) << "bytes reached the fd named by the index";
}

// io_uring runs a splice in an io-wq worker, which blocks on a blocking socket; a cancel
// interrupts it and the kernel posts -ERESTARTSYS (512), a code userspace has no name for. The
// operation gets -EINTR (what io_uring gives interrupted reads and writes) or, when the cancel
// came first, -ECANCELED; the fallback's splice waits for readiness and gets -ECANCELED.
TEST_P(Backend, CancelledSpliceFromABlockingSocketEndsWithAnErrnoUserspaceKnows) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
  pipe_fds p;
  splice_op s;
  s.in = sv[1];
  s.off_in = -1;
  s.out = p.w;
  s.len = 4096;
  ctx.start(s);
  ctx.poll();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the worker blocks in it
  ctx.poll();
  ASSERT_TRUE(s.in_flight());  // nothing to read
  ctx.cancel(s);
  ctx.run();
  EXPECT_TRUE(s.res == -EINTR || s.res == -ECANCELED) << s.res;
  ::close(sv[0]);
  ::close(sv[1]);
}

// A SEND_ZC's ending as the kernel gives it: `error` with F_MORE, then the notification.
void expect_error_then_notification(const send_zc_op& s, int error) {
  ASSERT_EQ(s.cqes.size(), 1u);
  EXPECT_EQ(s.cqes[0].first, error);
  EXPECT_TRUE(s.cqes[0].second & IORING_CQE_F_MORE);
  EXPECT_EQ(s.final_res, error);
  EXPECT_TRUE(s.final_flags & IORING_CQE_F_NOTIF);
}

// A SEND_ZC on a loopback socket whose send buffer is full: once started, it waits for room.
struct waiting_send_zc {
  int sv[2] = {-1, -1};
  send_zc_op op;
  waiting_send_zc() {
    EXPECT_TRUE(connected_loopback_pair(sv));
    const std::string fill(1 << 16, 'f');
    while (::send(sv[0], fill.data(), fill.size(), MSG_DONTWAIT) > 0) {
    }
    op.fd = sv[0];
    op.data = "zero-copy";
    op.msg_flags = MSG_NOSIGNAL;
  }
  ~waiting_send_zc() {
    ::close(sv[0]);
    ::close(sv[1]);
  }
};

// The kernel answers a SEND_ZC it issued with two CQEs even when the send fails: the error
// with F_MORE, then the notification. An operation that frees its buffer at F_NOTIF must see it
// on the fallback too.
TEST_P(Backend, FailedSendZcDeliversTheErrorThenTheNotification) {
  if (!ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  int sv[2];
  ASSERT_TRUE(connected_loopback_pair(sv));
  ASSERT_EQ(::shutdown(sv[0], SHUT_WR), 0);
  send_zc_op s;
  s.fd = sv[0];
  s.data = "zero-copy";
  s.msg_flags = MSG_NOSIGNAL;
  ctx.start(s);
  ctx.run();
  expect_error_then_notification(s, -EPIPE);
  ::close(sv[0]);
  ::close(sv[1]);
}

TEST_P(Backend, CancelledSendZcDeliversEcanceledThenTheNotification) {
  if (!ctx.probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
  waiting_send_zc w;
  ctx.start(w.op);
  ctx.poll();
  ctx.poll();
  ASSERT_TRUE(w.op.in_flight());  // waits for room
  ctx.cancel(w.op);
  ctx.run();
  expect_error_then_notification(w.op, -ECANCELED);
}

// A host that stopped its io_context before tearing pagewire down runs no more handlers: the
// fallback completes what is left itself (abandon). A SEND_ZC that waited for room ends as a
// cancelled one does on io_uring, -ECANCELED with F_MORE and then the notification, so an
// operation that frees its buffer at F_NOTIF frees it here too.
TEST(FallbackTeardown, SendZcLeftWaitingWhenTheHostStoppedEndsWithItsNotification) {
  waiting_send_zc w;
  boost::asio::io_context io;
  {
    asio_host host(io, testing::options_for(backend_kind::fallback));
    if (!host.get().probe().send_zc) GTEST_SKIP() << "no SEND_ZC";
    host.get().start(w.op);
    io.poll();
    io.poll();
    ASSERT_TRUE(w.op.in_flight());  // waits for room
    io.stop();
  }
  expect_error_then_notification(w.op, -ECANCELED);
}

INSTANTIATE_TEST_SUITE_P(Both, Backend,
                         ::testing::Values(backend_kind::io_uring, backend_kind::fallback),
                         [](const auto& info) { return testing::backend_name(info.param); });

}  // namespace
}  // namespace pagewire::runtime
