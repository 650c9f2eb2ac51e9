#include <algorithm>
#include <cstring>
#include <poll.h>

#include <pagewire/filters/error.h>
#include <pagewire/filters/ktls.h>
#include <pagewire/filters/tls_layer.h>
#include <pagewire/fs/stats.h>

namespace pagewire::filters {

/// The control record's request. It outlives the layer when the layer is destroyed while
/// the record is still below (ctl_busy_): the transport completes it later (cancelled by
/// the connection's close, or sent), and it then deletes itself.
struct tls_layer::control_request final : write_request {
  tls_layer* self = nullptr;
  void complete(int result, unsigned) override {
    if (!self) {
      delete this;
      return;
    }
    tls_layer::on_control_sent(self, final_error(result), bytes);
  }
};

tls_layer::tls_layer(std::unique_ptr<stream> lower, std::shared_ptr<tls_context> ctx,
                     const tls_layer_options& options, fs::page_pool& pool, fs::page_cache* cache,
                     std::error_code& ec)
    : trip_layer(std::move(lower)),
      options_(options),
      cache_(cache),
      raw_lower_(dynamic_cast<plain_transport*>(lower_.get())),
      decision_(decide_ktls(options.ktls.probe ? *options.ktls.probe : probe_ktls(),
                            ctx && ctx->options().enable_ktls, raw_lower_ != nullptr)),
      engine_(std::move(ctx), pool, ec, decision_.try_ktls ? raw_lower_->connection().fd() : -1),
      timer_(context()),
      ctl_(new control_request),
      rout_(pool) {
  if (!ec && (options_.piece_bytes == 0 || options_.read_output_limit == 0)) {
    ec = std::make_error_code(std::errc::invalid_argument);
  }
  // Userspace until OpenSSL confirms kTLS after a socket-BIO handshake (settle_path).
  stats_.path = tls_path::userspace;
  stats_.ktls_reason = decision_.reason;
  ctl_->self = this;
  stats_.ktls_attempted = engine_.on_socket();
  for (socket_wait* w : {&rwait_, &wwait_}) {
    w->self = this;
    w->fd = raw_lower_ ? raw_lower_->connection().fd() : -1;
  }
  hs_reader_.self = this;
  hs_reader_.fn = &tls_layer::on_hs_read;
  reader_.self = this;
  reader_.fn = &tls_layer::on_lower_read;
  raw_reader_.self = this;
  raw_reader_.fn = &tls_layer::on_raw_read;
}

tls_layer::~tls_layer() {
  if (ctl_busy_) {
    ctl_->self = nullptr;  // orphaned: deletes itself on completion
  } else {
    delete ctl_;
  }
}

tls_stats tls_layer::stats() const {
  tls_stats s = stats_;
  const sealer_stats& k = engine_.sealer();
  s.record_sealer = k.active;
  s.record_sealer_reason = k.reason;
  s.key_updates_sent = k.key_updates_sent;
  s.peer_key_update_requests = k.peer_key_update_requests;
  s.openssl_writes_after_takeover = k.openssl_writes_after_takeover;
  s.alerts_resealed = k.alerts_resealed;
  return s;
}

std::string tls_layer::describe() const {
  return std::string(stats_.path == tls_path::ktls ? "tls(ktls)>" : "tls(userspace)>") +
         lower_->describe();
}

// ---- handshake -------------------------------------------------------------------------

void tls_layer::start_handshake(done_waiter& w) {
  if (state_ == state::established) return w.fn(&w, {});
  if (state_ == state::failed) return w.fn(&w, hs_error_);
  if (hw_) return w.fn(&w, errc::busy);
  hw_ = &w;
  begin_handshake();
}

void tls_layer::begin_handshake() {
  if (state_ != state::idle) return;
  state_ = state::handshaking;
  if (options_.handshake_timeout.count() > 0) {
    timer_.expires_after(options_.handshake_timeout);
    timer_.async_wait([this, alive = std::weak_ptr<char>(alive_)](std::error_code ec) {
      if (ec || alive.expired() || state_ != state::handshaking) return;
      timed_out_ = true;
      lower_->cancel();  // the read (or write) in flight completes with ECANCELED
    });
  }
  hs_step();
}

void tls_layer::hs_step() {
  hs_error_.clear();
  hs_status_ = engine_.handshake(hs_error_);
  if (engine_.output().pending() > 0) return send_control(after_control::handshake);
  hs_continue();
}

void tls_layer::hs_continue() {
  // The timer fired while a flight's send was completing: its cancel found nothing in flight,
  // so nothing else will end a handshake that still waits for the peer.
  if (timed_out_ && hs_status_ != tls_engine::status::ok) {
    return hs_done(errc::handshake_timeout);
  }
  switch (hs_status_) {
    case tls_engine::status::ok:
      return hs_done({});
    case tls_engine::status::want_read:
      if (engine_.on_socket()) return wait_socket(rwait_, POLLIN, wait_for::handshake);
      if (lower_eof_) return hs_done(errc::tls_handshake);
      return read_below(true);
    case tls_engine::status::want_write:
      if (engine_.on_socket()) return wait_socket(rwait_, POLLOUT, wait_for::handshake);
      return hs_done(hs_error_ ? hs_error_ : make_error_code(errc::tls_handshake));
    case tls_engine::status::closed:
      return hs_done(errc::tls_handshake);
    default:
      return hs_done(hs_error_ ? hs_error_ : make_error_code(errc::tls_handshake));
  }
}

void tls_layer::read_below(bool handshake) {
  if (raw_lower_) {
    raw_reader_.handshake = handshake;
    return raw_lower_->start_read_raw(raw_reader_);
  }
  lower_->start_read(handshake ? hs_reader_ : reader_);
}

void tls_layer::on_raw_read(raw_read_waiter* w, std::error_code ec, net::received data) {
  auto* r = static_cast<raw_reader*>(w);
  if (!ec) r->self->engine_.feed(std::move(data));
  if (r->handshake) return r->self->hs_input(ec);
  r->self->data_input(ec);
}

void tls_layer::on_hs_read(read_waiter* w, std::error_code ec, fs::chain&& data) {
  tls_layer* self = static_cast<reader*>(w)->self;
  if (!ec) self->engine_.feed(std::move(data));
  self->hs_input(ec);
}

// The bytes (already fed) or the error of a read below during the handshake.
void tls_layer::hs_input(std::error_code ec) {
  if (timed_out_) return hs_done(errc::handshake_timeout);
  if (ec == errc::eof) {
    lower_eof_ = true;
    engine_.feed_eof();
  } else if (ec) {
    return hs_done(ec);
  }
  hs_step();
}

void tls_layer::hs_done(std::error_code ec) {
  if (timed_out_ && ec) ec = errc::handshake_timeout;
  if (!ec && engine_.on_socket()) ec = settle_path();
  timer_.cancel();
  if (ec) {
    state_ = state::failed;
    hs_error_ = ec;
  } else {
    state_ = state::established;
    record_ = engine_.record_plaintext(options_.mss);
    engine_.set_record_plaintext(record_);
    stats_.record_plaintext = record_;
    staging_.resize(record_);
  }
  if (done_waiter* w = hw_) {
    hw_ = nullptr;
    w->fn(w, ec);
  }
  if (write_parked_) {
    write_parked_ = false;
    if (ec) {
      abort_write(ec);
    } else {
      pump();
    }
  }
  if (read_parked_) {
    read_parked_ = false;
    if (ec) {
      deliver_read(ec, {});
    } else {
      read_step();
    }
  }
}

// ---- control records -------------------------------------------------------------------

void tls_layer::send_control(after_control then) {
  if (ctl_busy_) return;  // what is pending goes with the next control or data trip
  ctl_busy_ = true;
  ctl_then_ = then;
  ctl_->data = engine_.output().take();
  ctl_->more = false;
  ctl_->ec.clear();
  ctl_->bytes = 0;
  lower_->start_write(*ctl_);
}

void tls_layer::on_control_sent(void* arg, std::error_code ec, std::uint64_t bytes) {
  auto* self = static_cast<tls_layer*>(arg);
  self->ctl_busy_ = false;
  self->stats_.ciphertext_out += bytes;
  const after_control then = self->ctl_then_;
  self->ctl_then_ = after_control::nothing;
  switch (then) {
    case after_control::handshake:
      if (ec)
        return self->hs_done(self->timed_out_ ? make_error_code(errc::handshake_timeout) : ec);
      return self->hs_continue();
    case after_control::shutdown: {
      done_waiter* w = self->sw_;
      self->sw_ = nullptr;
      if (ec) return w->fn(w, ec);
      return self->lower_->start_shutdown(*w);
    }
    case after_control::nothing:
      if (done_waiter* w = self->sw_) {  // a shutdown waited for this record
        if (self->writes_broken()) {     // the stream ends after it, without close_notify
          self->sw_ = nullptr;
          return self->shutdown_broken(*w);
        }
        if (ec || self->engine_.output().pending() == 0) {
          self->sw_ = nullptr;
          if (ec) return w->fn(w, ec);
          return self->lower_->start_shutdown(*w);
        }
        return self->send_control(after_control::shutdown);  // close_notify goes now
      }
      if (!ec && self->engine_.output().pending() > 0 && !self->wreq_) {
        self->send_control(after_control::nothing);
      }
      return;
  }
}

// ---- write side ------------------------------------------------------------------------

void tls_layer::start_write(write_request& r) {
  if (!begin_write(r)) return;
  if (state_ == state::failed) return abort_write(hs_error_);
  if (state_ != state::established) {
    write_parked_ = true;
    return begin_handshake();
  }
  pump();
}

// ---- the socket-BIO engine (kTLS) ------------------------------------------------------

void tls_layer::wait_socket(socket_wait& w, unsigned events, wait_for then) {
  w.events = events;
  w.then = then;
  context().start(w);
}

void tls_layer::on_socket_ready(wait_for then, int result) {
  const std::error_code ec =
      result < 0 ? std::error_code(-result, std::system_category()) : std::error_code();
  switch (then) {
    case wait_for::handshake:
      if (timed_out_) return hs_done(errc::handshake_timeout);
      if (ec) return hs_done(ec);
      return hs_step();
    case wait_for::read:
      if (ec) read_error_ = ec;
      return read_step();
    case wait_for::write:
      if (ec) return wreq_->finish(context(), ec, in_done_);
      return ktls_pump();
    case wait_for::shutdown:
      if (ec) {
        done_waiter* w = sw_;
        sw_ = nullptr;
        return w->fn(w, ec);
      }
      return ktls_close();
  }
}

// After a socket-BIO handshake: kTLS if OpenSSL confirms it, else back to the memory BIO.
std::error_code tls_layer::settle_path() {
  SSL* ssl = engine_.native();
  const bool send =
      options_.ktls.send_active ? options_.ktls.send_active(ssl) : ktls_send_active(ssl);
  stats_.ktls_reason =
      ktls_confirm_reason(send, ktls_recv_active(ssl), engine_.version(), engine_.cipher());
  if (send) {
    ktls_ = true;
    stats_.path = tls_path::ktls;
    return {};
  }
  if (!engine_.use_memory_bio()) return std::make_error_code(std::errc::not_enough_memory);
  return {};
}

// kTLS writes: memory by SSL_write (the kernel encrypts), file ranges by SSL_sendfile; a full
// socket waits for POLLOUT and retries with the same bytes. The request completes once,
// with the plaintext bytes accepted.
void tls_layer::ktls_pump() {
  while (!in_.empty()) {
    std::error_code ec;
    std::size_t n = 0;
    bool blocked = false;
    if (fs::is_memory(in_.front())) {
      const auto bytes = std::get<fs::slice>(in_.front()).bytes();
      const auto st = engine_.encrypt(bytes, n, ec);
      blocked = st == tls_engine::status::want_write || st == tls_engine::status::want_read;
      if (!blocked && st != tls_engine::status::ok && !ec) ec = errc::tls_protocol;
    } else {
      const fs::file_range& fr = std::get<fs::file_range>(in_.front());
      const auto send_file = options_.ktls.send_file ? options_.ktls.send_file : &ktls_send_file;
      n = send_file(engine_.native(), fr.fd(), static_cast<off_t>(fr.offset()),
                    static_cast<std::size_t>(fr.size()), ec);
      blocked = ec == std::errc::resource_unavailable_try_again;
      if (blocked) ec.clear();
      if (n == 0 && !ec && !blocked && fr.size() > 0) ec = errc::truncated;  // the file shrank
    }
    in_.consume(n);
    in_done_ += n;
    if (ec && !blocked) return wreq_->finish(context(), ec, in_done_);
    if (blocked) return wait_socket(wwait_, POLLOUT, wait_for::write);
  }
  wreq_->finish(context(), {}, in_done_);
}

void tls_layer::ktls_close() {
  std::error_code ec;
  const auto st = engine_.close(ec);
  if (st == tls_engine::status::want_write || st == tls_engine::status::want_read) {
    return wait_socket(wwait_, POLLOUT, wait_for::shutdown);
  }
  done_waiter* w = sw_;
  sw_ = nullptr;
  if (st == tls_engine::status::error) return w->fn(w, ec);
  lower_->start_shutdown(*w);
}

// The next plaintext to offer SSL_write: what a failed/partial SSL_write left in staging
// first (the same bytes again), a whole record's worth of a large slice in place, or
// small slices gathered into staging so that records stay full.
bool tls_layer::next_plaintext(std::span<const std::byte>& span, bool& staged) {
  staged = true;
  if (staged_off_ < staged_) {
    span = std::span<const std::byte>(staging_).subspan(staged_off_, staged_ - staged_off_);
    return true;
  }
  // Neighbouring slices that sit back to back in memory (pool pages allocated in sequence,
  // page-cache pages read in one go) form one span without a copy.
  std::size_t slices = 0;
  const std::span<const std::byte> run = in_.front_run(record_, &slices);
  const auto& segs = in_.segments();
  const bool alone = slices == segs.size() || !fs::is_memory(segs[slices]);
  if (run.size() >= record_ || alone) {
    staged = false;
    span = run;
    if (slices > 1) stats_.coalesced += span.size();
    return true;
  }
  std::size_t n = 0;
  while (n < record_ && !in_.empty() && fs::is_memory(in_.front())) {
    const fs::slice& f = std::get<fs::slice>(in_.front());
    const std::size_t take = std::min(f.size(), record_ - n);
    fs::stats::copy(staging_.data() + n, f.data(), take, fs::copy_reason::gather);
    in_.consume(take);
    n += take;
  }
  stats_.gathered += n;
  staged_ = n;
  staged_off_ = 0;
  span = std::span<const std::byte>(staging_).first(n);
  return true;
}

// With the record sealer: the next record's plaintext as pieces of the memory slices at the
// front (slices back to back in memory make one piece), up to a full record or the end of the
// memory run, so the record is sealed without gathering. False when the slices are so many and
// small that they would need more than record_pieces::kMax pieces: next_plaintext gathers them.
bool tls_layer::next_pieces(record_pieces& p) const {
  for (const auto& seg : in_.segments()) {
    if (p.total == record_ || !fs::is_memory(seg)) break;
    const fs::slice& s = std::get<fs::slice>(seg);
    const std::size_t take = std::min(s.size(), record_ - p.total);
    std::span<const std::byte>* last = p.count > 0 ? &p.spans[p.count - 1] : nullptr;
    if (last && last->data() + last->size() == s.data()) {
      *last = std::span<const std::byte>(last->data(), last->size() + take);
    } else {
      if (p.count == record_pieces::kMax) return false;
      p.spans[p.count++] = std::span<const std::byte>(s.data(), take);
    }
    ++p.slices;
    p.total += take;
  }
  return p.total > 0;
}

void tls_layer::pump() {
  if (ktls_) return ktls_pump();
  page_writer& out = engine_.output();
  for (;;) {
    if (out.pending() >= options_.piece_bytes + options_.piece_bytes / 8 ||
        trip_in_ >= options_.piece_bytes) {
      return send_trip(out, false);
    }
    if (in_.empty() && staged_off_ == staged_) return send_trip(out, true);
    if (staged_off_ == staged_ && !fs::is_memory(in_.front())) {
      return read_file_front(cache_, options_.piece_bytes);  // pump() continues
    }
    bool staged = false;
    std::size_t accepted = 0;
    std::error_code ec;
    tls_engine::status st;
    record_pieces pieces;
    if (engine_.seals_in_place() && staged_off_ == staged_ && next_pieces(pieces)) {
      st = engine_.encrypt_record({pieces.spans.data(), pieces.count}, ec);
      if (st == tls_engine::status::ok) {
        accepted = pieces.total;
        if (pieces.slices > 1) stats_.coalesced += accepted;
      }
    } else {
      std::span<const std::byte> span;
      next_plaintext(span, staged);
      st = engine_.encrypt(span, accepted, ec);
    }
    if (staged) {
      staged_off_ += accepted;
      if (staged_off_ == staged_) staged_ = staged_off_ = 0;
    } else {
      in_.consume(accepted);
    }
    trip_in_ += accepted;
    if (st == tls_engine::status::want_write) {
      if (out.pending() > 0) return send_trip(out, false);  // retry the same bytes after
      // OpenSSL keeps the record it could not write for a retry with these bytes: another
      // write's bytes would go out as this one's. The sealer seals a record whole or not at all.
      if (!engine_.seals_in_place()) break_writes(errc::pool_exhausted);
      return abort_write(errc::pool_exhausted);
    }
    if (st != tls_engine::status::ok)
      return abort_write(ec ? ec : make_error_code(errc::tls_protocol));
  }
}

// Ciphertext bytes below -> plaintext bytes of this write.
runtime::action_result tls_layer::on_trip_done(int result) {
  write_request& r = *wreq_;
  if (result < 0 && !r.ec) r.ec = std::error_code(-result, std::system_category());
  if (ktls_) {  // one completion, r.bytes already the plaintext accepted
    // The file shrank under the write: a message cut short, as on the userspace path below.
    if (r.ec == errc::truncated) break_writes(r.ec);
    stats_.plaintext_out += r.bytes;
    in_.clear();
    wreq_ = nullptr;
    return runtime::action_result::done;
  }
  if (!aborting_) stats_.ciphertext_out += r.bytes;
  if (aborting_ || r.ec || last_trip_) {
    // A trip this layer ended itself (abort_write: a file read failed, no page) sent nothing
    // below yet: the records of the bytes it took are in the engine's output, sealed under
    // their sequence numbers. They go out now, and the write reports their bytes.
    const bool records_go = !r.ec || aborting_;
    if (records_go) in_done_ += trip_in_;
    // The file shrank under the write: what was sent is a message cut short, which no
    // close_notify may present as whole. The records sealed before go out; nothing after.
    if (aborting_ && r.ec == errc::truncated) break_writes(r.ec);
    stats_.plaintext_out += in_done_;
    r.bytes = in_done_;
    in_.clear();
    staged_ = staged_off_ = 0;
    wreq_ = nullptr;
    if (records_go && engine_.output().pending() > 0) send_control(after_control::nothing);
    return runtime::action_result::done;
  }
  in_done_ += trip_in_;
  trip_in_ = 0;
  pump();
  return runtime::action_result::keep;
}

// ---- read side -------------------------------------------------------------------------

void tls_layer::start_read(read_waiter& w) {
  if (rw_) return w.fn(&w, errc::busy, {});
  rw_ = &w;
  if (state_ == state::failed) return deliver_read(hs_error_, {});
  if (state_ != state::established) {
    read_parked_ = true;
    return begin_handshake();
  }
  read_step();
}

void tls_layer::read_step() {
  if (peer_closed_) return deliver_read(errc::eof, {});
  if (read_error_) return deliver_read(read_error_, {});
  std::error_code ec;
  const auto st = engine_.decrypt(rout_, options_.read_output_limit, ec);
  // Post-handshake messages (e.g. a KeyUpdate answer) go out now unless a write will carry them.
  if (engine_.output().pending() > 0 && !wreq_) send_control(after_control::nothing);
  if (st == tls_engine::status::closed) peer_closed_ = true;
  if (st == tls_engine::status::error) read_error_ = ec;
  if (st == tls_engine::status::want_write && rout_.pending() == 0) {
    read_error_ = errc::pool_exhausted;
  }
  if (rout_.pending() > 0) {
    stats_.plaintext_in += rout_.pending();
    rout_.take_into(delivered_);  // delivered_'s storage, if the reader left it, is reused
    return deliver_read({}, std::move(delivered_));
  }
  if (peer_closed_) return deliver_read(errc::eof, {});
  if (read_error_) return deliver_read(read_error_, {});
  if (ktls_) return wait_socket(rwait_, POLLIN, wait_for::read);
  if (lower_eof_) return deliver_read(errc::truncated, {});
  read_below(false);
}

void tls_layer::on_lower_read(read_waiter* w, std::error_code ec, fs::chain&& data) {
  tls_layer* self = static_cast<reader*>(w)->self;
  if (!ec) self->engine_.feed(std::move(data));
  self->data_input(ec);
}

// The bytes (already fed) or the error of a read below after the handshake.
void tls_layer::data_input(std::error_code ec) {
  if (ec == errc::eof) {
    lower_eof_ = true;
    engine_.feed_eof();
  } else if (ec) {
    read_error_ = ec;
  }
  read_step();
}

void tls_layer::deliver_read(std::error_code ec, fs::chain&& data) {
  read_waiter* w = rw_;
  rw_ = nullptr;
  w->fn(w, ec, std::move(data));
}

// ---- shutdown --------------------------------------------------------------------------

void tls_layer::start_shutdown(done_waiter& w) {
  if (state_ != state::established) return lower_->start_shutdown(w);
  if (writes_broken()) {  // close_notify would follow that record: the stream just ends
    if (ctl_busy_) {      // after the records sealed before the break, still below
      sw_ = &w;
      return;
    }
    return shutdown_broken(w);
  }
  if (ktls_) {
    sw_ = &w;
    return ktls_close();
  }
  std::error_code ec;
  if (engine_.close(ec) == tls_engine::status::error) return w.fn(&w, ec);
  if (engine_.output().pending() == 0) return lower_->start_shutdown(w);
  sw_ = &w;
  // A control record below: close_notify follows it (on_control_sent), so the shutdown's
  // completion also means no record of ours is still in flight.
  if (!ctl_busy_) send_control(after_control::shutdown);
}

}  // namespace pagewire::filters
