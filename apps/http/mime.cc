#include <array>
#include <cstdint>
#include <cstring>

#include <pagewire/apps/http/ascii.h>
#include <pagewire/apps/http/mime.h>

namespace pagewire::http {
namespace {

struct entry {
  std::string_view ext;
  std::string_view type;
};

constexpr entry kTable[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"webmanifest", "application/manifest+json"},
    {"txt", "text/plain; charset=utf-8"},
    {"md", "text/markdown; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"xml", "application/xml"},
    {"rss", "application/rss+xml"},
    {"atom", "application/atom+xml"},
    {"svg", "image/svg+xml"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"webp", "image/webp"},
    {"avif", "image/avif"},
    {"ico", "image/x-icon"},
    {"bmp", "image/bmp"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"zip", "application/zip"},
    {"gz", "application/gzip"},
    {"tgz", "application/gzip"},
    {"zst", "application/zstd"},
    {"tar", "application/x-tar"},
    {"mp4", "video/mp4"},
    {"webm", "video/webm"},
    {"mp3", "audio/mpeg"},
    {"ogg", "audio/ogg"},
    {"wav", "audio/wav"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"ttf", "font/ttf"},
    {"otf", "font/otf"},
};

constexpr std::string_view kCompressibleTypes[] = {
    "application/json",
    "application/manifest+json",
    "application/xml",
    "application/rss+xml",
    "application/atom+xml",
    "application/javascript",
    "application/wasm",
    "image/svg+xml",
    "image/x-icon",
    "image/bmp",
    "font/ttf",
    "font/otf",
    "application/x-tar",
};

// Open-addressed hash table over the lower-cased extension, built at compile time, with
// each type's compressibility precomputed: a lookup hashes at most kMaxExt bytes and
// compares one or two candidates, whatever the table's size.
constexpr std::size_t kMaxExt = 11;  // longest extension in kTable ("webmanifest")
constexpr std::size_t kSlots = 128;  // power of two, > 2x the entries

constexpr std::uint32_t ext_hash(const char* p, std::size_t n) {
  std::uint32_t h = 2166136261u;  // FNV-1a
  for (std::size_t i = 0; i < n; ++i)
    h = (h ^ static_cast<unsigned char>(p[i])) * 16777619u;
  return h;
}

struct slot {
  std::int16_t entry = -1;  // index into kTable, -1: empty
  bool compressible = false;
};

constexpr std::array<slot, kSlots> make_slots() {
  std::array<slot, kSlots> t{};
  for (std::size_t i = 0; i < std::size(kTable); ++i) {
    auto h = ext_hash(kTable[i].ext.data(), kTable[i].ext.size()) & (kSlots - 1);
    while (t[h].entry >= 0)
      h = (h + 1) & (kSlots - 1);
    t[h].entry = static_cast<std::int16_t>(i);
  }
  return t;
}

constexpr std::array<slot, kSlots> kSlotsTable = make_slots();

// Compressibility per table entry, computed once (is_compressible is not constexpr-cheap
// to call per request: it scans kCompressibleTypes).
struct compressible_flags {
  bool v[std::size(kTable)];
  compressible_flags() {
    for (std::size_t i = 0; i < std::size(kTable); ++i)
      v[i] = is_compressible(kTable[i].type);
  }
};

const compressible_flags& flags() {
  static const compressible_flags f;
  return f;
}

}  // namespace

mime_type mime_for_path(std::string_view path) {
  // The extension is the text after the last '.' of the last segment: scan from the end.
  std::size_t i = path.size();
  while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/')
    --i;
  if (i > 0 && path[i - 1] == '.') {
    const std::size_t n = path.size() - i;
    if (n > 0 && n <= kMaxExt) {
      char lower[kMaxExt];
      for (std::size_t k = 0; k < n; ++k)
        lower[k] = to_lower(path[i + k]);
      auto h = ext_hash(lower, n) & (kSlots - 1);
      for (;;) {
        const slot s = kSlotsTable[h];
        if (s.entry < 0) break;
        const entry& e = kTable[s.entry];
        if (e.ext.size() == n && std::memcmp(e.ext.data(), lower, n) == 0)
          return {e.type, flags().v[s.entry]};
        h = (h + 1) & (kSlots - 1);
      }
    }
  }
  return {"application/octet-stream", false};
}

bool is_compressible(std::string_view content_type) {
  const auto semi = content_type.find(';');
  const auto type = trim_ows(content_type.substr(0, semi));
  if (type.size() > 5 && iequals(type.substr(0, 5), "text/")) return true;
  for (auto t : kCompressibleTypes)
    if (iequals(t, type)) return true;
  // Structured syntax suffixes (RFC 6839): +json, +xml.
  if (type.size() > 5 && iequals(type.substr(type.size() - 5), "+json")) return true;
  if (type.size() > 4 && iequals(type.substr(type.size() - 4), "+xml")) return true;
  return false;
}

}  // namespace pagewire::http
