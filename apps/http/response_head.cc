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

std::optional<std::size_t> build_head(const response& r, const head_context& ctx,
                                      std::span<char> out) {
  head_writer w(out);
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
  if (!r.keep_alive) {
    w.field("Connection", "close");
  } else if (r.version == http_version::http10) {
    w.field("Connection", "keep-alive");
  }
  return w.finish();
}

}  // namespace pagewire::http
