// libFuzzer target for the whole sendfile_server, end to end: one real server runs in-process
// (one worker thread, --compress gzip,zstd, --stats) over a document root built at start-up,
// and every input is a script of pipelined requests sent over one loopback TCP connection,
// in script-chosen chunks, then SHUT_WR; the harness reads to EOF (bounded: no EOF within
// kDeadlineMs is a hang) and checks the whole byte stream against its own oracle.
// Fuzzed outside Bazel by `tests/fuzz/run_fuzz.sh server` with clang++-14; its seeds
// (corpus/server/) run in every `make test` as //tests/fuzz:server_corpus_test.
//
// HTTPS: `run_fuzz.sh server_tls` builds this file with -DPAGEWIRE_FUZZ_SERVER_TLS=1 (kTls).
// The server then also gets --tls-cert / --tls-key (a self-signed Ed25519 certificate for
// localhost, written at start-up next to the root), and the client speaks TLS 1.3 through
// OpenSSL (the default suites, the certificate verified) over the same non-blocking socket:
// the handshake counts toward kDeadlineMs, each write cut is the plaintext of SSL_write calls
// of one record each (at most the script's record size), and the client ends with
// close_notify then SHUT_WR, or (a script bit) a bare SHUT_WR. The decrypted stream goes
// through the same oracle. The two transports (class socket_transport, class tls_transport)
// answer the same few calls; nothing else differs.
//
// Requests are built from tables the script picks from, so most are well-formed: method,
// target (every file and directory of the root, symlinks in and out of it, missing files,
// /-/stats, percent-encoded variants, the traversal corpus, a fresh file made for this input
// so that its gzip and zstd are compressed on the fly, or a few raw script bytes),
// version, Host, Range (around the file's size), If-None-Match / If-Modified-Since /
// If-Range (with the validators warm-up requests recorded), Accept-Encoding, Connection,
// a long field, many fields, a raw field line, a body (Content-Length, Expect:
// 100-continue, chunked, too large). Rarely a request is raw script bytes (garbage), and the
// last one may be cut short.
//
// Invariants (each aborts through require(), after printing the requests and the stream):
//  - the server never hangs (EOF within kDeadlineMs), and never resets the connection (a
//    failed send, shutdown or recv: the TCP reset problem of RFC 9112 §9.6, which its
//    lingering close is there to avoid) unless the client sent bytes it must not send:
//    bytes after a request that asked to close ("Connection: close", or HTTP/1.0 without
//    keep-alive), which the server, like nginx, lingers for only when they are already
//    there. Not after a request the parser refused, nor after garbage refused at its first
//    line: then the server lingers always (plan::must_not_send says where those bytes
//    begin). After a tolerated reset, what arrived must be a correct prefix of the stream:
//    complete responses checked as below, then possibly one cut short;
//  - the stream is a sequence of well-formed HTTP/1.1 responses (parsed here, not with
//    pagewire's parser), each with Date and, but for 1xx and 304, one Content-Length; the
//    body is Content-Length bytes except for 304 and for HEAD (RFC 9112 §6.3: any HEAD
//    whose method and target the parser read, errors included, a refused version too; a
//    HEAD line refused before that gets the error text); nothing follows the last response;
//  - before any garbage request, responses match requests one to one, in order (an optional
//    100 Continue before a request with Expect and a body); a response with
//    "Connection: close" ends the stream, and only the last response may go without it when
//    the stream ends; a cut last request gets no response or one error that closes; after
//    garbage, responses stay well-formed (with content, of Content-Length bytes, unless the
//    next response or the end follows the head: a HEAD's) and none follows a close;
//  - the marker kSecret never appears in the stream, nor in any compressed body decoded;
//  - over TLS (kTls), as RFC 8446 §6.1 asks: the server ends its stream with close_notify,
//    then FIN, and sends nothing after it; the client meets no TLS failure (a bad record, an
//    alert, a decode error, a certificate it cannot verify). Except, as for resets, once
//    plaintext bytes the client must not send went out: then a stream that ends without
//    close_notify is taken as a reset, and any TLS failure after a tolerated reset too;
//  - a request built from tables alone gets the status its fields call for (parse errors:
//    400 / 411 / 413 / 431 / 505 and close; 405 with Allow; 501; 400 for a target that
//    leaves the root or holds NUL / backslash; 404 (or 403) for missing files, directories
//    without index.html and symlinks out of the root; 301 to the directory with its slash;
//    keep-alive as the version and Connection say), and for files: 304 only from a
//    validator that says so (and always from one that must), 406 only when identity is
//    refused, 412 exactly for a failing If-Match / If-Unmodified-Since, a coding only if
//    Accept-Encoding accepts it, identity whenever a Range is sent and identity is
//    acceptable, 206 / 416 only for GET with Range and exactly the ranges the documented
//    rules give when nothing else interferes;
//  - for any request naming a known file: a 200 body (decoded with zlib / libzstd when
//    Content-Encoding says so) is the file; a 206 is identity with Content-Range
//    "bytes a-b/LEN" (LEN the size) and the slice, or multipart/byteranges whose parts are
//    ascending, disjoint slices with Content-Type and Content-Range, and a closing delimiter;
//    a 416 says "bytes */LEN"; 2xx and 304 carry an ETag, the same for a (file, coding) over
//    the whole run, as are Last-Modified and a 200's Content-Length; Content-Encoding comes
//    with "Vary: Accept-Encoding" and never with 206; an error or redirect body is
//    "CODE Reason\n" (without content, to HEAD: its Content-Length is that text's).
//
// Input: byte 0: bits 0-2 extra write cuts, bit 3 cut the last request short, bits 4-7 the
// number of requests ((b >> 4) % 12 + 1). Then each request: k:u8 (>= 0xf8: garbage, n:u8
// then n % 64 + 1 raw bytes; else method k % 16), target:u8 (the table, then the fresh file,
// then raw: n:u8 and n % 24 bytes), version:u8, host:u8, fields:u8 (bit 0 Range kind:u8 + numbers,
// 1 If-None-Match, 2 If-Modified-Since, 3 If-Range, 4 Accept-Encoding, 5 Connection, 6 an extra
// field, 7 a body; each followed by its u8 choice and arguments). Then a u16 per write cut, a
// u16 for the cut of the last request, and a u8 for the TLS client (read by both targets, used
// by server_tls only): bit 0 end without close_notify (a bare SHUT_WR), bits 1-3 the largest
// record's plaintext (kRecordSizes). Zeros once the script is used up: one plain GET (over
// TLS: 16 KiB records, then close_notify).
//
// Layout, in order: the document root and the server (build_root, start_server); requests
// (the tables, the Range field, class builder: script -> request with what the model
// predicts); must_not_send (where the bytes the client must not send begin); failure reports
// (require()); the client's transports (plain socket, TLS); the exchange (class client: the
// poll loop, resets, TLS failures); decoding (zlib, zstd);
// responses (class oracle: framing, matching responses to requests, bodies, files, the
// model); run_input, warm_up and the libFuzzer entry points.

#include <algorithm>
#include <arpa/inet.h>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <sys/stat.h>
#include <type_traits>
#include <unistd.h>
#include <utility>
#include <vector>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>
#include <zstd.h>

#include <pagewire/apps/http/coding.h>
#include <pagewire/apps/sendfile_server/options.h>
#include <pagewire/apps/sendfile_server/server.h>

#include "fuzz_check.h"
#include "fuzz_script.h"
#include "fuzz_tls.h"

#ifndef PAGEWIRE_FUZZ_SERVER_TLS
#define PAGEWIRE_FUZZ_SERVER_TLS 0
#endif

namespace sfs = pagewire::sendfile_server;
using fuzz_script::script;

