#include <cerrno>
#include <sys/socket.h>

#include <pagewire/apps/http/http_date.h>
#include <pagewire/apps/sendfile_server/session.h>
#include <pagewire/apps/sendfile_server/worker.h>
#include <pagewire/filters/codec.h>
#include <pagewire/filters/error.h>
#include <pagewire/filters/plain_transport.h>
#include <pagewire/runtime/coarse_clock.h>

namespace pagewire::sendfile_server {
namespace {

http::parser_limits limits() {
  return http::parser_limits{};  // 16 KiB head, 100 fields, 1 MiB discarded body
}

}  // namespace

session::session(worker& w, int fd, std::string remote)
    : w_(w),
      conn_(w.ctx(), fd, w.net_options(), w.pipes(), w.recv_ring()),
      parser_(limits()),
      remote_(std::move(remote)) {
  tls_reader_.self = this;
  tls_reader_.fn = &session::on_tls_read;
  tls_read_task_.self = this;
  tls_read_task_.fn = &session::run_tls_read;
  if (const auto& ctx = w.tls()) {
    filters::tls_layer_options o;
    o.handshake_timeout =
        std::chrono::duration_cast<std::chrono::milliseconds>(w.options().header_timeout);
    std::error_code ec;
    tls_ = std::make_unique<filters::tls_layer>(
        std::make_unique<filters::plain_transport>(conn_, w.page_pool()), ctx, o, w.page_pool(),
        w.page_cache(), ec);
    if (ec) tls_.reset();  // start() resets the connection
  }
}

void session::start() {
  if (w_.tls() && !tls_) {
    worker_counters::bump(w_.counters().tls_handshake_failures);
    close(close_mode::reset);
    return;
  }
  receive();
}

void session::receive() {
  if (receiving_ || closing_ || close_after_) return;
  receiving_ = true;
  // A new connection waits for its first request as for a head (nginx's
  // client_header_timeout): only a connection that has been served idles for idle_timeout.
  const bool head = parser_.started() || !served_;
  conn_.set_phase(head ? net::phase::header : net::phase::idle);
  // The wait as a whole is bounded too: a head within header_timeout of its first byte, an
  // idle gap within idle_timeout, however the bytes trickle (over TLS, records that carry no
  // request byte, such as KeyUpdates, complete receives without ending this read).
  const auto& o = w_.options();
  conn_.set_receive_deadline(parser_.started() ? head_started_ + o.header_timeout
                                               : runtime::coarse_now() +
                                                     (head ? o.header_timeout : o.idle_timeout));
  if (tls_) {
    tls_read_inline_ = true;
    tls_->start_read(tls_reader_);
    tls_read_inline_ = false;
    return;
  }
  conn_.async_receive(
      [this](std::error_code ec, net::received r) { on_receive(ec, std::move(r)); });
}

void session::on_receive(std::error_code ec, net::received r) {
  receiving_ = false;
  conn_.set_receive_deadline(std::chrono::steady_clock::time_point::max());
  if (closing_) return maybe_finish();
  if (ec || r.empty()) {
    if (ec == std::errc::timed_out) worker_counters::bump(w_.counters().timeouts);
    close_after_ = true;  // end of stream or error: send what is pending, then close
    if (!sending_ && pending_.empty()) close();
    return;
  }
  const auto bytes = r.bytes();
  handle_block({reinterpret_cast<const char*>(bytes.data()), bytes.size()});
  r.release();
  after_input();
}

// The plaintext is read in place: its chain goes back to the TLS layer, which reuses the storage.
void session::on_tls_read(filters::read_waiter* w, std::error_code ec, fs::chain&& plaintext) {
  session* self = static_cast<tls_reader*>(w)->self;
  if (!self->tls_read_inline_) return self->on_tls_receive(ec, plaintext);
  self->tls_read_ec_ = ec;
  self->tls_read_data_.swap(plaintext);  // empty: run_tls_read swapped the last one out
  self->conn_.get_context().defer(self->tls_read_task_);
}

// receiving_ keeps the session alive until this runs; the worker stops its context only
// after the last session is gone, so the task is never discarded.
void session::run_tls_read(runtime::task_node* t, bool invoke) {
  if (!invoke) return;
  session* self = static_cast<tls_read_task*>(t)->self;
  fs::chain data;  // on_tls_receive may end the session: nothing of it is touched after
  data.swap(self->tls_read_data_);
  self->on_tls_receive(self->tls_read_ec_, data);
}

void session::on_tls_receive(std::error_code ec, const fs::chain& plaintext) {
  receiving_ = false;
  conn_.set_receive_deadline(std::chrono::steady_clock::time_point::max());
  if (closing_) return maybe_finish();
  if (!tls_counted_ && (ec || tls_->established())) {
    tls_counted_ = true;
    auto& c = w_.counters();
    if (!tls_->established()) {
      worker_counters::bump(c.tls_handshake_failures);
      // The handshake's own timeout, or the first request's deadline below it (both are
      // header_timeout from the accept).
      if (ec == filters::errc::handshake_timeout || ec == std::errc::timed_out) {
        worker_counters::bump(c.timeouts);
      }
    } else if (tls_->stats().path == filters::tls_path::ktls) {
      worker_counters::bump(c.tls_handshakes_ktls);
    } else {
      worker_counters::bump(c.tls_handshakes_userspace);
    }
    if (tls_->established() && tls_->engine().session_reused()) {
      worker_counters::bump(c.tls_handshakes_resumed);
    }
  }
  if (ec) {
    if (ec == filters::errc::plain_http) return answer_plain_http();
    if (!tls_->established()) return close(close_mode::reset);  // not TLS, or too slow
    if (ec == std::errc::timed_out) worker_counters::bump(w_.counters().timeouts);
    tls_input_ended_ = true;
    close_after_ = true;  // end of stream or error: send what is pending, then close
    if (!sending_ && pending_.empty()) close();
    return;
  }
  for (const fs::segment& seg : plaintext.segments()) {
    const auto bytes = std::get<fs::slice>(seg).bytes();  // a read yields memory only
    const std::span<const char> in{reinterpret_cast<const char*>(bytes.data()), bytes.size()};
    if (compressing_) {
      leftover_.append(in.data(), in.size());  // behind the request being compressed
    } else {
      handle_block(in);
    }
  }
  after_input();
}

// A plain-HTTP client on the TLS port (OpenSSL read a request line where a ClientHello should
// be): one 400 in plain text that says so, as nginx answers, then a FIN. The rest of its
// request is dropped by the lingering close, so no reset destroys the answer.
void session::answer_plain_http() {
  fs::chain answer;
  const response_summary sum = w_.responses().respond_bad_request(
      "This port speaks HTTPS: ask for https:// URLs here.\n", answer);
  log(nullptr, sum);
  sending_ = true;
  peer_may_send_ = true;  // the rest of its request
  conn_.async_send(std::move(answer), [this](std::error_code, std::uint64_t bytes) {
    sending_ = false;
    worker_counters::bump(w_.counters().bytes_sent, bytes);
    if (closing_) return maybe_finish();
    close(close_mode::cut);
  });
}

void session::after_input() {
  if (compressing_) return;  // resume_after_compression() goes on
  if (!pending_.empty()) {
    flush();
  } else if (close_after_) {
    if (!sending_) close();
  } else if (!sending_) {
    receive();
  }
}

void session::handle_block(std::span<const char> in) {
  while (!in.empty() && !close_after_) {
    if (!parser_.started()) head_started_ = runtime::coarse_now();
    const http::parse_result res = parser_.feed(in);
    if (res.state == http::parse_state::need_more) {
      if (parser_.take_continue()) {  // RFC 9110 §10.1.1: the client waits for it
        static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
        pending_.append(fs::slice::from_static(kContinue.data(), kContinue.size()));
      }
      if (runtime::coarse_now() - head_started_ > w_.options().header_timeout) {
        worker_counters::bump(w_.counters().timeouts);
        close_after_ = true;  // a head trickled in for too long
      }
      return;
    }
    if (res.state == http::parse_state::error) {
      const auto sum =
          w_.responses().respond_error(parser_.error_status(), http::http_version::http11,
                                       parser_.error_method(), false, pending_);
      log(nullptr, sum);
      close_after_ = true;
      peer_may_send_ = true;  // the rest of the refused request may still be on its way
      return;
    }
    served_ = true;
    const bool done = handle_request(parser_.get());
    in = in.subspan(res.consumed);
    if (!done) {
      leftover_.assign(in.data(), in.size());  // request bytes, not body bytes
      return;                                  // parser_ is reset once the job is done
    }
    parser_.reset();
  }
}

bool session::handle_request(const http::request& req) {
  const response_summary sum = w_.responses().respond(req, pending_, &job_);
  if (sum.siblings_checked | sum.siblings_known_absent) {
    worker_counters::bump(w_.counters().siblings_absent_checked, sum.siblings_checked);
    worker_counters::bump(w_.counters().siblings_absent_cached, sum.siblings_known_absent);
  }
  if (sum.needs_compression) {
    fs::chain cached;
    const auto key = compressed_cache::key_of(*job_.file, job_.response.coding);
    if (!w_.compressed().find(key, cached)) {
      worker_counters::bump(w_.counters().compressed_cache_misses);
      if (w_.admit_compression(job_.file->size())) {
        start_compression();
        return false;
      }
      // Other compressions hold the budget: identity (or a sibling), as when one fails.
      worker_counters::bump(w_.counters().compress_refused);
      job_ = compress_job{};
      finish_request(req, w_.responses().respond(req, pending_, nullptr));
      return true;
    }
    worker_counters::bump(w_.counters().compressed_cache_hits);
    const response_summary done =
        w_.responses().finish_compressed(job_, std::move(cached), pending_);
    job_ = compress_job{};
    finish_request(req, done);
    return true;
  }
  finish_request(req, sum);
  return true;
}

void session::finish_request(const http::request& req, const response_summary& sum) {
  log(&req, sum);
  w_.count_request();
  worker_counters::bump(w_.counters().body_bytes, sum.body_bytes);
  if (sum.from_page_cache) worker_counters::bump(w_.counters().page_cache_hits);
  if (sum.page_cache_miss) worker_counters::bump(w_.counters().page_cache_misses);
  if (!sum.keep_alive || w_.stopping()) close_after(req);
}

void session::close_after(const http::request& req) {
  close_after_ = true;
  // A client that did not ask to close may already be sending its next request.
  if (req.keep_alive) peer_may_send_ = true;
}

void session::start_compression() {
  compressing_ = true;
  fs::page_cache* cache = w_.page_cache();
  auto file = job_.file;
  const std::uint64_t size = file->size();
  cache->async_read(std::move(file), 0, size,
                    [this](std::error_code ec, fs::chain c) { on_compressed(ec, std::move(c)); });
}

void session::on_compressed(std::error_code ec, fs::chain identity) {
  w_.end_compression(job_.file->size());
  fs::chain body;
  if (!ec) {
    filters::encoder_options eo;
    eo.kind = job_.response.coding == http::content_coding::zstd ? filters::coding::zstd
                                                                 : filters::coding::gzip;
    ec = filters::compress(identity, eo, w_.page_pool(), body);
    if (!ec) {
      w_.compressed().insert(compressed_cache::key_of(*job_.file, job_.response.coding), body);
    }
  }
  const http::request& req = parser_.get();
  response_summary sum;
  if (ec) {  // an exhausted page pool, or a read error: answer without compressing
    worker_counters::bump(w_.counters().compress_failures);
    sum = w_.responses().respond(req, pending_, nullptr);
  } else {
    sum = w_.responses().finish_compressed(job_, std::move(body), pending_);
  }
  finish_request(req, sum);
  job_ = compress_job{};
  compressing_ = false;
  if (closing_) return maybe_finish();  // closed while compressing: nothing more to send
  parser_.reset();
  resume_after_compression();
}

void session::resume_after_compression() {
  std::string rest;
  rest.swap(leftover_);
  if (!rest.empty() && !close_after_) handle_block({rest.data(), rest.size()});
  after_input();
}

void session::log(const http::request* req, const response_summary& sum) {
  auto* buf = w_.access_log();
  if (!buf) return;
  http::access_log_entry e;
  e.remote_addr = remote_;
  e.time = http::coarse_now_seconds();
  e.status = http::code_of(sum.status);
  e.bytes_sent = sum.body_bytes;
  if (req) {
    e.request_line = req->request_line;
    e.referer = req->referer;
    e.user_agent = req->user_agent;
  }
  buf->append(e);
}

void session::flush() {
  if (sending_ || pending_.empty()) return;
  sending_ = true;
  conn_.set_phase(net::phase::body);
  if (tls_) {
    worker_counters::bump(w_.counters().path_tls);
    tls_write_.reset();
    tls_write_.data.swap(pending_);  // pending_ gets the storage the last write handed back
    tls_->start_write(tls_write_);   // completes from the loop, never inside start_write
    return;
  }
  // The transmit leaves in pending_ the storage of its previous message.
  conn_.async_send(std::move(pending_),
                   [this](std::error_code ec, std::uint64_t bytes) { on_sent(ec, bytes); });
  pending_.clear();
}

void session::on_tls_written(void* self, std::error_code ec, std::uint64_t bytes) {
  static_cast<session*>(self)->on_sent(ec, bytes);
}

void session::on_sent(std::error_code ec, std::uint64_t bytes) {
  sending_ = false;
  worker_counters::bump(w_.counters().bytes_sent, bytes);
  if (w_.options().stats) count_paths();
  if (closing_) return maybe_finish();
  if (ec) {
    // The file ended before its Content-Length: ENODATA from the splice pipe, errc::truncated
    // from a layer that read it (TLS).
    if (ec.value() == ENODATA || ec == filters::errc::truncated) {
      w_.note_truncated();
      close(close_mode::cut);
      return;
    }
    if (ec == std::errc::timed_out) {
      worker_counters::bump(w_.counters().timeouts);
    } else if (ec.value() != ECANCELED) {
      worker_counters::bump(w_.counters().send_errors);
    }
    close(close_mode::reset);
    return;
  }
  if (!pending_.empty()) {
    flush();
  } else if (close_after_) {
    close();
  } else {
    receive();
  }
}

void session::count_paths() {
  const net::transmit_stats now = conn_.send_stats();
  auto& c = w_.counters();
  auto delta = [&](net::send_path p) {
    const auto i = static_cast<std::size_t>(p);
    const std::uint64_t d = now.submissions[i] - seen_.submissions[i];
    return d;
  };
  worker_counters::bump(c.path_gather, delta(net::send_path::gather));
  worker_counters::bump(c.path_send_zc, delta(net::send_path::send_zc));
  worker_counters::bump(c.path_splice, delta(net::send_path::splice));
  worker_counters::bump(c.path_sendfile, delta(net::send_path::sendfile));
  worker_counters::bump(c.path_fallback_copy, delta(net::send_path::fallback));
  worker_counters::bump(c.tx_inline_sends, now.inline_sends - seen_.inline_sends);
  worker_counters::bump(c.tx_yields, now.yields - seen_.yields);
  worker_counters::bump(c.tx_top_ups, now.top_ups - seen_.top_ups);
  worker_counters::bump(c.tx_short_sends, now.short_sends - seen_.short_sends);
  seen_ = now;
  w_.mirror_pipe_stats();
}

void session::stop_gracefully() {
  if (closing_) return;
  if (!sending_ && !compressing_ && pending_.empty()) {  // idle or mid-head: nothing owed
    close_after_ = true;
    closing_idle_ = true;
    close();
    return;
  }
  if (!close_after_) peer_may_send_ = true;  // what is in flight let it keep the connection
  close_after_ = true;
}

void session::abort() {
  if (shutting_down_) tls_->cancel();  // a close_notify the peer does not take
  if (conn_.lingering()) conn_.async_close([](std::error_code) {});  // cut it short
  close(close_mode::reset);
}

void session::close(close_mode mode) {
  if (closing_) return;
  closing_ = true;
  if (mode == close_mode::reset) {
    // The peer stopped reading (or we give up on it): drop what the socket still holds
    // instead of trickling it out for minutes after the session is gone (RST on close).
    const linger lg{1, 0};
    ::setsockopt(conn_.fd(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  } else if (tls_ && tls_->established()) {
    // graceful: close_notify, then FIN. cut: the records sealed before the file ended, then
    // FIN (the layer sends no close_notify after a truncated write). Bounded by the send
    // timeout.
    shutting_down_ = true;
    tls_->shutdown([this, mode](std::error_code) {
      shutting_down_ = false;
      close_connection(mode);
    });
    return;
  }
  close_connection(mode);
}

void session::close_connection(close_mode mode) {
  auto done = [this](std::error_code) {
    closed_ = true;
    maybe_finish();
  };
  // After a response the client may still be sending (pipelined requests, a body we did not
  // read): a plain close would then reset the connection and cut what it has not yet received.
  // A TLS client sends close_notify once it has what it asked for (RFC 8446 6.1), so after a
  // response that may be on its way too.
  const bool peer_owes_close_notify =
      tls_ && tls_->established() && !tls_input_ended_ && !closing_idle_;
  if (mode == close_mode::reset) {
    conn_.async_close(done);
  } else {
    conn_.async_lingering_close(peer_may_send_ || peer_owes_close_notify
                                    ? net::linger_when::always
                                    : net::linger_when::input_waiting,
                                done);
    if (conn_.lingering()) worker_counters::bump(w_.counters().lingering_closes);
  }
}

void session::maybe_finish() {
  if (!closed_ || compressing_ || receiving_ || sending_ || shutting_down_) return;
  w_.on_session_closed(this);  // destroys this
}

}  // namespace pagewire::sendfile_server
