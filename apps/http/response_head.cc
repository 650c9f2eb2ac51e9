#include <charconv>
#include <cstring>

#include <pagewire/apps/http/http_date.h>
#include <pagewire/apps/http/response_head.h>

namespace pagewire::http {

head_writer& head_writer::status_line(status s) {
  return raw(http::status_line(s));
}

head_writer& head_writer::number(std::uint64_t value) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  return raw(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

head_writer& head_writer::field(std::string_view name, std::uint64_t value) {
  return raw(name).raw(": ").number(value).raw("\r\n");
}

std::optional<std::size_t> head_writer::finish() {
  raw("\r\n");
  if (overflow_) return std::nullopt;
  return len_;
}

namespace {

template <class Writer>
std::optional<std::size_t> write_head(const response& r, const head_context& ctx, Writer& w) {
  w.status_line(r.status);
  w.field("Date", ctx.date);
  if (!ctx.server.empty()) w.field("Server", ctx.server);
  if (!r.content_type.empty()) w.field("Content-Type", r.content_type);
  if (r.status != status::not_modified) w.field("Content-Length", r.content_length);
  if (r.last_modified) {
    // Formatted once per distinct mtime second per thread: a small direct-mapped cache.
    thread_local date_cache last_modified[8];
    const auto t = *r.last_modified;
    w.field("Last-Modified", last_modified[static_cast<std::uint64_t>(t) & 7].at(t));
  }
  if (r.etag) w.field("ETag", r.etag->view());
  if (r.accept_ranges) w.field("Accept-Ranges", "bytes");
  if (r.range) {
    w.raw("Content-Range: bytes ");
    if (r.range->unsatisfied) {
      w.raw("*");
    } else {
      w.number(r.range->first).raw("-").number(r.range->last);
    }
    w.raw("/").number(r.range->size).raw("\r\n");
  }
  if (r.coding != content_coding::identity) w.field("Content-Encoding", coding_token(r.coding));
  if (r.vary_accept_encoding) w.field("Vary", "Accept-Encoding");
  if (r.allow) w.field("Allow", "GET, HEAD");
  if (!r.location.empty()) w.field("Location", r.location);
  if (!r.keep_alive) {
    w.field("Connection", "close");
  } else if (r.version == http_version::http10) {
    w.field("Connection", "keep-alive");
  }
  return w.finish();
}

// Writes without bounds checks, for a head that build_head found fits (head_bound).
class unchecked_writer {
 public:
  explicit unchecked_writer(char* p) : begin_(p), p_(p) {}
  unchecked_writer& raw(std::string_view s) {
    std::memcpy(p_, s.data(), s.size());
    p_ += s.size();
    return *this;
  }
  unchecked_writer& status_line(status s) { return raw(http::status_line(s)); }
  unchecked_writer& field(std::string_view name, std::string_view value) {
    return raw(name).raw(": ").raw(value).raw("\r\n");
  }
  unchecked_writer& field(std::string_view name, std::uint64_t value) {
    return raw(name).raw(": ").number(value).raw("\r\n");
  }
  unchecked_writer& number(std::uint64_t value) {
    p_ = std::to_chars(p_, p_ + 20, value).ptr;  // 20 digits hold any uint64_t
    return *this;
  }
  std::optional<std::size_t> finish() {
    raw("\r\n");
    return static_cast<std::size_t>(p_ - begin_);
  }

 private:
  char* begin_;
  char* p_;
};

// At least what write_head can write for `r`: every constant part it may emit (status
// line <= 47, field names and separators, four numbers of <= 20 digits, Last-Modified
// and the coding token bounded generously: 387 in all) under kFixed, plus the variable
// strings.
std::size_t head_bound(const response& r, const head_context& ctx) {
  constexpr std::size_t kFixed = 512;
  return kFixed + ctx.date.size() + ctx.server.size() + r.content_type.size() +
         (r.etag ? r.etag->view().size() : 0) + r.location.size();
}

}  // namespace

std::optional<std::size_t> build_head(const response& r, const head_context& ctx,
                                      std::span<char> out) {
  // The common case checks room once; a head that may not fit is written with a check
  // per copy and reports nullopt when it does not.
  if (out.size() >= head_bound(r, ctx)) {
    unchecked_writer w(out.data());
    return write_head(r, ctx, w);
  }
  head_writer w(out);
  return write_head(r, ctx, w);
}

}  // namespace pagewire::http