namespace {

constexpr bool kTls = PAGEWIRE_FUZZ_SERVER_TLS;  // server_tls: HTTPS
constexpr std::string_view kSecret = "PAGEWIRE-SECRET-7f3c";
constexpr std::size_t kMaxRequests = 12;
constexpr int kDeadlineMs = 10'000;  // the server's own timeouts are longer (kServerTimeout)
constexpr auto kServerTimeout = std::chrono::milliseconds(60'000);
// The parser's limits (request_parser.h defaults, which the server keeps).
constexpr std::size_t kMaxHeadBytes = 16 * 1024;
constexpr std::size_t kMaxFields = 100;
constexpr std::uint64_t kMaxBody = 1 << 20;
constexpr std::size_t kMaxRanges = 16;  // range.h: more is answered with the whole file
constexpr std::size_t kMaxDecoded = 4 << 20;
constexpr time_t kMtime = 1'609'459'200;  // 2021-01-01: every file's (a strong validator)
// The TLS client's largest record plaintext, by the script's choice (16 KiB: TLS's own limit).
constexpr std::size_t kRecordSizes[8] = {16384, 1, 2, 3, 7, 64, 517, 4096};

// Codings as bits of a set.
enum : std::uint8_t { kIdentity = 1, kGzip = 2, kZstd = 4, kAllCodings = 7 };

// ---- the document root ------------------------------------------------------------------

struct doc_file {
  std::string name;  // relative to the root
  std::string bytes;
};

enum class kind : std::uint8_t { file, missing, bad, escape, redirect, stats };

// A target of the table: what it names. For kind::file, `arg` is the file's name; for
// kind::redirect, the Location.
struct target_def {
  std::string_view text;
  kind k;
  std::string_view arg = {};
};

constexpr target_def kTargets[] = {
    {"/empty.txt", kind::file, "empty.txt"},
    {"/one.txt", kind::file, "one.txt"},
    {"/page.css", kind::file, "page.css"},
    {"/page.js", kind::file, "page.js"},
    {"/big.html", kind::file, "big.html"},
    {"/rand.bin", kind::file, "rand.bin"},
    {"/gz.txt", kind::file, "gz.txt"},
    {"/gz.txt.gz", kind::file, "gz.txt.gz"},
    {"/zs.css", kind::file, "zs.css"},
    {"/zs.css.zst", kind::file, "zs.css.zst"},
    {"/dir/index.html", kind::file, "dir/index.html"},
    {"/dir/", kind::file, "dir/index.html"},
    {"/dir/note.txt", kind::file, "dir/note.txt"},
    {"/link.html", kind::file, "big.html"},  // a symlink inside the root
    {"/%62ig.html", kind::file, "big.html"},
    {"/dir%2Findex.html", kind::file, "dir/index.html"},
    {"/./one.txt", kind::file, "one.txt"},
    {"/%2e/gz%2etxt", kind::file, "gz.txt"},
    {"/dir//note.txt", kind::file, "dir/note.txt"},
    {"/dir/.", kind::file, "dir/index.html"},
    {"/big.html?x=1&y=%2e%2e", kind::file, "big.html"},
    {"/page.css#frag", kind::file, "page.css"},
    {"http://h/zs.css", kind::file, "zs.css"},
    {"/-/stats", kind::stats},
    {"/dir", kind::redirect, "/dir/"},
    {"/dir?q=1", kind::redirect, "/dir/?q=1"},
    {"/missing.txt", kind::missing},
    {"/", kind::missing},
    {"/nodir/", kind::missing},
    {"/nodir", kind::missing},
    {"/dir/missing", kind::missing},
    {"/rand.bin/", kind::missing},
    {"/%252e%252e/", kind::missing},
    {"//etc/passwd", kind::missing},
    {"/escape.txt", kind::escape},  // absolute symlink to ../secret.txt
    {"/escape_rel.txt", kind::escape},
    {"/../etc/passwd", kind::bad},
    {"/../secret.txt", kind::bad},
    {"/%2e%2e/", kind::bad},
    {"/.%2e/secret.txt", kind::bad},
    {"/..%2fsecret.txt", kind::bad},
    {"/a%00b", kind::bad},
    {"../x", kind::bad},
    {"/dir/../../secret.txt", kind::bad},
    {"/dir/%2e%2e/%2e%2e/secret.txt", kind::bad},
    {"/dir%5c..%5c..%5csecret.txt", kind::bad},
    {"/\\..\\secret.txt", kind::bad},
    {"/..", kind::bad},
    {"*", kind::bad},
    {"http://u@h/big.html", kind::bad},
    {"/%zz", kind::bad},
};
constexpr std::size_t kTargetCount = std::size(kTargets);

struct target {
  std::string_view text;
  kind k;
  int file = -1;
  std::string_view location;
};

// What earlier responses said about a file in one coding: the whole run must agree.
struct remembered {
  std::string etag;
  std::optional<std::uint64_t> length;  // a 200's Content-Length
};

struct world {
  std::string base, root;
  std::vector<doc_file> files;
  std::vector<target> targets;
  sfs::server* server = nullptr;  // never destroyed
  std::uint16_t port = 0;
  std::string cert, key;   // kTls: the server's certificate and key (PEM files in base)
  SSL_CTX* tls = nullptr;  // kTls: the client's (verifies that certificate); never freed
  std::map<std::pair<int, std::uint8_t>, remembered> seen;  // (file, coding bit)
  std::map<int, std::string> last_modified;
  // The fresh file: a new name and content for every input (g->files[fresh_file], the last
  // of g->targets), which no cache of the server knows: its compressed codings are made on
  // the fly, with the requests behind it waiting (session::start_compression).
  int fresh_file = -1;
  std::uint64_t fresh_count = 0;
  std::string fresh_target;
};
world* g = nullptr;

int file_index(std::string_view name) {
  for (std::size_t i = 0; i < g->files.size(); ++i)
    if (g->files[i].name == name) return static_cast<int>(i);
  std::fprintf(stderr, "server_fuzz: no file %.*s\n", static_cast<int>(name.size()), name.data());
  std::abort();
}

// Deterministic text (compressible, never "HTTP/" nor the marker).
std::string text_content(std::size_t n, std::uint32_t seed) {
  static constexpr std::string_view kWords[] = {
      "page",  "wire", "zero", "copy",  "ring",  "splice", "static", "file", "server", "range",
      "bytes", "etag", "gzip", "zstd ", "lorem", "ipsum",  "dolor",  "sit",  "amet",   "\n"};
  std::string s;
  std::uint32_t x = seed;
  while (s.size() < n) {
    x = x * 1664525u + 1013904223u;
    s.append(kWords[(x >> 16) % std::size(kWords)]);
    s.push_back((x & 7) == 0 ? '\n' : ' ');
  }
  s.resize(n);
  return s;
}

std::string random_content(std::size_t n, std::uint32_t salt) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i)
    s[i] = static_cast<char>(fuzz_script::pattern(i, salt));
  return s;
}

std::string gzip_of(const std::string& in) {
  z_stream z{};
  check(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, in.size()) + 64, '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  check(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

std::string zstd_of(const std::string& in) {
  std::string out(ZSTD_compressBound(in.size()), '\0');
  const std::size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), 19);
  check(!ZSTD_isError(n));
  out.resize(n);
  return out;
}

void write_file(const std::string& path, const std::string& bytes, time_t mtime) {
  FILE* f = std::fopen(path.c_str(), "wb");
  check(f && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size());
  check(std::fclose(f) == 0);
  const timespec times[2] = {{mtime, 0}, {mtime, 0}};
  check(::utimensat(AT_FDCWD, path.c_str(), times, 0) == 0);
}

