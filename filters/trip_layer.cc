#include <algorithm>

#include <pagewire/filters/error.h>
#include <pagewire/filters/trip_layer.h>

namespace pagewire::filters {

trip_layer::trip_layer(std::unique_ptr<stream> lower) noexcept : layer(std::move(lower)) {
  action_.self = this;
  file_reader_.self = this;
  file_reader_.fn = &trip_layer::on_file_pages;
  broken_shutdown_.self = this;
  broken_shutdown_.fn = [](done_waiter* w, std::error_code) {
    auto* b = static_cast<broken_shutdown*>(w);
    b->app->fn(b->app, b->self->write_error_);
  };
}

bool trip_layer::begin_write(write_request& r) {
  if (wreq_) {
    r.finish(context(), errc::busy, 0);
    return false;
  }
  if (write_error_) {
    r.finish(context(), write_error_, 0);
    return false;
  }
  wreq_ = &r;
  in_.clear();
  in_.swap(r.data);  // r.data gets in_'s storage: it carries this layer's output below
  in_total_ = in_.size();
  in_done_ = 0;
  trip_in_ = 0;
  more_ = r.more;
  aborting_ = false;
  r.push_action(action_);
  return true;
}

void trip_layer::read_file_front(fs::page_cache* cache, std::uint64_t max) {
  if (!cache) return abort_write(errc::no_page_cache);
  const fs::file_range& fr = std::get<fs::file_range>(in_.front());
  file_want_ = std::min(fr.size(), max);
  cache->read_range(fr.handle(), fr.offset(), file_want_, file_reader_);
}

void trip_layer::on_file_pages(fs::detail::range_waiter* w, std::error_code ec, fs::chain pages) {
  trip_layer* self = static_cast<file_reader*>(w)->self;
  if (ec) return self->abort_write(ec);
  if (pages.size() != self->file_want_) {  // the file shrank
    if (pages.empty()) return self->abort_write(errc::truncated);
    self->file_want_ = pages.size();  // the bytes that exist go; the next read finds the end
  }
  self->in_.consume(self->file_want_);
  pages.append(std::move(self->in_));
  self->in_ = std::move(pages);
  self->pump();
}

void trip_layer::send_trip(page_writer& out, bool last) {
  last_trip_ = last;
  out.take_into(wreq_->data);
  wreq_->more = last ? more_ : true;
  lower_->start_write(*wreq_);
}

void trip_layer::abort_write(std::error_code ec) {
  aborting_ = true;
  wreq_->finish(context(), ec, 0);
}

runtime::action_result trip_layer::write_action::on_complete(runtime::operation&, int& result,
                                                             bool) {
  return self->on_trip_done(result);
}

void trip_layer::shutdown_broken(done_waiter& w) {
  broken_shutdown_.app = &w;
  lower_->start_shutdown(broken_shutdown_);
}

}  // namespace pagewire::filters
