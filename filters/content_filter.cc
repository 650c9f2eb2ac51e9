#include <algorithm>

#include <pagewire/filters/content_filter.h>
#include <pagewire/filters/error.h>

namespace pagewire::filters {

content_filter::content_filter(std::unique_ptr<stream> lower, const content_filter_options& options,
                               fs::page_pool& pool, fs::page_cache* cache, std::error_code& ec)
    : trip_layer(std::move(lower)), options_(options), cache_(cache), wout_(pool), rout_(pool) {
  ec.clear();
  if (options_.piece_bytes == 0 || options_.output_limit == 0 || options_.read_output_limit == 0) {
    ec = std::make_error_code(std::errc::invalid_argument);
    return;
  }
  if (options_.encode && options_.encode->kind != coding::identity) {
    enc_ = make_encoder(*options_.encode, ec);
    if (ec) return;
  }
  if (options_.decode && options_.decode->kind != coding::identity) {
    dec_ = make_decoder(*options_.decode, ec);
    if (ec) enc_.reset();
  }
  lower_reader_.self = this;
  lower_reader_.fn = &content_filter::on_lower_read;
}

content_filter::~content_filter() = default;

std::string content_filter::describe() const {
  std::string s;
  if (enc_) s += coding_name(enc_->kind());
  if (dec_) {
    if (!s.empty()) s += '/';
    s += "decode";
  }
  if (s.empty()) s = "identity";
  return s + ">" + lower_->describe();
}

// ---- write side ------------------------------------------------------------------------

void content_filter::start_write(write_request& r) {
  if (!enc_) return lower_->start_write(r);  // inactive: the chain passes untouched
  if (begin_write(r)) pump();
}

// Encodes until a trip is ready (output limit, piece size, or the end of the input), then
// sends it below. Each pass consumes input, produces output, or leaves.
void content_filter::pump() {
  for (;;) {
    const std::size_t pending = wout_.pending();
    if (pending >= options_.output_limit) return send(false);
    std::size_t consumed = 0;
    bool finished = false;
    if (!in_.empty()) {
      if (trip_in_ >= options_.piece_bytes) return send(false);
      if (!fs::is_memory(in_.front())) {
        return read_file_front(cache_, options_.piece_bytes);  // pump() continues
      }
      // Slices back to back in memory go to the encoder as one span: one deflate or zstd
      // call per run of pages instead of one per page.
      const auto in = in_.front_run(options_.piece_bytes - trip_in_);
      if (auto ec = enc_->encode(in, encoder::flush::none, wout_, options_.output_limit - pending,
                                 consumed, finished)) {
        return abort_write(ec);
      }
      in_.consume(consumed);
      trip_in_ += consumed;
      member_open_ = true;
      continue;
    }
    if (more_) return send(true);  // all input taken; output may lag until the end
    if (auto ec = enc_->encode({}, encoder::flush::end, wout_, options_.output_limit - pending,
                               consumed, finished)) {
      return abort_write(ec);
    }
    if (finished) {
      member_open_ = false;
      return send(true);
    }
  }
}

// Sends what the encoder produced as the next trip below. The peer stands inside a member
// once bytes of one that has not ended went below.
void content_filter::send(bool last) {
  if (wout_.pending() > 0) member_sent_ = member_open_;
  send_trip(wout_, last);
}

// Runs when a trip below finished (or when the write was aborted): maps the bytes below to
// the input this layer consumed, or sends the next trip with the same request (keep).
runtime::action_result content_filter::on_trip_done(int result) {
  write_request& r = *wreq_;
  if (result < 0 && !r.ec) r.ec = std::error_code(-result, std::system_category());
  if (aborting_ || r.ec || last_trip_) {
    r.bytes = r.ec ? in_done_ : in_total_;
    if (r.ec) {
      wout_.take();
      member_open_ = false;
      break_writes(r.ec);  // the member is broken: what it took lost its output
    }
    in_.clear();
    wreq_ = nullptr;
    return runtime::action_result::done;
  }
  in_done_ += trip_in_;
  trip_in_ = 0;
  pump();
  return runtime::action_result::keep;
}

// ---- read side -------------------------------------------------------------------------

void content_filter::start_read(read_waiter& w) {
  if (!dec_) return lower_->start_read(w);
  if (rw_) return w.fn(&w, errc::busy, {});
  rw_ = &w;
  if (read_error_) return deliver_read(read_error_, {});
  decode_step();
}

void content_filter::decode_step() {
  const std::size_t limit = options_.read_output_limit;
  for (;;) {
    std::span<const std::byte> in;
    if (!rin_.empty()) {
      if (!fs::is_memory(rin_.front())) {
        return deliver_read(std::make_error_code(std::errc::invalid_argument), {});
      }
      in = std::get<fs::slice>(rin_.front()).bytes();
    }
    const std::size_t before = rout_.pending();
    std::size_t consumed = 0;
    if (auto ec = dec_->decode(in, rout_, limit - before, consumed)) {
      read_error_ = ec;
      rout_.take();
      return deliver_read(ec, {});
    }
    rin_.consume(consumed);
    if (rout_.pending() >= limit) break;
    if (consumed == 0 && rout_.pending() == before) break;  // needs input
  }
  if (rout_.pending() > 0) {
    rout_.take_into(delivered_);  // delivered_'s storage, if the reader left it, is reused
    return deliver_read({}, std::move(delivered_));
  }
  if (lower_eof_) {
    return deliver_read(dec_->at_boundary() ? errc::eof : errc::truncated, {});
  }
  lower_->start_read(lower_reader_);
}

void content_filter::on_lower_read(read_waiter* w, std::error_code ec, fs::chain&& data) {
  content_filter* self = static_cast<lower_reader*>(w)->self;
  if (ec == errc::eof) {
    self->lower_eof_ = true;
    return self->decode_step();
  }
  if (ec) {
    self->read_error_ = ec;
    return self->deliver_read(ec, {});
  }
  self->rin_.append(std::move(data));
  self->decode_step();
}

void content_filter::deliver_read(std::error_code ec, fs::chain&& data) {
  read_waiter* w = rw_;
  rw_ = nullptr;
  w->fn(w, ec, std::move(data));
}

// ---- shutdown --------------------------------------------------------------------------

void content_filter::start_shutdown(done_waiter& w) {
  if (writes_broken()) {  // no trailer after a broken member: the stream ends inside a member
    // None of it went below (nothing produced yet, or all dropped): the peer stands on a
    // boundary, where the end would read as a clean one. The start of a member goes first.
    if (member_sent_) return shutdown_broken(w);
    wout_.take();
    if (enc_->start_cut_member(wout_)) {
      wout_.take();
      return shutdown_broken(w);  // no page: the end reads as clean (the error still tells)
    }
    member_sent_ = true;
    sw_ = &w;
    trailer_ = std::make_unique<callback_write_request>(&content_filter::on_trailer_sent, this);
    trailer_->data = wout_.take();
    return lower_->start_write(*trailer_);  // on_trailer_sent: shutdown_broken()
  }
  if (!enc_ || !member_open_) return lower_->start_shutdown(w);
  // A message left open (its last write had write_flags::more): end it before the FIN.
  sw_ = &w;
  bool finished = false;
  std::size_t consumed = 0;
  for (int i = 0; i < 1 << 20 && !finished; ++i) {  // bounded: each call produces output
    if (auto ec =
            enc_->encode({}, encoder::flush::end, wout_, ~std::size_t{0}, consumed, finished)) {
      sw_ = nullptr;
      return w.fn(&w, ec);
    }
  }
  member_open_ = false;
  member_sent_ = false;
  trailer_ = std::make_unique<callback_write_request>(&content_filter::on_trailer_sent, this);
  trailer_->data = wout_.take();
  lower_->start_write(*trailer_);
}

void content_filter::on_trailer_sent(void* arg, std::error_code ec, std::uint64_t) {
  auto* self = static_cast<content_filter*>(arg);
  done_waiter* w = self->sw_;
  self->sw_ = nullptr;
  if (self->writes_broken()) return self->shutdown_broken(*w);  // whatever the write answered
  if (ec) return w->fn(w, ec);
  self->lower_->start_shutdown(*w);
}

}  // namespace pagewire::filters