// The root: files of 0, 1, 4095, 4096, 70,000 (text) and 300,000 (random) bytes; gz.txt
// with a .gz sibling and zs.css with a .zst one (newer than the file, decoding to it);
// dir/ with index.html, nodir/ without; link.html -> big.html; escape.txt and
// escape_rel.txt -> ../secret.txt, which holds the marker.
void build_root() {
  char dir[] = "/tmp/pagewire-server-fuzz-XXXXXX";
  check(::mkdtemp(dir) != nullptr);
  g->base = dir;
  g->root = g->base + "/root";
  check(::mkdir(g->root.c_str(), 0755) == 0);
  check(::mkdir((g->root + "/dir").c_str(), 0755) == 0);
  check(::mkdir((g->root + "/nodir").c_str(), 0755) == 0);
  std::string secret;
  while (secret.size() < 3000)
    secret.append("top secret: ").append(kSecret).append("\n");
  write_file(g->base + "/secret.txt", secret, kMtime);
  const std::string gz_text = text_content(5000, 7), zs_text = text_content(3000, 8);
  g->files = {
      {"empty.txt", ""},
      {"one.txt", "x"},
      {"page.css", text_content(4095, 1)},
      {"page.js", text_content(4096, 2)},
      {"big.html", text_content(70'000, 3)},
      {"rand.bin", random_content(300'000, 4)},
      {"gz.txt", gz_text},
      {"gz.txt.gz", gzip_of(gz_text)},
      {"zs.css", zs_text},
      {"zs.css.zst", zstd_of(zs_text)},
      {"dir/index.html", text_content(2000, 5)},
      {"dir/note.txt", text_content(100, 6)},
  };
  for (const doc_file& f : g->files) {
    const bool sibling = f.name.ends_with(".gz") || f.name.ends_with(".zst");
    write_file(g->root + "/" + f.name, f.bytes, sibling ? kMtime + 10 : kMtime);
  }
  check(::symlink("big.html", (g->root + "/link.html").c_str()) == 0);
  check(::symlink((g->base + "/secret.txt").c_str(), (g->root + "/escape.txt").c_str()) == 0);
  check(::symlink("../secret.txt", (g->root + "/escape_rel.txt").c_str()) == 0);
  for (const target_def& d : kTargets) {
    target t{d.text, d.k, -1, {}};
    if (d.k == kind::file) t.file = file_index(d.arg);
    if (d.k == kind::redirect) t.location = d.arg;
    g->targets.push_back(t);
  }
  check(::mkdir((g->root + "/fresh").c_str(), 0755) == 0);
  g->fresh_file = static_cast<int>(g->files.size());
  g->files.push_back({});
  g->targets.push_back({{}, kind::file, g->fresh_file, {}});
}

// Replaces the fresh file by a new one (fresh/N.txt, 1.5-60 KB of text) and forgets what
// responses said of the last.
void renew_fresh_file() {
  doc_file& f = g->files[static_cast<std::size_t>(g->fresh_file)];
  if (!f.name.empty()) check(::unlink((g->root + "/" + f.name).c_str()) == 0);
  const std::uint64_t n = ++g->fresh_count;
  f.name = "fresh/" + std::to_string(n) + ".txt";
  f.bytes = text_content(1500 + n * 7919 % 58'500, static_cast<std::uint32_t>(1000 + n));
  write_file(g->root + "/" + f.name, f.bytes, kMtime);
  g->fresh_target = "/" + f.name;
  g->targets.back().text = g->fresh_target;
  for (const std::uint8_t coding : {kIdentity, kGzip, kZstd})
    g->seen.erase({g->fresh_file, coding});
  g->last_modified.erase(g->fresh_file);
}

void start_server() {
  sfs::server_options o;
  o.root = g->root;
  o.host = "127.0.0.1";
  o.port = 0;
  o.threads = 1;
  o.compress = {pagewire::http::content_coding::gzip, pagewire::http::content_coding::zstd};
  o.stats = true;
  // Longer than kDeadlineMs: a server timeout never ends an exchange before the harness
  // would call it a hang, and the harness never waits for one.
  o.header_timeout = o.idle_timeout = o.send_timeout = kServerTimeout;
  if (kTls) {
    g->cert = g->base + "/cert.pem";
    g->key = g->base + "/key.pem";
    fuzz_tls::write_certificate(g->cert, g->key, true);
    o.tls_cert = g->cert;
    o.tls_key = g->key;
  }
  std::string error;
  if (!sfs::validate_options(o, g->root, error)) {
    std::fprintf(stderr, "server_fuzz: %s\n", error.c_str());
    std::abort();
  }
  g->server = new sfs::server(o);
  if (!g->server->start(error)) {
    std::fprintf(stderr, "server_fuzz: %s\n", error.c_str());
    std::abort();
  }
  g->port = g->server->port();
}

// The client's context: TLS 1.3 with OpenSSL's default suites, the server's certificate the
// one trust anchor (the name checked per connection).
void make_client_context() {
  SSL_CTX* x = SSL_CTX_new(TLS_client_method());
  check(x != nullptr);
  check(SSL_CTX_set_min_proto_version(x, TLS1_3_VERSION) == 1);
  check(SSL_CTX_load_verify_locations(x, g->cert.c_str(), nullptr) == 1);
  SSL_CTX_set_verify(x, SSL_VERIFY_PEER, nullptr);
  g->tls = x;
}

// ---- requests -----------------------------------------------------------------------------

struct byte_range {
  std::uint64_t first, last;
  bool operator==(const byte_range&) const = default;
};

// What the documented Range rules (range.h) give for a file, when the value is one the
// harness can resolve: whole (ignored), the ranges (206), or none satisfiable (416).
enum class range_outcome : std::uint8_t { unknown, whole, ranges, unsatisfiable };

struct request {
  std::string bytes;
  bool garbage = false;    // raw bytes, or a field that changes framing: from here on only
                           // well-formedness is checked
  bool raw = false;        // raw bytes (garbage), not a request built from tables
  bool truncated = false;  // the last request, cut short: no response, or one error
  bool modelled = true;    // built from tables only: its outcome is predicted
  bool head = false, get = false;
  bool method_known = true;  // the parser reads the method and target: the server knows it
  bool may_close = false;    // a raw Connection line: it may ask to close whatever the tables say
  const target* tgt = nullptr;  // null: raw target bytes
  std::vector<int> errors;      // statuses of the parse errors its head holds
  int refusal = 0;              // 405 or 501 for a method other than GET and HEAD
  bool http10 = false;
  bool keep_alive = true;     // what the version and Connection ask for
  bool may_continue = false;  // a 100 Continue may come before the response
  // Fields that let a file's status differ from 200.
  bool range = false, if_range = false, if_range_valid = false, precondition = false;
  bool inm = false, inm_any = false;
  std::vector<std::string> inm_tags;  // the entity-tags of If-None-Match, W/ stripped
  int ims = -1;                       // If-Modified-Since choice, -1: none
  bool ae = false;
  std::uint8_t codings = kIdentity;  // the codings Accept-Encoding accepts
  range_outcome ranges = range_outcome::unknown;
  std::vector<byte_range> expect_ranges;
  std::size_t head_bytes = 0, fields = 0;
  int file() const { return tgt ? tgt->file : -1; }
};

struct plan {
  std::vector<request> requests;
  std::vector<std::size_t> cuts;  // write boundaries, ascending
  std::string bytes;              // everything sent
  // Bytes from here on follow a request that (may have) asked to close: the client must not
  // send them (RFC 9112 §9.6), and a reset once some were sent is no finding (npos: none).
  std::size_t must_not_send = std::string::npos;
  // The TLS client's choices (kTls; the plain client has neither).
  bool close_notify = true;    // end with close_notify, then SHUT_WR; else a bare SHUT_WR
  std::size_t record = 16384;  // the largest record's plaintext: one SSL_write each
};

struct method_def {
  std::string_view name;
  int refusal;  // 0: GET or HEAD
  int error;    // a parse error (not a token)
};
constexpr method_def kMethods[16] = {
    {"GET", 0, 0},       {"GET", 0, 0},      {"GET", 0, 0},   {"GET", 0, 0},
    {"GET", 0, 0},       {"GET", 0, 0},      {"GET", 0, 0},   {"GET", 0, 0},
    {"HEAD", 0, 0},      {"HEAD", 0, 0},     {"HEAD", 0, 0},  {"POST", 405, 0},
    {"OPTIONS", 405, 0}, {"DELETE", 405, 0}, {"get", 501, 0}, {"G(T", 0, 400},
};

struct version_def {
  std::string_view text;
  bool http10;
  int error;
};
constexpr version_def kVersions[11] = {
    {"HTTP/1.1", false, 0},   {"HTTP/1.1", false, 0}, {"HTTP/1.1", false, 0},
    {"HTTP/1.1", false, 0},   {"HTTP/1.1", false, 0}, {"HTTP/1.0", true, 0},
    {"HTTP/1.0", true, 0},    {"HTTP/1.2", false, 0},  // a higher minor: served as 1.1
    {"HTTP/2.0", false, 505}, {"HTTP/1", false, 400}, {"http/1.1", false, 400},
};

struct ae_def {
  std::string_view value;
  std::uint8_t accepts;  // codings with a weight above 0 (identity: by the rules of
                         // accept_encoding.h, unlisted identity is the last resort)
};
constexpr ae_def kAcceptEncodings[] = {
    {"gzip", kGzip | kIdentity},
    {"zstd", kZstd | kIdentity},
    {"gzip, zstd", kAllCodings},
    {"zstd;q=0.5, gzip;q=0.8", kAllCodings},
    {"*", kAllCodings},
    {"*;q=0", 0},
    {"identity;q=0", 0},
    {"gzip, identity;q=0", kGzip},
    {"zstd, *;q=0", kZstd},
    {"br", kIdentity},
    {"gzip;q=0, zstd;q=0", kIdentity},
    {"x-gzip", kGzip | kIdentity},
    {"GZIP;Q=0.5", kGzip | kIdentity},
    {"gzip;q=2", kIdentity},  // a bad q-value: the element is skipped
    {"", kIdentity},
    {"identity", kIdentity},
    {"deflate, br;q=0.9", kIdentity},
    {"zstd;q=1.0, gzip;q=0.999, identity;q=0.5", kAllCodings},
};
constexpr std::size_t kAeCount = std::size(kAcceptEncodings);
constexpr std::size_t kAeNone = kAeCount;  // warm-up: no field

constexpr std::string_view kPastDates[] = {
    "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"};
constexpr std::string_view kFutureDate = "Fri, 01 Jan 2100 00:00:00 GMT";
constexpr std::string_view kJunkDates[] = {"yesterday", "Sun, 06 Nov 1994 08:49:37 UTC"};
constexpr std::string_view kJunkTags[] = {"\"x\"", "junk", "W/\"\"", "\"a\", \"b\""};
// Range values that are not valid "bytes" ranges (or another unit): ignored, 200.
constexpr std::string_view kBadRanges[] = {
    "bytes=abc",   "chars=0-1",   "bytes=",
    "bytes=-",     "bytes=1-2-3", "0-1",
    "bytes=0-1,x", "bytes=5-3",   "bytes=18446744073709551616-"};
// Odd but valid ones: left to the invariants.
constexpr std::string_view kOddRanges[] = {"bytes=0-1,,2-3", " BYTES = 0-0 ", "bytes=0-0,-1",
                                           "bytes=-18446744073709551615"};
constexpr std::string_view kExtraLines[] = {"User-Agent: pagewire-fuzz",
                                            "Accept: */*",
                                            "Cookie: a=b",
                                            "If-Match: *",
                                            "If-Match: \"nope\"",
                                            "If-Unmodified-Since: Sun, 06 Nov 1994 08:49:37 GMT"};
constexpr std::size_t kFirstPrecondition = 4;  // these fail on every file: 412

std::string remembered_etag(int file, std::uint8_t coding) {
  const auto it = g->seen.find({file, coding});
  return it == g->seen.end() ? "\"none\"" : it->second.etag;
}

// ---- the Range field ----------------------------------------------------------------------

struct range_spec {
  bool suffix = false;
  std::uint64_t first = 0;
  std::optional<std::uint64_t> last;  // or the suffix length
};

// The documented rules (range.h): a spec with last < first makes the field invalid (whole);
// unsatisfiable specs drop out; more than 16, or satisfiable ranges out of ascending order
// or overlapping: whole; none satisfiable: 416.
void resolve_ranges(const std::vector<range_spec>& specs, std::uint64_t size, request& q) {
  q.expect_ranges.clear();
  q.ranges = range_outcome::whole;
  if (specs.empty() || specs.size() > kMaxRanges) return;
  for (const range_spec& s : specs)
    if (!s.suffix && s.last && *s.last < s.first) return;
  std::vector<byte_range> out;
  for (const range_spec& s : specs) {
    byte_range r{};
    if (s.suffix) {
      if (*s.last == 0 || size == 0) continue;
      r = {size - std::min(*s.last, size), size - 1};
    } else {
      if (s.first >= size) continue;
      r = {s.first, s.last ? std::min(*s.last, size - 1) : size - 1};
    }
    if (!out.empty() && r.first <= out.back().last) return;
    out.push_back(r);
  }
  q.expect_ranges = out;
  q.ranges = out.empty() ? range_outcome::unsatisfiable : range_outcome::ranges;
}

std::string spec_text(const range_spec& s) {
  if (s.suffix) return "-" + std::to_string(*s.last);
  return std::to_string(s.first) + "-" + (s.last ? std::to_string(*s.last) : "");
}

// A number near the size: 0, 1, size - 1, size, size + 1, size / 2, any below size + 2, any.
std::uint64_t pick(script& in, std::uint64_t size) {
  const std::uint8_t k = in.u8();
  const std::uint16_t v = in.u16();
  switch (k % 8) {
    case 0:
      return 0;
    case 1:
      return 1;
    case 2:
      return size == 0 ? 0 : size - 1;
    case 3:
      return size;
    case 4:
      return size + 1;
    case 5:
      return size / 2;
    case 6:
      return (std::uint64_t{v} << 3) % (size + 2);
    default:
      return v;
  }
}

// Ascending specs: count gaps and lengths scaled to the size (some may end past it).
std::vector<range_spec> ascending_specs(script& in, std::uint64_t size) {
  const std::size_t count = in.u8() % 20 + 2;
  const std::uint64_t step = std::max<std::uint64_t>(size / count, 2);
  std::vector<range_spec> specs;
  std::uint64_t p = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const std::uint64_t first = p + in.u8() * step / 512;
    const std::uint64_t last = first + in.u8() * step / 512;
    specs.push_back({false, first, last});
    p = last + 1;
  }
  return specs;
}

// Range kinds: 0 a-b, 1 -N, 2 N-, 3 ascending (up to 21), 4 two that may overlap, 5 invalid,
// 6 reversed, 7 odd.
std::string range_field(script& in, std::uint64_t size, request& q) {
  std::vector<range_spec> specs;
  switch (in.u8() % 8) {
    case 0: {
      const std::uint64_t a = pick(in, size);
      specs.push_back({false, a, a + pick(in, size)});
      break;
    }
    case 1:
      specs.push_back({true, 0, pick(in, size)});
      break;
    case 2:
      specs.push_back({false, pick(in, size), std::nullopt});
      break;
    case 3:
      specs = ascending_specs(in, size);
      break;
    case 4: {
      const std::uint64_t a = pick(in, size), b = a + pick(in, size);
      const std::uint64_t c = a + pick(in, size);
      specs = {{false, a, b}, {false, c, c + pick(in, size)}};
      break;
    }
    case 5:
      q.ranges = range_outcome::whole;
      return std::string(kBadRanges[in.u8() % std::size(kBadRanges)]);
    case 6: {
      const std::uint64_t a = pick(in, size);
      q.ranges = range_outcome::whole;
      return "bytes=" + std::to_string(a + 1 + in.u8()) + "-" + std::to_string(a);
    }
    default:
      q.ranges = range_outcome::unknown;
      return std::string(kOddRanges[in.u8() % std::size(kOddRanges)]);
  }
  resolve_ranges(specs, size, q);
  std::string v = "bytes=";
  for (std::size_t i = 0; i < specs.size(); ++i)
    v.append(i ? ", " : "").append(spec_text(specs[i]));
  return v;
}

// ---- building a request from the script ---------------------------------------------------

// Script bytes without the ones that would end a line, a field or the target.
std::string raw_bytes(script& in, std::size_t n, std::string_view drop) {
  std::string s;
  for (std::size_t i = 0; i < n; ++i) {
    const char c = static_cast<char>(in.u8());
    if (drop.find(c) == std::string_view::npos) s.push_back(c);
  }
  return s;
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

// A byte of a request-target (RFC 9112 §3.2: visible ASCII).
bool is_vchar(char c) {
  const auto u = static_cast<unsigned char>(c);
  return u > ' ' && u < 0x7f;
}

class builder {
 public:
  builder(script& in, request& q) : in_(in), q_(q) {}

  void build() {
    const std::uint8_t k = in_.u8();
    if (k >= 0xf8) return garbage();
    const method_def& m = kMethods[k % 16];
    q_.head = m.name == "HEAD";
    q_.get = m.name == "GET";
    q_.refusal = m.refusal;
    if (m.error) q_.errors.push_back(m.error);
    request_line(m);
    host();
    fields();
    line("");
    q_.head_bytes = q_.bytes.size();
    if (q_.head_bytes > kMaxHeadBytes || q_.fields > kMaxFields) q_.errors.push_back(431);
    q_.bytes += body_;
  }

 private:
  void garbage() {
    q_.garbage = q_.raw = true;
    q_.modelled = false;
    const std::size_t n = in_.u8() % 64 + 1;
    for (std::size_t i = 0; i < n; ++i)
      q_.bytes.push_back(static_cast<char>(in_.u8()));
  }

  void line(std::string_view s) { q_.bytes.append(s).append("\r\n"); }
  void field(std::string_view name, std::string_view value) {
    q_.bytes.append(name).append(": ").append(value).append("\r\n");
    ++q_.fields;
  }

  // The parser reads the method (a token) and the target (one or more visible bytes: all the
  // table's targets, not every raw one) before it checks the version (RFC 9112 §3): from
  // there on the server knows the method, whatever it refuses.
  void request_line(const method_def& m) {
    // The table's targets, then the fresh file, then two raw ones.
    const std::size_t t = in_.u8() % (kTargetCount + 3);
    std::string target;
    if (t <= kTargetCount) {
      q_.tgt = &g->targets[t];
      target = q_.tgt->text;
    } else {  // a few raw bytes, sometimes after a '/'
      q_.modelled = false;
      target = (t == kTargetCount + 1 ? "/" : "") + raw_bytes(in_, in_.u8() % 24, {"\r\n \0", 4});
    }
    const version_def& v = kVersions[in_.u8() % std::size(kVersions)];
    q_.http10 = v.http10;
    if (v.error) q_.errors.push_back(v.error);
    q_.method_known =
        !m.error && !target.empty() && std::all_of(target.begin(), target.end(), is_vchar);
    q_.bytes.append(m.name).append(" ").append(target).append(" ").append(v.text).append("\r\n");
  }

  // Host: mostly valid; missing (400 for 1.1), twice or invalid: 400.
  void host() {
    const std::uint8_t h = in_.u8() % 16;
    static constexpr std::string_view kHosts[] = {
        "x",        "x",     "x",     "x", "x", "x", "x", "x", "", "localhost:8080",
        "[::1]:80", "a%41b", "p.test"};
    if (h < std::size(kHosts)) return field("Host", kHosts[h]);
    if (h == 13) {
      if (!q_.http10) q_.errors.push_back(400);
      return;
    }
    if (h == 14) {
      field("Host", "x");
      field("Host", "x");
    } else {
      field("Host", "bad/host");
    }
    q_.errors.push_back(400);
  }

  void fields() {
    const std::uint8_t f = in_.u8();
    const int file = q_.file();
    const std::uint64_t size = file >= 0 ? g->files[file].bytes.size() : 1000;
    if (f & 1) {
      q_.range = true;
      field("Range", range_field(in_, size, q_));
    }
    if (f & 2) if_none_match(file);
    if (f & 4) if_modified_since(file);
    if (f & 8) if_range(file);
    if (f & 16) {
      const ae_def& a = kAcceptEncodings[in_.u8() % kAeCount];
      q_.ae = true;
      q_.codings = a.accepts;
      field("Accept-Encoding", a.value);
    }
    if (f & 32) connection();
    q_.keep_alive = q_.http10 ? ka_ && !close_ : !close_;
    if (f & 64) extra();
    if (f & 128) body();
  }

  // 0 "*", 1-3 the remembered ETag of identity / gzip / zstd, 4 its weak form, 5 a list
  // holding it, 6 junk.
  void if_none_match(int file) {
    const std::uint8_t m = in_.u8() % 7;
    const std::string id = remembered_etag(file, kIdentity);
    std::string v;
    q_.inm = true;
    switch (m) {
      case 0:
        v = "*";
        q_.inm_any = true;
        break;
      case 1:
      case 2:
      case 3:
        v = remembered_etag(file, static_cast<std::uint8_t>(1 << (m - 1)));
        q_.inm_tags = {v};
        break;
      case 4:
        v = "W/" + id;
        q_.inm_tags = {id};
        break;
      case 5:
        v = "\"junk\", " + id;
        q_.inm_tags = {"\"junk\"", id};
        break;
      default:
        v = kJunkTags[in_.u8() % std::size(kJunkTags)];
        break;
    }
    field("If-None-Match", v);
  }

  // 0-2 a far past date (three forms), 3 far future, 4 the remembered Last-Modified, 5-6 junk.
  void if_modified_since(int file) {
    q_.ims = in_.u8() % 7;
    const auto lm = g->last_modified.find(file);
    std::string_view v;
    if (q_.ims < 3) {
      v = kPastDates[q_.ims];
    } else if (q_.ims == 3) {
      v = kFutureDate;
    } else if (q_.ims == 4 && lm != g->last_modified.end()) {
      v = lm->second;
    } else {
      q_.ims = 5;
      v = kJunkDates[in_.u8() % std::size(kJunkDates)];
    }
    field("If-Modified-Since", v);
  }

  // Valid (the Range applies): 0 the identity ETag, 1 Last-Modified. Not: 2 weak, 3 another
  // date, 4 another tag, 5 the gzip ETag.
  void if_range(int file) {
    const std::uint8_t m = in_.u8() % 6;
    const auto lm = g->last_modified.find(file);
    std::string v;
    q_.if_range = true;
    if (m == 0 && g->seen.count({file, kIdentity})) {
      v = remembered_etag(file, kIdentity);
      q_.if_range_valid = true;
    } else if (m == 1 && lm != g->last_modified.end()) {
      v = lm->second;
      q_.if_range_valid = true;
    } else if (m == 2) {
      v = "W/" + remembered_etag(file, kIdentity);
    } else if (m == 3) {
      v = kPastDates[0];
    } else if (m == 5 && g->seen.count({file, kGzip})) {
      v = remembered_etag(file, kGzip);
    } else {
      v = "\"nope\"";
    }
    field("If-Range", v);
  }

  void connection() {
    static constexpr std::string_view kValues[] = {"close", "keep-alive", "Keep-Alive, foo",
                                                   "foo, CLOSE", "Upgrade"};
    const std::uint8_t c = in_.u8() % std::size(kValues);
    close_ = c == 0 || c == 3;
    ka_ = c == 1 || c == 2;
    field("Connection", kValues[c]);
  }

  // 0 a long field (431 past 16 KiB), 1 many fields (431 past 100), 2 a raw line, 3 a table
  // line (If-Match / If-Unmodified-Since among them).
  void extra() {
    switch (in_.u8() % 4) {
      case 0:
        field("X-Long", std::string(in_.u16() % 20'000, 'a'));
        break;
      case 1: {
        const std::size_t n = in_.u8();
        for (std::size_t i = 0; i < n; ++i)
          field("X-Many-" + std::to_string(i), std::to_string(i));
        break;
      }
      case 2:
        raw_line();
        break;
      default: {
        const std::size_t i = in_.u8() % std::size(kExtraLines);
        q_.precondition = i >= kFirstPrecondition;
        line(kExtraLines[i]);
        ++q_.fields;
        break;
      }
    }
  }

  // Raw bytes as a field line. One whose name changes framing (Content-Length,
  // Transfer-Encoding) or may add a 100 Continue (Expect) leaves the model: garbage.
  void raw_line() {
    const std::string s = raw_bytes(in_, in_.u8() % 48, {"\r\n\0", 3});
    if (s.empty()) return;  // an empty line would end the head
    q_.modelled = false;
    const std::string_view name = std::string_view(s).substr(0, s.find(':'));
    if (iequal(name, "content-length") || iequal(name, "transfer-encoding") ||
        iequal(name, "expect")) {
      q_.garbage = true;
    }
    q_.may_close |= iequal(name, "connection");
    line(s);
    ++q_.fields;
  }

  // 0 Content-Length and a body, 1 the same with Expect: 100-continue, 2 chunked (411, or
  // 400 for 1.0), 3 a Content-Length past 1 MiB (413), 4 both Content-Length and chunked (400).
  void body() {
    const std::uint8_t m = in_.u8() % 5;
    if (m <= 1) {
      const std::size_t n = in_.u8() % 48 + m;
      field("Content-Length", std::to_string(n));
      if (m == 1) {
        field("Expect", "100-continue");
        q_.may_continue = n > 0;
      }
      for (std::size_t i = 0; i < n; ++i)
        body_.push_back(static_cast<char>(fuzz_script::pattern(i, 0xb0d1)));
      return;
    }
    if (m == 3) {
      field("Content-Length", std::to_string(2 * kMaxBody));
      q_.errors.push_back(413);
      return;
    }
    if (m == 4) field("Content-Length", "5");
    field("Transfer-Encoding", "chunked");
    body_ = "5\r\nhello\r\n0\r\n\r\n";
    q_.errors.push_back(m == 4 || q_.http10 ? 400 : 411);
  }

  script& in_;
  request& q_;
  bool close_ = false, ka_ = false;
  std::string body_;
};

// ---- the bytes the client must not send ---------------------------------------------------

// Whether the parser refuses the line the server reads at `at` (empty lines skipped), by
// RFC 9112 §3: method SP request-target SP "HTTP/1." DIGIT. A line the bytes do not end: no.
bool refused_line(std::string_view bytes, std::size_t at) {
  while (bytes.substr(at).starts_with("\n") || bytes.substr(at).starts_with("\r\n"))
    at = bytes.find('\n', at) + 1;
  const std::size_t nl = bytes.find('\n', at);
  if (nl == std::string_view::npos) return false;
  std::string_view line = bytes.substr(at, nl - at);
  if (line.ends_with('\r')) line.remove_suffix(1);
  const auto method = std::find_if_not(line.begin(), line.end(), is_tchar);
  if (method == line.begin() || method == line.end() || *method != ' ') return true;
  const auto target = std::find_if_not(method + 1, line.end(), is_vchar);
  if (target == method + 1 || target == line.end() || *target != ' ') return true;
  const std::string_view version(target + 1, line.end());
  return !(version.size() == 8 && version.starts_with("HTTP/1.") && version[7] >= '0' &&
           version[7] <= '9');
}

// The first place from `at` where bytes the server may read as a request that asks to close
// could lie: "HTTP/1.0", or "close" in any case.
std::size_t close_marker(std::string_view bytes, std::size_t at) {
  std::string lower(bytes.substr(at));
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const std::size_t a = bytes.find("HTTP/1.0", at), b = lower.find("close");
  return std::min(a, b == std::string::npos ? b : at + b);
}

// Where the bytes the client must not send begin (plan::must_not_send): after the first
// request that asked to close, which the server answers, then closes lingering only if input
// is already waiting (like nginx), so later bytes may meet a reset. None after a request the
// parser refused first: the server closes at once but lingers always. Unknowns are taken the
// tolerant way: a request with a raw field line may ask to close (a Connection line) and is
// taken as not refused; after raw bytes whose first line the parser accepts, or after a raw
// Content-Length or the like, the server's requests may begin anywhere, so these bytes begin
// at the first that may ask to close.
std::size_t must_not_send(const plan& p) {
  std::size_t end = 0;
  for (const request& q : p.requests) {
    const std::size_t start = end;
    end += q.bytes.size();
    if (q.raw)
      return refused_line(p.bytes, start) ? std::string::npos : close_marker(p.bytes, start);
    if (!q.errors.empty() || !q.method_known) return std::string::npos;
    if (!q.keep_alive || q.may_close) return end;
    if (q.garbage) return close_marker(p.bytes, end);
  }
  return std::string::npos;
}

plan read_plan(script& in) {
  plan p;
  const std::uint8_t b0 = in.u8();
  const std::size_t n = (b0 >> 4) % kMaxRequests + 1;
  p.requests.resize(n);
  for (request& q : p.requests) {
    builder(in, q).build();
    p.bytes += q.bytes;
  }
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < (b0 & 7u); ++i)
    cuts.push_back(in.u16() % (p.bytes.size() + 1));
  request& last = p.requests.back();
  if ((b0 & 8) && last.bytes.size() >= 2) {
    const std::size_t keep = in.u16() % (last.bytes.size() - 1) + 1;
    p.bytes.resize(p.bytes.size() - (last.bytes.size() - keep));
    last.bytes.resize(keep);
    last.truncated = true;
  }
  for (std::size_t c : cuts)
    if (c > 0 && c < p.bytes.size()) p.cuts.push_back(c);
  std::sort(p.cuts.begin(), p.cuts.end());
  p.must_not_send = must_not_send(p);
  const std::uint8_t t = in.u8();
  p.close_notify = !(t & 1);
  p.record = kRecordSizes[(t >> 1) & 7];
  return p;
}

// ---- failure reports ----------------------------------------------------------------------

const plan* g_plan = nullptr;
std::string_view g_stream;
std::size_t g_at = 0;  // where the response being checked starts
bool g_reset = false;  // the exchange ended in a tolerated reset

void print_escaped(std::string_view s, std::size_t limit) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < limit; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\n') {
      out += "\\n\n    ";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c < 0x20 || c >= 0x7f || c == '\\') {
      char b[5];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    } else {
      out += static_cast<char>(c);
    }
  }
  std::fprintf(stderr, "    %s%s\n", out.c_str(), s.size() > limit ? " [...]" : "");
}

void report(const char* what, int line) {
  std::fprintf(stderr, "server_fuzz: invariant failed: %s (line %d)\n", what, line);
  if (!g_plan) return;
  for (std::size_t i = 0; i < g_plan->requests.size(); ++i) {
    const request& q = g_plan->requests[i];
    std::fprintf(stderr, "  request %zu (%zu bytes%s%s%s):\n", i, q.bytes.size(),
                 q.garbage ? ", garbage" : "", q.truncated ? ", cut" : "",
                 q.modelled ? ", modelled" : "");
    print_escaped(q.bytes, 1500);
  }
  std::fprintf(stderr, "  writes cut at:");
  for (std::size_t c : g_plan->cuts)
    std::fprintf(stderr, " %zu", c);
  std::fprintf(stderr, "\n");
  if (g_plan->must_not_send != std::string::npos)
    std::fprintf(stderr, "  bytes from %zu follow a request that may ask to close\n",
                 g_plan->must_not_send);
  if (kTls) {
    std::fprintf(stderr, "  TLS records of at most %zu plaintext bytes, then %s\n", g_plan->record,
                 g_plan->close_notify ? "close_notify and SHUT_WR" : "a bare SHUT_WR");
  }
  std::fprintf(stderr, "  received %zu bytes%s; the response at %zu:\n", g_stream.size(),
               g_reset ? " (then a tolerated reset)" : "", g_at);
  print_escaped(g_stream.substr(std::min(g_at, g_stream.size())), 3000);
  if (g_at > 0) {
    std::fprintf(stderr, "  the stream from its start:\n");
    print_escaped(g_stream, 3000);
  }
}

// check() that prints the requests and the stream first; an expression (`return require(..)`).
void require_that(bool ok, const char* what, int line) {
  if (ok) return;
  report(what, line);
  std::abort();
}
#define require(ok) require_that(static_cast<bool>(ok), #ok, __LINE__)

// ---- the client's transports --------------------------------------------------------------

int connect_to_server() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  check(fd >= 0);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(g->port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  check(rc == 0 || errno == EINPROGRESS);
  return fd;
}

// What one call of a transport did on the non-blocking socket: the client's poll loop acts
// on it (class client).
struct io {
  std::size_t n = 0;         // bytes taken for sending, or received
  short wait = 0;            // it would block: poll for this (POLLIN or POLLOUT), then call again
  bool eof = false;          // receive: the stream ended
  bool cut = false;          // ... without the server's close_notify (TLS)
  int err = 0;               // a socket call failed: its errno
  std::string failure = {};  // a TLS failure, in OpenSSL's words
  bool ok() const { return wait == 0 && !eof && err == 0 && failure.empty(); }
};

// The two transports answer the same calls: send(bytes) takes some of them, receive(buf)
// reads, shut_down() ends the client's side (called again while it says wait), buffered()
// says whether received bytes wait inside the transport, where poll cannot see them.

// Plain TCP: send(2), recv(2), shutdown(SHUT_WR).
class socket_transport {
 public:
  socket_transport(int fd, const plan&) : fd_(fd) {}

  io send(std::string_view bytes) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) return {.n = static_cast<std::size_t>(n)};
    return errno == EAGAIN ? io{.wait = POLLOUT} : io{.err = errno};
  }
  io receive(char* buf, std::size_t size) {
    const ssize_t n = ::recv(fd_, buf, size, 0);
    if (n > 0) return {.n = static_cast<std::size_t>(n)};
    if (n == 0) return {.eof = true};
    return errno == EAGAIN ? io{.wait = POLLIN} : io{.err = errno};
  }
  io shut_down() { return ::shutdown(fd_, SHUT_WR) == 0 ? io{} : io{.err = errno}; }
  bool buffered() const { return false; }

 private:
  const int fd_;
};

// TLS 1.3 over the same socket, OpenSSL's client (g->tls): SSL_write, SSL_read, SSL_shutdown,
// their WANT_READ / WANT_WRITE answered by the client's poll loop. The handshake comes first,
// from whichever call comes (SSL_read drives it too). send() is one SSL_write of at most
// plan::record bytes, so one record; one that would block counts as taken: OpenSSL sealed the
// record, may have sent part of it, and keeps the rest for a retry with the same bytes, which
// the next send() or shut_down() makes before anything else. receive() after the server's
// close_notify reads the socket itself: only its FIN may follow. shut_down(): close_notify
// (unless the script says not), then SHUT_WR.
class tls_transport {
 public:
  tls_transport(int fd, const plan& p)
      : fd_(fd), ssl_(SSL_new(g->tls)), record_(p.record), close_notify_(p.close_notify) {
    check(ssl_ != nullptr && SSL_set_fd(ssl_, fd) == 1);
    check(SSL_set_tlsext_host_name(ssl_, "localhost") == 1);
    check(SSL_set1_host(ssl_, "localhost") == 1);
    SSL_set_connect_state(ssl_);
  }
  ~tls_transport() { SSL_free(ssl_); }
  tls_transport(const tls_transport&) = delete;
  tls_transport& operator=(const tls_transport&) = delete;

  io send(std::string_view bytes) {
    if (io r = ready(); !r.ok()) return r;
    const std::string_view record = bytes.substr(0, record_);
    io r = attempt([&] { return SSL_write(ssl_, record.data(), static_cast<int>(record.size())); });
    if (r.wait == 0) return r;
    pending_ = record;
    return {.n = record.size()};
  }

  io receive(char* buf, std::size_t size) {
    if (peer_closed_) return after_close_notify(buf, size);
    io r = attempt([&] { return SSL_read(ssl_, buf, static_cast<int>(size)); }, true);
    if (!r.eof || r.cut) return r;
    peer_closed_ = true;  // close_notify
    return after_close_notify(buf, size);
  }

  io shut_down() {
    if (io r = ready(); !r.ok()) return r;
    if (close_notify_ && !notified_) {
      io r = attempt([&] {
        const int n = SSL_shutdown(ssl_);  // 0: sent, the server's not yet read; 1: both
        return n >= 0 ? 1 : n;
      });
      if (!r.ok()) return r;
      notified_ = true;
    }
    return ::shutdown(fd_, SHUT_WR) == 0 ? io{} : io{.err = errno};
  }

  bool buffered() const { return !peer_closed_ && SSL_pending(ssl_) > 0; }

 private:
  // The handshake done and the record of the last write out; else what stands in the way.
  io ready() {
    if (!SSL_is_init_finished(ssl_)) {
      if (io r = attempt([&] { return SSL_do_handshake(ssl_); }); !r.ok()) return r;
    }
    if (!pending_.empty()) {
      io r = attempt(
          [&] { return SSL_write(ssl_, pending_.data(), static_cast<int>(pending_.size())); });
      if (!r.ok()) return r;
      pending_ = {};
    }
    return {};
  }

  // Runs one SSL_* call (> 0: done) and says what came of it. `reading`: SSL_read, whose
  // SSL_ERROR_ZERO_RETURN is the server's close_notify (for a write it may hide a failed
  // send after it: errno tells).
  template <class F>
  io attempt(F call, bool reading = false) {
    ERR_clear_error();
    errno = 0;
    const int r = call();
    const int e = errno;
    if (r > 0) return {.n = static_cast<std::size_t>(r)};
    switch (SSL_get_error(ssl_, r)) {
      case SSL_ERROR_WANT_READ:
        return {.wait = POLLIN};
      case SSL_ERROR_WANT_WRITE:
        return {.wait = POLLOUT};
      case SSL_ERROR_ZERO_RETURN:
        if (!reading && e != 0 && e != EAGAIN) return {.err = e};
        return {.eof = true};
      case SSL_ERROR_SYSCALL:
        if (e != 0) return {.err = e};
        return {.eof = true, .cut = true};  // OpenSSL 1.1's word for an EOF mid-stream
      default:
        return failure();
    }
  }

  // SSL_ERROR_SSL: an EOF without close_notify (OpenSSL 3's word for it), or a failure.
  io failure() {
    std::string what;
    bool eof = false;
    char b[256];
    while (const unsigned long e = ERR_get_error()) {
      eof |=
          ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING;
      ERR_error_string_n(e, b, sizeof b);
      what.append(what.empty() ? "" : "; ").append(b);
    }
    if (eof) return {.eof = true, .cut = true};
    const long v = SSL_get_verify_result(ssl_);
    if (v != X509_V_OK) what.append("; certificate: ").append(X509_verify_cert_error_string(v));
    return {.failure = what.empty() ? "SSL_ERROR_SSL with no reason queued" : what};
  }

  // After the server's close_notify: its FIN, nothing else.
  io after_close_notify(char* buf, std::size_t size) {
    const ssize_t n = ::recv(fd_, buf, size, 0);
    if (n == 0) return {.eof = true};
    if (n > 0) return {.failure = std::to_string(n) + " bytes after the server's close_notify"};
    return errno == EAGAIN ? io{.wait = POLLIN} : io{.err = errno};
  }

  const int fd_;
  SSL* const ssl_;
  const std::size_t record_;
  const bool close_notify_;
  std::string_view pending_;  // a write's record not yet out: retried first
  bool notified_ = false;     // our close_notify went out
  bool peer_closed_ = false;  // the server's close_notify came
};

using transport = std::conditional_t<kTls, tls_transport, socket_transport>;

// ---- the exchange -------------------------------------------------------------------------

struct received {
  std::string bytes;   // everything read up to EOF (or the reset)
  bool reset = false;  // a tolerated reset came
};

// One connection: writes the plan's bytes in its chunks (TCP_NODELAY: a send each; over TLS,
// SSL_writes of at most plan::record bytes), then ends its side (SHUT_WR; over TLS,
// close_notify first unless the script says not), reading all along up to EOF (over TLS:
// close_notify, then EOF). No EOF by the deadline: the server hung. sent_ counts the bytes
// the transport took (over TLS: plaintext in records sealed, see tls_transport).
class client {
 public:
  explicit client(const plan& p) : p_(p), fd_(connect_to_server()), t_(fd_, p) {}
  ~client() { ::close(fd_); }

  received run() {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kDeadlineMs);
    while (!eof_) {
      if (!shut_ && sent_ == p_.bytes.size()) {
        shut_down();
        if (eof_) break;
      }
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      g_stream = in_.bytes;
      g_at = in_.bytes.size();
      require(left.count() > 0 && "no EOF from the server: it hung");
      pollfd pfd{fd_, static_cast<short>(recv_wait_ | (shut_ ? 0 : send_wait_)), 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) < 0) {
        check(errno == EINTR);
        continue;
      }
      if (!shut_ && (pfd.revents & send_wait_)) send_next();
      if (pfd.revents & (recv_wait_ | POLLHUP | POLLERR)) receive();
    }
    return std::move(in_);
  }

 private:
  // Ends the client's side; over TLS this may take calls (close_notify waits for room).
  void shut_down() {
    const io r = t_.shut_down();
    shut_ = r.wait == 0;
    waited(r, send_wait_, POLLOUT);
    settle("shutdown", r);
  }

  // Up to the next write cut (over TLS, one record of it).
  void send_next() {
    if (sent_ == p_.bytes.size()) return;  // shut_down() is due
    while (cut_ < p_.cuts.size() && p_.cuts[cut_] <= sent_)
      ++cut_;
    const std::size_t end = cut_ < p_.cuts.size() ? p_.cuts[cut_] : p_.bytes.size();
    const io r = t_.send(std::string_view(p_.bytes).substr(sent_, end - sent_));
    sent_ += r.n;
    waited(r, send_wait_, POLLOUT);
    settle("send", r);
  }

  void receive() {
    char buf[64 * 1024];
    do {
      const io r = t_.receive(buf, sizeof buf);
      in_.bytes.append(buf, r.n);
      eof_ = eof_ || (r.eof && !r.cut);
      waited(r, recv_wait_, POLLIN);
      settle("recv", r);
    } while (!eof_ && t_.buffered());
  }

  // What each side waits for: its own event, or what its transport asked for. A side waiting
  // for the other side's event (TLS: a write for the handshake's reply) tries again once the
  // other side made a call.
  void waited(const io& r, short& wait, short own) {
    wait = r.wait ? r.wait : own;
    short& other = own == POLLIN ? send_wait_ : recv_wait_;
    if (other == own) other = own == POLLIN ? POLLOUT : POLLIN;
  }

  // What went wrong in a call, if anything: a reset, a TLS failure, the end without
  // close_notify.
  void settle(const char* op, const io& r) {
    if (r.err == 0 && r.failure.empty() && !r.cut) return;
    g_stream = in_.bytes;
    g_at = in_.bytes.size();
    if (r.err) reset_seen(op, r.err);
    if (!r.failure.empty()) tls_failed(op, r.failure);
    if (r.cut) cut_short(op);
  }

  // A failed send, shutdown or recv: the server reset the connection, which its lingering
  // close is there to prevent (RFC 9112 §9.6). A finding, unless some of the bytes the client
  // must not send went out (plan::must_not_send). Then the client sends no more, and reads
  // what the socket still holds (a failed recv: nothing).
  void reset_seen(const char* op, int err) {
    const bool receiving = std::string_view(op) == "recv";
    const bool reset = err == ECONNRESET || (!receiving && (err == EPIPE || err == ENOTCONN));
    const bool tolerated = sent_ > p_.must_not_send;
    if (!reset || !tolerated) {
      std::fprintf(stderr, "server_fuzz: %s: %s, %zu of %zu bytes sent\n", op, std::strerror(err),
                   sent_, p_.bytes.size());
    }
    require(reset && "a socket error other than a reset");
    require(tolerated && "the server reset the connection");
    in_.reset = g_reset = shut_ = true;
    eof_ = eof_ || receiving;
  }

  // A TLS failure (a bad record, an alert, bytes after close_notify): a finding, unless a
  // tolerated reset came first; then the exchange ends with it.
  void tls_failed(const char* op, const std::string& what) {
    if (!in_.reset) {
      std::fprintf(stderr, "server_fuzz: %s: TLS failure: %s; %zu of %zu bytes sent\n", op,
                   what.c_str(), sent_, p_.bytes.size());
    }
    require(in_.reset && "a TLS failure on the client side");
    shut_ = eof_ = true;
  }

  // The server's stream ended without its close_notify (RFC 8446 §6.1: each party sends one
  // before it closes its write side, so that a truncation shows): a finding, unless a reset
  // would be tolerated here; then it is taken as one (the stream may end early).
  void cut_short(const char* op) {
    const bool tolerated = in_.reset || sent_ > p_.must_not_send;
    if (!tolerated) {
      std::fprintf(stderr, "server_fuzz: %s: EOF without close_notify, %zu of %zu bytes sent\n", op,
                   sent_, p_.bytes.size());
    }
    require(tolerated && "the server ended its stream without close_notify");
    in_.reset = g_reset = shut_ = eof_ = true;
  }

  const plan& p_;
  const int fd_;
  transport t_;
  received in_;
  std::size_t sent_ = 0, cut_ = 0;  // bytes sent (taken), the next write cut
  short send_wait_ = POLLOUT, recv_wait_ = POLLIN;
  bool shut_ = false, eof_ = false;
};

