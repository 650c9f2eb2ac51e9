#include <algorithm>
#include <array>
#include <cerrno>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pagewire/apps/http/http_date.h>
#include <pagewire/apps/http/response_head.h>
#include <pagewire/apps/http/target.h>
#include <pagewire/apps/sendfile_server/responder.h>

namespace pagewire::sendfile_server {
namespace {

constexpr std::size_t kMaxListing = 10'000;  // entries; bounded work per request
constexpr std::size_t kMaxLocation = 2048;   // bytes of a 301's Location (heads fit a page)

void append_html_escaped(std::string& out, std::string_view s) {
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
}

}  // namespace

http::file_stat stat_of(const fs::file& f) {
  http::file_stat s;
  s.exists = true;
  s.is_regular = f.regular();
  s.size = f.size();
  s.mtime_ns = f.version().mtime_ns;
  s.inode = static_cast<std::uint64_t>(f.ino());
  return s;
}

responder::responder(const responder_options& options, fs::open_file_cache& files,
                     head_arena& heads, fs::page_cache* cache,
                     std::function<void(std::string&)> stats_json)
    : options_(options),
      files_(files),
      heads_(heads),
      cache_(cache),
      stats_json_(std::move(stats_json)),
      absent_(options.absent_ttl) {}

bool responder::append_head(const http::response& r, fs::chain& out) {
  const http::head_context hc{http::current_http_date()};
  auto space = heads_.reserve(1024);
  if (space.empty()) return false;
  auto n = http::build_head(r, hc, space);
  if (!n) {  // a long head (multipart Content-Type, ...): take a whole page
    space = heads_.reserve(fs::kPageSize);
    if (space.empty()) return false;
    n = http::build_head(r, hc, space);
    if (!n) return false;
  }
  out.append(heads_.commit(*n));
  return true;
}

// The part of page `page` that [offset, offset + length) covers, shared from the page cache;
// empty when that part is not all resident.
fs::slice responder::resident_part(const fs::file& f, std::uint64_t page, std::uint64_t offset,
                                   std::uint64_t length) {
  fs::slice s = cache_->lookup(f, page);
  const std::uint64_t page_start = page * fs::kPageSize;
  const std::uint64_t from = std::max(offset, page_start) - page_start;
  const std::uint64_t to = std::min(offset + length, page_start + fs::kPageSize) - page_start;
  if (s.size() < to) return {};
  return s.share(from, to - from);
}

void responder::append_file_body(const std::shared_ptr<const fs::file>& f, std::uint64_t offset,
                                 std::uint64_t length, fs::chain& out, response_summary& sum) {
  sum.body_bytes += length;
  if (length == 0) return;
  if (cache_ && length <= options_.page_cache_max_file) {
    if (resident_.append(*f, offset, length, out)) {
      sum.from_page_cache = true;
      return;
    }
    const std::uint64_t first = offset / fs::kPageSize;
    const std::uint64_t last = (offset + length - 1) / fs::kPageSize;
    // The page slices are gathered on the stack (no chain, hence no allocation) and go to
    // `out` only when every page is resident.
    constexpr std::uint64_t kMaxPages = resident_bodies::kMaxPages;
    if (first == last) {  // the common small file: one page, no gathering
      fs::slice body = resident_part(*f, first, offset, length);
      if (!body.empty()) {
        sum.from_page_cache = true;
        resident_.remember(f, offset, length, {&body, 1});
        out.append(std::move(body));
        return;
      }
    } else if (last - first < kMaxPages) {
      std::array<fs::slice, kMaxPages> pages;
      std::size_t n = 0;
      for (; first + n <= last; ++n) {
        pages[n] = resident_part(*f, first + n, offset, length);
        if (pages[n].empty()) break;
      }
      if (first + n > last) {
        sum.from_page_cache = true;
        resident_.remember(f, offset, length, {pages.data(), n});
        for (std::size_t i = 0; i < n; ++i)
          out.append(std::move(pages[i]));
        return;
      }
    } else {  // more pages than the stack holds (a raised page_cache_max_file)
      fs::chain body;
      std::uint64_t i = first;
      for (; i <= last; ++i) {
        fs::slice part = resident_part(*f, i, offset, length);
        if (part.empty()) break;
        body.append(std::move(part));
      }
      if (i > last) {
        sum.from_page_cache = true;
        out.append(std::move(body));
        return;
      }
    }
    // Warm the cache for the next request; this one goes as a file range.
    sum.page_cache_miss = true;
    cache_->async_read(f, offset, length, [](std::error_code, fs::chain) {});
  }
  out.append(fs::file_range(f, offset, length));
}

std::size_t responder::body_segments(const http::response& r) const {
  switch (r.body) {
    case http::body_kind::none:
    case http::body_kind::compress:
      return 0;
    case http::body_kind::fixed:
      return 1;
    case http::body_kind::file:
      if (cache_ && r.length > 0 && r.length <= options_.page_cache_max_file) {
        // Page slices when every page is resident (one per page), else one file range.
        return static_cast<std::size_t>((r.offset + r.length - 1) / fs::kPageSize -
                                        r.offset / fs::kPageSize + 1);
      }
      return 1;
    case http::body_kind::multipart:
      return 2 * r.multipart->parts().size() + 1;  // part head + range each, then closing
  }
  return 0;
}

response_summary responder::emit(const http::response& r,
                                 const std::shared_ptr<const fs::file>& body_file, fs::chain& out) {
  response_summary sum;
  sum.status = r.status;
  sum.keep_alive = r.keep_alive;
  // A response alone in its chain (the common case: one request per receive) gets its
  // segments' storage in one allocation: head, then the body's segments. At least 4, the
  // chain's own first step: a smaller block lands in a malloc size class the loop's other
  // per-request blocks crowd (measured: 150-300 more instructions per request at 1 KiB).
  if (out.empty()) out.reserve(std::max<std::size_t>(4, 1 + (r.head_only ? 0 : body_segments(r))));
  if (!append_head(r, out)) {
    sum.keep_alive = false;
    sum.status = http::status::internal_server_error;
    return sum;
  }
  if (r.head_only) return sum;
  switch (r.body) {
    case http::body_kind::none:
    case http::body_kind::compress:
      break;
    case http::body_kind::fixed:
      out.append(fs::slice::from_static(r.fixed_body.data(), r.fixed_body.size()));
      sum.body_bytes = r.fixed_body.size();
      break;
    case http::body_kind::file:
      append_file_body(body_file, r.offset, r.length, out, sum);
      break;
    case http::body_kind::multipart:
      for (const auto& part : r.multipart->parts()) {
        if (!heads_.append(out, part.head)) sum.keep_alive = false;
        out.append(fs::file_range(body_file, part.file_offset, part.file_length));
      }
      if (!heads_.append(out, r.multipart->closing())) sum.keep_alive = false;
      sum.body_bytes = r.multipart->content_length();
      break;
  }
  return sum;
}

response_summary responder::respond_bad_request(std::string_view text, fs::chain& out) {
  http::response r =
      http::plan_error(http::status::bad_request, http::http_version::http11, false, false);
  r.fixed_body = text;
  r.content_length = text.size();
  return emit(r, nullptr, out);
}

response_summary responder::respond_error(http::status s, http::http_version v, http::method m,
                                          bool keep_alive, fs::chain& out) {
  return emit(http::plan_error(s, v, m == http::method::head, keep_alive), nullptr, out);
}

response_summary responder::respond_generated(const http::request& req,
                                              std::string_view content_type, std::string_view body,
                                              fs::chain& out) {
  http::response r;
  r.version = req.version;
  r.keep_alive = req.keep_alive;
  r.head_only = req.method == http::method::head;
  r.content_type = content_type;
  r.content_length = body.size();
  r.body = http::body_kind::fixed;
  response_summary sum;
  sum.status = r.status;
  sum.keep_alive = r.keep_alive;
  if (!append_head(r, out) || (!r.head_only && !heads_.append(out, body))) {
    sum.keep_alive = false;
    return sum;
  }
  if (!r.head_only) sum.body_bytes = body.size();
  return sum;
}

bool responder::open_resource(std::string_view path, bool trailing_slash, opened& o, int& err) {
  std::error_code ec;
  o.path.assign(path.empty() ? std::string_view(".") : path);
  o.file = files_.open(o.path, ec);
  if (!o.file) {
    err = ec.value();
    return false;
  }
  if (S_ISDIR(o.file->mode())) {
    o.directory = true;
    std::string index =
        path.empty() ? std::string("index.html") : std::string(path) + "/index.html";
    auto f = files_.open(index, ec);
    const bool has_index = f && f->regular();
    if (!trailing_slash && (has_index || options_.list_dirs)) {
      o.needs_slash = true;
      err = EISDIR;
      return false;
    }
    if (has_index) {
      o.file = std::move(f);
      o.path = std::move(index);
      o.directory = false;
      return true;
    }
    err = ENOENT;
    return false;
  }
  // Only regular files; "/file.txt/" names no directory and is not the file (nginx and
  // Apache answer 404 too: the same bytes under two names, relative links off by one level).
  if (!o.file->regular() || trailing_slash) {
    err = ENOENT;
    return false;
  }
  return true;
}

void responder::find_siblings(const opened& o, std::vector<http::precompressed>& out,
                              std::vector<std::shared_ptr<const fs::file>>& files,
                              response_summary& sum) {
  out.clear();
  files.clear();
  // Looked up even without Accept-Encoding: the response must say Vary when variants exist.
  if (options_.compress.empty()) return;
  const std::int64_t mtime = o.file->version().mtime_ns;
  const auto now = absent_cache::clock::now();
  for (const auto c : options_.compress) {
    sibling_path_.assign(o.path).append(http::sibling_suffix(c));
    if (absent_.known_absent(sibling_path_, now)) {
      ++sum.siblings_known_absent;
      continue;
    }
    std::error_code ec;
    auto f = files_.open(sibling_path_, ec);
    if (!f) {
      absent_.note_absent(sibling_path_, now);
      ++sum.siblings_checked;
      continue;
    }
    if (!f->regular() || f->version().mtime_ns < mtime) continue;
    out.push_back(http::precompressed{c, stat_of(*f)});
    files.push_back(std::move(f));
  }
}

bool responder::render_listing(const opened& o, std::string_view url_path, std::string& html) {
  const int fd = ::openat(o.file->fd(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  DIR* d = ::fdopendir(fd);
  if (!d) {
    ::close(fd);
    return false;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view n = e->d_name;
    if (n == "." || n == "..") continue;
    if (names.size() == kMaxListing) break;
    names.emplace_back(n);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  html.assign("<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Index of /");
  append_html_escaped(html, url_path);
  html += "</title></head>\n<body>\n<ul>\n";
  for (const auto& n : names) {
    html += "  <li><a href=\"";
    std::string href;
    http::append_percent_encoded(href, n, http::uri_bytes::name);
    append_html_escaped(html, href);
    html += "\">";
    append_html_escaped(html, n);
    html += "</a></li>\n";
  }
  html += "</ul>\n</body></html>\n";
  return true;
}

response_summary responder::respond(const http::request& req, fs::chain& out, compress_job* job) {
  const bool head_only = req.method == http::method::head;
  if (req.method == http::method::other || req.method == http::method::unknown) {
    return emit(
        http::plan_error(http::method_refusal(req.method), req.version, false, req.keep_alive),
        nullptr, out);
  }
  if (scratch_.size() < req.target.size()) scratch_.resize(req.target.size());
  const auto t = http::resolve_target(req.target, scratch_);
  if (!t) {
    return emit(http::plan_error(http::status::bad_request, req.version, head_only, req.keep_alive),
                nullptr, out);
  }
  if (options_.stats && t->path == "-/stats") {
    stats_json_(text_);
    return respond_generated(req, "application/json", text_, out);
  }
  opened o;
  int err = 0;
  if (!open_resource(t->path, t->trailing_slash, o, err)) {
    if (o.needs_slash) {
      // A Location too long for one head page is refused rather than sent cut.
      if (!http::directory_location(req.target, t->path, location_) ||
          location_.size() > kMaxLocation) {
        return emit(
            http::plan_error(http::status::uri_too_long, req.version, head_only, req.keep_alive),
            nullptr, out);
      }
      return emit(http::plan_redirect(location_, req.version, head_only, req.keep_alive), nullptr,
                  out);
    }
    if (o.directory && options_.list_dirs && t->trailing_slash && render_listing(o, t->path, text_))
      return respond_generated(req, "text/html; charset=utf-8", text_, out);
    const auto s = err == EACCES ? http::status::forbidden : http::status::not_found;
    return emit(http::plan_error(s, req.version, head_only, req.keep_alive), nullptr, out);
  }
  response_summary lookups;
  find_siblings(o, siblings_, sibling_files_, lookups);
  http::resource res{o.path, stat_of(*o.file), siblings_};
  http::plan_options po;
  po.compress = options_.compress;
  if (!options_.compress_on_the_fly) po.min_compress_size = UINT64_MAX;
  po.on_the_fly_unavailable = job == nullptr;
  po.now = http::coarse_now_seconds();
  po.boundary_seed = ++boundary_seed_;
  http::response r = http::plan_response(req, res, po);
  response_summary sum;
  if (r.body == http::body_kind::compress) {
    sum.status = r.status;
    sum.keep_alive = r.keep_alive;
    sum.needs_compression = true;
    job->response = std::move(r);
    job->file = o.file;
  } else {
    std::shared_ptr<const fs::file> body = o.file;
    if (r.from_sibling) {
      for (std::size_t i = 0; i < siblings_.size(); ++i)
        if (siblings_[i].coding == r.coding) body = sibling_files_[i];
    }
    sum = emit(r, body, out);
  }
  sum.siblings_checked = lookups.siblings_checked;
  sum.siblings_known_absent = lookups.siblings_known_absent;
  return sum;
}

response_summary responder::finish_compressed(compress_job& job, fs::chain&& body, fs::chain& out) {
  job.response.body = http::body_kind::fixed;
  job.response.content_length = body.size();
  response_summary sum;
  sum.status = job.response.status;
  sum.keep_alive = job.response.keep_alive;
  if (!append_head(job.response, out)) {
    sum.keep_alive = false;
    return sum;
  }
  if (!job.response.head_only) {
    sum.body_bytes = body.size();
    out.append(std::move(body));
  }
  return sum;
}

}  // namespace pagewire::sendfile_server
