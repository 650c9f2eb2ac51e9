#pragma once

/// Turns one parsed request into the bytes of its response, appended to a chain: the
/// head as a slice of a head_arena page, the body as file ranges of the open file (or,
/// for small files whose pages are all in the worker's page cache, as page slices, so
/// head and body go out in one gathered send; the slices of recent such bodies are
/// remembered, resident_bodies). Resolves the target under the root
/// through the worker's open_file_cache (openat2 RESOLVE_BENEATH), falls back to
/// index.html for directories (or a listing with --list-dirs; a directory named without
/// its trailing '/' that would be served so is answered 301 to the name with it), picks a
/// precompressed sibling ("file.zst", "file.gz", not older than the file) when the client
/// accepts it, and answers /-/stats when enabled. A sibling that failed to open is not looked for
/// again until `absent_ttl` has passed (absent_cache), so steady requests for a file without
/// siblings make no syscall.
///
/// Ownership: borrows everything it is built with; they outlive it. Appended segments
/// keep their pages and files alive by themselves. Threading: one responder per worker
/// thread. Errors: never throws on the request path; an exhausted page pool gives 500 (or,
/// for on-the-fly compression, the response without it).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <pagewire/apps/http/coding.h>
#include <pagewire/apps/http/request_parser.h>
#include <pagewire/apps/http/response.h>
#include <pagewire/apps/http/response_plan.h>
#include <pagewire/apps/sendfile_server/absent_cache.h>
#include <pagewire/apps/sendfile_server/head_arena.h>
#include <pagewire/apps/sendfile_server/resident_bodies.h>
#include <pagewire/fs/chain.h>
#include <pagewire/fs/file.h>
#include <pagewire/fs/open_file_cache.h>
#include <pagewire/fs/page_cache.h>

namespace pagewire::sendfile_server {

struct responder_options {
  std::span<const http::content_coding> compress;  // --compress, preference order
  bool compress_on_the_fly = false;  // a content filter can compress (else siblings only)
  bool list_dirs = false;
  bool stats = false;
  /// Identity bodies up to this size are taken from the page cache when every page is
  /// resident (one gathered send with the head); 0 disables.
  std::uint64_t page_cache_max_file = kPageCacheMaxFilePlain;
  /// Plain HTTP: one page. Measured (`wrk -t1 -c64`, server and wrk on their own cores):
  /// gathered 1 KiB bodies cost the server 4.0 µs per request against 4.4 by head + sendfile,
  /// equal at 4 KiB; from 8 KiB sendfile wins (64 KiB: 8.7 µs against 12.0, and the client's
  /// receive 11.1 µs against 13.2, since it reads shared page-cache pages rather than lines the
  /// server's core has just written).
  static constexpr std::uint64_t kPageCacheMaxFilePlain = 4 * 1024;
  /// TLS: the layer reads file ranges through the page cache anyway; slices spare it the
  /// read request.
  static constexpr std::uint64_t kPageCacheMaxFileTls = 64 * 1024;
  /// How long a sibling that failed to open counts as absent: the open-file cache's
  /// revalidate_after, so both learn of filesystem changes on one schedule.
  std::chrono::nanoseconds absent_ttl = std::chrono::seconds(1);
};

/// What respond() did, for the access log and the connection.
struct response_summary {
  http::status status = http::status::ok;
  std::uint64_t body_bytes = 0;  // body bytes appended (0 for HEAD and 304)
  bool keep_alive = false;       // false: close after these bytes
  bool from_page_cache = false;
  bool page_cache_miss = false;       // a body small enough for it went as a file range instead
  std::uint8_t siblings_checked = 0;  // sibling lookups that went to the filesystem, failed
  std::uint8_t siblings_known_absent = 0;  // sibling lookups answered by absent_cache
  /// body_kind::compress: nothing was appended; the caller compresses `file` with
  /// `response.coding`, sets Content-Length and calls finish_compressed().
  bool needs_compression = false;
};

/// A response waiting for on-the-fly compression.
struct compress_job {
  http::response response;
  std::shared_ptr<const fs::file> file;
};

class responder {
 public:
  /// `stats_json` renders the /-/stats body (called only when options.stats).
  responder(const responder_options& options, fs::open_file_cache& files, head_arena& heads,
            fs::page_cache* cache, std::function<void(std::string&)> stats_json);

  /// Appends the response to `req` to `out`. With needs_compression, fills `job` instead.
  /// A null `job` says compressing on the fly failed for this request: it is answered
  /// without (identity or a sibling, else 503; Vary as before).
  response_summary respond(const http::request& req, fs::chain& out, compress_job* job);

  /// Appends an error response (parser errors: always "Connection: close"); to a HEAD request
  /// (`m`), the head alone.
  response_summary respond_error(http::status s, http::http_version v, http::method m,
                                 bool keep_alive, fs::chain& out);

  /// Appends a 400 whose plain-text body is `text` (static storage), "Connection: close":
  /// the answer to a client that is not speaking the port's protocol.
  response_summary respond_bad_request(std::string_view text, fs::chain& out);

  /// Appends the head of a compressed response whose body (`body`, content_length set in
  /// job.response) the caller produced, then the body.
  response_summary finish_compressed(compress_job& job, fs::chain&& body, fs::chain& out);

 private:
  struct opened {
    std::shared_ptr<const fs::file> file;
    std::string path;  // relative path actually opened (index.html after a directory)
    bool directory = false;
    /// A directory named without its trailing '/' that the name with it would serve (an
    /// index.html, or a listing under --list-dirs): answered with a 301 there.
    bool needs_slash = false;
  };

  response_summary emit(const http::response& r, const std::shared_ptr<const fs::file>& body_file,
                        fs::chain& out);
  bool append_head(const http::response& r, fs::chain& out);
  /// Chain segments the body of `r` will take (for fs::chain::reserve).
  std::size_t body_segments(const http::response& r) const;
  void append_file_body(const std::shared_ptr<const fs::file>& f, std::uint64_t offset,
                        std::uint64_t length, fs::chain& out, response_summary& sum);
  fs::slice resident_part(const fs::file& f, std::uint64_t page, std::uint64_t offset,
                          std::uint64_t length);
  response_summary respond_generated(const http::request& req, std::string_view content_type,
                                     std::string_view body, fs::chain& out);
  bool open_resource(std::string_view path, bool trailing_slash, opened& out, int& err);
  void find_siblings(const opened& o, std::vector<http::precompressed>& out,
                     std::vector<std::shared_ptr<const fs::file>>& files, response_summary& sum);
  bool render_listing(const opened& o, std::string_view url_path, std::string& html);

  responder_options options_;
  fs::open_file_cache& files_;
  head_arena& heads_;
  fs::page_cache* cache_;
  std::function<void(std::string&)> stats_json_;
  std::uint64_t boundary_seed_ = 0;
  std::string scratch_;   // target decoding
  std::string text_;      // generated bodies
  std::string location_;  // a 301's Location, built here, reused
  std::vector<http::precompressed> siblings_;
  std::vector<std::shared_ptr<const fs::file>> sibling_files_;
  std::string sibling_path_;  // "path.gz" built here, reused
  absent_cache absent_;
  resident_bodies resident_;  // page slices of recent small bodies (skips page lookups)
};

/// http::file_stat of an open file.
http::file_stat stat_of(const fs::file& f);

}  // namespace pagewire::sendfile_server