// ---- decoding -----------------------------------------------------------------------------

// The decoded body; `cut`: of a body cut short, the bytes it decodes to so far.
std::optional<std::string> gunzip(std::string_view in, bool cut) {
  z_stream z{};
  if (inflateInit2(&z, 15 + 16) != Z_OK) return std::nullopt;
  std::string out;
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  int r = Z_OK;
  char buf[16384];
  while (out.size() <= kMaxDecoded) {
    z.next_out = reinterpret_cast<Bytef*>(buf);
    z.avail_out = sizeof buf;
    r = inflate(&z, Z_NO_FLUSH);
    out.append(buf, sizeof buf - z.avail_out);
    if (r == Z_STREAM_END && z.avail_in > 0) r = inflateReset(&z);  // another member
    if (r != Z_OK) break;
    if (z.avail_in == 0 && z.avail_out > 0) break;  // input used up mid-member
  }
  inflateEnd(&z);
  const bool ended = r == Z_STREAM_END || (cut && (r == Z_OK || r == Z_BUF_ERROR));
  if (!ended || z.avail_in != 0) return std::nullopt;
  return out;
}

std::optional<std::string> unzstd(std::string_view in, bool cut) {
  ZSTD_DCtx* d = ZSTD_createDCtx();
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  std::string out;
  char buf[16384];
  std::size_t r = 1;
  while ((src.pos < src.size || r != 0) && out.size() <= kMaxDecoded) {
    ZSTD_outBuffer dst{buf, sizeof buf, 0};
    r = ZSTD_decompressStream(d, &dst, &src);
    if (ZSTD_isError(r)) break;
    out.append(buf, dst.pos);
    if (src.pos == src.size && dst.pos == 0 && r != 0) break;  // cut short
  }
  ZSTD_freeDCtx(d);
  if (ZSTD_isError(r) || (r != 0 && !cut) || src.pos != src.size) return std::nullopt;
  return out;
}

// ---- responses ----------------------------------------------------------------------------

struct response {
  std::size_t start = 0;  // offset of the status line in the stream
  int status = 0;
  std::string_view reason;
  std::vector<std::pair<std::string_view, std::string_view>> fields;
  std::optional<std::uint64_t> length;  // Content-Length
  std::string_view body;
  bool close = false;
  std::uint8_t coding = kIdentity;

  std::optional<std::string_view> field(std::string_view name) const {
    for (const auto& [n, v] : fields)
      if (iequal(n, name)) return v;
    return std::nullopt;
  }
  std::size_t count(std::string_view name) const {
    std::size_t c = 0;
    for (const auto& f : fields)
      c += iequal(f.first, name);
    return c;
  }
};

std::optional<std::uint64_t> number(std::string_view s) {
  if (s.empty() || s.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

// "bytes a-b/LEN" or "bytes */LEN".
struct content_range {
  bool unsatisfied = false;
  std::uint64_t first = 0, last = 0, size = 0;
};
std::optional<content_range> parse_content_range(std::string_view v) {
  if (!v.starts_with("bytes ")) return std::nullopt;
  v.remove_prefix(6);
  const auto slash = v.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  const auto size = number(v.substr(slash + 1));
  if (!size) return std::nullopt;
  const auto span = v.substr(0, slash);
  if (span == "*") return content_range{true, 0, 0, *size};
  const auto dash = span.find('-');
  if (dash == std::string_view::npos) return std::nullopt;
  const auto a = number(span.substr(0, dash)), b = number(span.substr(dash + 1));
  if (!a || !b) return std::nullopt;
  return content_range{false, *a, *b, *size};
}

std::uint8_t coding_bit(std::string_view token) {
  return token == "gzip" ? kGzip : token == "zstd" ? kZstd : 0;
}

// Thrown where the stream ends early after a tolerated reset, once what came was checked.
struct stream_cut {};

// A prefix of a status line's start (what a reset may leave of a head).
bool status_line_prefix(std::string_view s) {
  static constexpr std::string_view kStart = "HTTP/1.1 ";
  return s.substr(0, kStart.size()) == kStart.substr(0, s.size());
}

class oracle {
 public:
  oracle(const plan& p, const received& in) : p_(p), s_(in.bytes), reset_(in.reset) {}

  void run() {
    require(s_.find(kSecret) == std::string_view::npos);
    try {
      responses();
    } catch (const stream_cut&) {
    }
  }

 private:
  void responses() {
    for (const request& q : p_.requests) {
      if (q.garbage) return rest_after_garbage();
      if (q.truncated) return cut_request(q);
      if (at_end()) return require((closed_ || reset_) && "a complete request got no response");
      require(!closed_ && "a response after Connection: close");
      matched(q);
    }
    require(at_end() && "bytes after the last response");
  }

  bool at_end() const { return pos_ == s_.size(); }

  // ---- framing ----

  // Parses the head at pos_ (the status line and fields up to the empty line).
  response head() {
    g_at = pos_;
    response r;
    r.start = pos_;
    const auto end = s_.find("\r\n\r\n", pos_);
    if (end == std::string_view::npos) {
      require(reset_ && "a head without its end");
      require(status_line_prefix(s_.substr(pos_)));
      throw stream_cut{};
    }
    std::string_view h = s_.substr(pos_, end + 2 - pos_);
    pos_ = end + 4;
    const auto eol = h.find("\r\n");
    const std::string_view status = h.substr(0, eol);
    h.remove_prefix(eol + 2);
    require(status.size() >= 13 && status.starts_with("HTTP/1.1 ") && status[12] == ' ');
    const auto code = number(status.substr(9, 3));
    require(code && *code >= 100 && *code <= 599);
    r.status = static_cast<int>(*code);
    r.reason = status.substr(13);
    while (!h.empty()) {
      const auto e = h.find("\r\n");
      const std::string_view l = h.substr(0, e);
      h.remove_prefix(e + 2);
      const auto colon = l.find(": ");
      require(colon != std::string_view::npos && colon > 0);
      const std::string_view name = l.substr(0, colon);
      require(std::all_of(name.begin(), name.end(), is_tchar));
      r.fields.emplace_back(name, l.substr(colon + 2));
    }
    common_fields(r);
    return r;
  }

  // What every response carries (1xx: nothing).
  void common_fields(response& r) {
    if (r.status < 200) return require(r.fields.empty() && r.status == 100);
    require(r.count("Date") == 1);
    require(r.count("Content-Length") <= 1);
    if (const auto cl = r.field("Content-Length")) {
      r.length = number(*cl);
      require(r.length.has_value());
    }
    require(r.length || r.status == 304);
    const auto conn = r.field("Connection");
    r.close = conn == "close";
    require(!conn || *conn == "close" || *conn == "keep-alive");
    if (const auto ce = r.field("Content-Encoding")) {
      r.coding = coding_bit(*ce);
      require(r.coding != 0 && r.count("Content-Encoding") == 1);
      // A coded response names the field it depends on, and Range is for identity only.
      const auto vary = r.field("Vary");
      require(vary && vary->find("Accept-Encoding") != std::string_view::npos);
      require(r.status != 206 && r.status != 416);
    }
  }

  // Content-Length bytes; cut short only by a tolerated reset (`q`: the request, when known).
  void take_body(response& r, bool has_body, const request* q) {
    if (!has_body) return;
    if (*r.length > s_.size() - pos_) cut_body(r, q);
    r.body = s_.substr(pos_, *r.length);
    pos_ += *r.length;
  }

  // The stream ends in a body: after a reset, what came (decoded) must begin what was due,
  // where the harness knows it: an error text, a whole file, one range of it.
  [[noreturn]] void cut_body(const response& r, const request* q) {
    require(reset_ && "a body cut short");
    if (const std::optional<std::string> due = due_body(r, q)) {
      const auto got = decode(r, s_.substr(pos_), true);
      require(got && std::string_view(*due).starts_with(*got) && "a cut body");
    }
    throw stream_cut{};
  }

  static std::optional<std::string> due_body(const response& r, const request* q) {
    if (r.status >= 400 || r.status == 301) return status_text(r);
    if (!q || q->file() < 0) return std::nullopt;
    const std::string& bytes = g->files[q->file()].bytes;
    if (r.status == 200) return bytes;
    const auto cr = parse_content_range(r.field("Content-Range").value_or(""));
    if (r.status != 206 || !cr || cr->unsatisfied || cr->first >= bytes.size()) return std::nullopt;
    return bytes.substr(cr->first, *r.length);
  }

  // An optional interim 100 Continue (Expect: 100-continue with a body still to come).
  void skip_continue(const request& q) {
    static constexpr std::string_view k100 = "HTTP/1.1 100 Continue\r\n\r\n";
    if (q.may_continue && s_.substr(pos_).starts_with(k100)) pos_ += k100.size();
  }

  // ---- matching ----

  void matched(const request& q) {
    skip_continue(q);
    if (at_end()) return require(reset_ && "a 100 Continue without the response");
    response r = head();
    require(r.status >= 200);
    const bool content = has_body(q, r);
    take_body(r, content, &q);
    closed_ = r.close;
    if (r.close) require(at_end() && "bytes after a Connection: close response");
    error_text(r, content);
    decoded_secret(r);
    if (q.file() >= 0) file_response(q, r);
    if (q.modelled) modelled(q, r);
  }

  // RFC 9112 §6.3: no content for 304, nor for any HEAD whose method the parser read (errors
  // included, a refused version too); a HEAD line refused before that gets the error text.
  static bool has_body(const request& q, const response& r) {
    return r.status != 304 && !(q.head && q.method_known);
  }

  // The last request, cut short: at most one response, an error that closes.
  void cut_request(const request& q) {
    skip_continue(q);
    if (at_end()) return;
    require(!closed_);
    response r = head();
    require(r.status >= 400 && r.close);
    const bool content = has_body(q, r);
    take_body(r, content, &q);
    error_text(r, content);
    require(at_end() && "bytes after the answer to a cut request");
  }

  // After garbage: well-formed responses, none after one that closes. Which request each
  // answers is unknown, so a response has no content (a HEAD's) exactly when the next
  // response, or the end, follows its head: no body served here begins with "HTTP/1.1 "
  // (the files' texts never hold "HTTP/"; error texts begin with their code).
  void rest_after_garbage() {
    while (!at_end()) {
      require(!closed_ && "a response after Connection: close");
      response r = head();
      closed_ = r.close;
      if (r.status < 200) continue;
      const std::string_view next = s_.substr(pos_);
      const bool content = r.status != 304 && !next.empty() && !next.starts_with("HTTP/1.1 ") &&
                           !(reset_ && status_line_prefix(next));
      take_body(r, content, nullptr);
      decoded_secret(r);
      error_text(r, content);
    }
  }

  // ---- bodies ----

  static std::string status_text(const response& r) {
    return std::to_string(r.status) + " " + std::string(r.reason) + "\n";
  }

  // An error, or a redirect, says its status line: "404 Not Found\n" (with no content, to
  // HEAD: its Content-Length is the text's, as a GET's would be).
  void error_text(const response& r, bool content) {
    if (r.status < 400 && r.status != 301) return;
    require(r.field("Content-Type") == "text/plain; charset=utf-8");
    if (!content) return require(*r.length == status_text(r).size());
    require(r.body == status_text(r));
  }

  static std::optional<std::string> decode(const response& r, std::string_view body,
                                           bool cut = false) {
    if (r.coding == kGzip) return gunzip(body, cut);
    if (r.coding == kZstd) return unzstd(body, cut);
    return std::string(body);
  }

  // Compression must not hide the marker either (whatever the target).
  void decoded_secret(const response& r) {
    if (r.coding == kIdentity || r.body.empty() || r.status != 200) return;
    const auto d = decode(r, r.body);
    require(d && "a coded body that does not decode");
    require(d->find(kSecret) == std::string::npos);
  }

  // ---- files ----

  void file_response(const request& q, const response& r) {
    const int file = q.file();
    const std::string& bytes = g->files[file].bytes;
    if ((r.status >= 200 && r.status < 300) || r.status == 304) validators(file, r);
    switch (r.status) {
      case 200:
        return whole(q, r, file);
      case 206:  // a raw field line may hold a Range the model does not know of
        require(q.get && (q.range || !q.modelled) && r.coding == kIdentity);
        if (r.field("Content-Range")) return single_part(r, bytes);
        return multipart(r, bytes);
      case 416: {
        require(q.get && (q.range || !q.modelled));
        const auto cr = parse_content_range(r.field("Content-Range").value_or(""));
        require(cr && cr->unsatisfied && cr->size == bytes.size());
        return;
      }
      default:
        return;
    }
  }

  // ETag, Last-Modified, and a 200's Content-Length: the same all run per (file, coding).
  void validators(int file, const response& r) {
    const auto etag = r.field("ETag");
    const auto lm = r.field("Last-Modified");
    require(etag && etag->size() > 2 && etag->front() == '"' && etag->back() == '"');
    require(lm.has_value());
    remembered& m = g->seen[{file, r.coding}];
    if (m.etag.empty()) m.etag = *etag;
    require(m.etag == *etag && "the ETag changed");
    auto [it, fresh] = g->last_modified.emplace(file, std::string(*lm));
    require(it->second == *lm && "Last-Modified changed");
    if (r.status != 200) return;
    if (!m.length) m.length = *r.length;
    require(*m.length == *r.length && "a 200's Content-Length changed");
  }

  void whole(const request& q, const response& r, int file) {
    const std::string& bytes = g->files[file].bytes;
    if (r.coding == kIdentity) require(*r.length == bytes.size());
    if (q.head) return;
    const auto d = decode(r, r.body);
    require(d && *d == bytes && "a 200 body that is not the file");
  }

  void single_part(const response& r, const std::string& bytes) {
    const auto cr = parse_content_range(*r.field("Content-Range"));
    require(cr && !cr->unsatisfied && cr->size == bytes.size());
    require(cr->first <= cr->last && cr->last < bytes.size());
    require(*r.length == cr->last - cr->first + 1);
    require(r.body == std::string_view(bytes).substr(cr->first, *r.length));
    got_ranges_ = {{cr->first, cr->last}};
  }

  // multipart/byteranges: "--B\r\n" fields "\r\n\r\n" slice, "\r\n--B" then "\r\n" (another
  // part) or "--\r\n" (the end of the body).
  void multipart(const response& r, const std::string& bytes) {
    const std::string_view type = r.field("Content-Type").value_or("");
    static constexpr std::string_view kType = "multipart/byteranges; boundary=";
    require(type.starts_with(kType) && type.size() > kType.size());
    const std::string delim = "--" + std::string(type.substr(kType.size()));
    std::string_view b = r.body;
    got_ranges_.clear();
    require(b.starts_with(delim + "\r\n"));
    b.remove_prefix(delim.size() + 2);
    for (;;) {
      const auto end = b.find("\r\n\r\n");
      require(end != std::string_view::npos);
      const std::string_view fields = b.substr(0, end + 2);
      b.remove_prefix(end + 4);
      require(fields.starts_with("Content-Type: "));
      const auto at = fields.find("\r\nContent-Range: ");
      require(at != std::string_view::npos);
      const auto cr = parse_content_range(fields.substr(at + 17, fields.size() - at - 19));
      require(cr && !cr->unsatisfied && cr->size == bytes.size());
      require(cr->first <= cr->last && cr->last < bytes.size());
      require(got_ranges_.empty() || cr->first > got_ranges_.back().last);
      const std::size_t n = cr->last - cr->first + 1;
      require(b.size() >= n && b.substr(0, n) == std::string_view(bytes).substr(cr->first, n));
      got_ranges_.push_back({cr->first, cr->last});
      b.remove_prefix(n);
      require(b.starts_with("\r\n" + delim));
      b.remove_prefix(delim.size() + 2);
      if (b == "--\r\n") break;
      require(b.starts_with("\r\n"));
      b.remove_prefix(2);
    }
    require(got_ranges_.size() >= 2 && got_ranges_.size() <= kMaxRanges);
  }

  // ---- the model ----

  void modelled(const request& q, const response& r) {
    // Parse errors close; otherwise keep-alive as the request asked (1.0 says so).
    if (!q.errors.empty()) {
      require(std::count(q.errors.begin(), q.errors.end(), r.status) > 0);
      return require(r.close);
    }
    require(r.close == !q.keep_alive);
    if (q.http10 && q.keep_alive) require(r.field("Connection") == "keep-alive");
    if (q.refusal) {
      require(r.status == q.refusal);
      if (r.status == 405) require(r.field("Allow") == "GET, HEAD");
      return;
    }
    switch (q.tgt->k) {
      case kind::file:
        return modelled_file(q, r);
      case kind::missing:
        return require(r.status == 404);
      case kind::escape:
        return require(r.status == 404 || r.status == 403);
      case kind::bad:
        return require(r.status == 400);
      case kind::redirect:
        require(r.status == 301);
        return require(r.field("Location") == q.tgt->location);
      case kind::stats:
        require(r.status == 200);
        return require(r.field("Content-Type") == "application/json");
    }
  }

  void modelled_file(const request& q, const response& r) {
    const bool identity_ok = q.codings & kIdentity;
    // Negotiation comes first: 406 exactly when identity is refused and no coding fits.
    if (r.status == 406) return require(!identity_ok);
    // Then If-Match "nope" / If-Unmodified-Since 1994: 412 on any existing file.
    if (q.precondition) return require(r.status == 412);
    // A coding the client accepts; identity when none was asked for, or when a Range will
    // be honoured (RFC 9110 §14.2: GET, a range set not ignored, an If-Range that holds).
    // HEAD, an ignored Range and a failing If-Range keep the client's preferred coding.
    require((q.codings & r.coding) != 0);
    if (!q.ae) require(r.coding == kIdentity);
    if (identity_ok && range_honoured(q)) require(r.coding == kIdentity);
    not_modified(q, r);
    if (r.status == 304) return;
    require(r.status == 200 || r.status == 206 || r.status == 416);
    ranges(q, r);
  }

  // The Range of a GET the server acts on: 206 or 416 on identity. Odd ranges (unknown to
  // the model) may go either way, so they are never counted as honoured.
  static bool range_honoured(const request& q) {
    if (!q.get || !q.range || (q.if_range && !q.if_range_valid)) return false;
    return q.ranges == range_outcome::ranges || q.ranges == range_outcome::unsatisfiable;
  }

  // 304 only from a validator that matches, always from one that must.
  void not_modified(const request& q, const response& r) {
    if (q.inm) {
      const auto etag = r.field("ETag");
      const bool listed = q.inm_any || (etag && std::count(q.inm_tags.begin(), q.inm_tags.end(),
                                                           std::string(*etag)) > 0);
      return require((r.status == 304) == listed);
    }
    if (q.ims == 4) return require(r.status == 304);  // the Last-Modified itself
    if (q.ims == 3) return;                           // far future: the code answers 304
    require(r.status != 304);                         // none, far past or junk
  }

  // 206 / 416 only for GET with a Range on identity; exactly the ranges the rules give when
  // no validator and no If-Range gets in the way.
  void ranges(const request& q, const response& r) {
    // No Range, HEAD (Range is for GET), or a coding chosen (identity refused): the whole.
    if (!q.range || q.head || !(q.codings & kIdentity)) return require(r.status == 200);
    range_outcome want = q.ranges;
    if (q.if_range && !q.if_range_valid) want = range_outcome::whole;
    switch (want) {
      case range_outcome::unknown:
        return;
      case range_outcome::whole:
        return require(r.status == 200);
      case range_outcome::unsatisfiable:
        return require(r.status == 416);
      case range_outcome::ranges:
        require(r.status == 206);
        return require(got_ranges_ == q.expect_ranges);
    }
  }

  const plan& p_;
  std::string_view s_;
  bool reset_;  // a tolerated reset: the stream may end early
  std::size_t pos_ = 0;
  bool closed_ = false;
  std::vector<byte_range> got_ranges_;  // of the last 206
};

void run_input(const std::uint8_t* data, std::size_t size) {
  renew_fresh_file();
  script in{data, size};
  const plan p = read_plan(in);
  g_plan = &p;
  g_stream = {};
  g_at = 0;
  g_reset = false;
  const received got = client(p).run();
  g_stream = got.bytes;
  oracle(p, got).run();
  g_plan = nullptr;
}

// Learns every file's validators and coded lengths (GET with no Accept-Encoding, gzip, zstd)
// before the first input, so inputs that name them behave the same in every run.
void warm_up() {
  static constexpr std::uint8_t kAe[3] = {kAeNone, 0, 1};  // none, "gzip", "zstd"
  for (std::size_t t = 0; t < kTargetCount; ++t) {
    if (g->targets[t].k != kind::file) continue;
    std::vector<std::uint8_t> s = {2 << 4};  // three requests
    for (const std::uint8_t ae : kAe) {
      // GET, the target, HTTP/1.1, Host: x, Accept-Encoding when ae names one.
      const std::uint8_t flags = ae == kAeNone ? 0 : 16;
      s.insert(s.end(), {0, static_cast<std::uint8_t>(t), 0, 0, flags});
      if (flags) s.push_back(ae);
    }
    run_input(s.data(), s.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  std::signal(SIGPIPE, SIG_IGN);  // as main.cc: sendfile/splice to a reset socket raises it
  g = new world;
  build_root();
  start_server();
  if (kTls) make_client_context();
  warm_up();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  run_input(data, size);
  return 0;
}
