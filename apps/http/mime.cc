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

constexpr bool compressible_type(std::string_view content_type) {
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

// Extensions of up to 8 bytes are looked up as one integer: the lower-cased bytes packed
// little-endian into a uint64_t (a NUL byte gives no key, so lengths differ in the key). The key
// picks a slot of an open-addressed table built at compile time by one multiply and shift; the slot
// holds the key itself, the type and its compressibility, so a lookup compares integers, never
// strings. Longer extensions ("webmanifest") are compared as strings against the few long entries.
constexpr std::size_t kMaxKeyed = 8;
constexpr std::size_t kMaxExt = 11;  // longest extension in kTable ("webmanifest")
constexpr unsigned kSlotBits = 7;    // 128 slots: > 2x the entries
constexpr std::size_t kSlots = std::size_t{1} << kSlotBits;

// 0 (matches no slot) when a byte is NUL: "js\0" must not pass for "js".
constexpr std::uint64_t ext_key(const char* p, std::size_t n) {
  std::uint64_t k = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (p[i] == '\0') return 0;
    k |= std::uint64_t{static_cast<unsigned char>(to_lower(p[i]))} << (8 * i);
  }
  return k;
}

constexpr std::size_t slot_of(std::uint64_t key) {
  return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15u) >> (64 - kSlotBits));
}

struct slot {
  std::uint64_t key = 0;  // 0: empty
  std::int16_t entry = -1;
  bool compressible = false;
};

constexpr std::array<slot, kSlots> make_slots() {
  std::array<slot, kSlots> t{};
  for (std::size_t i = 0; i < std::size(kTable); ++i) {
    const auto& e = kTable[i];
    if (e.ext.size() > kMaxKeyed) continue;
    const std::uint64_t key = ext_key(e.ext.data(), e.ext.size());
    auto h = slot_of(key);
    while (t[h].key != 0)
      h = (h + 1) & (kSlots - 1);
    t[h] = slot{key, static_cast<std::int16_t>(i), compressible_type(e.type)};
  }
  return t;
}

constexpr std::array<slot, kSlots> kSlotsTable = make_slots();

mime_type long_extension(std::string_view ext) {
  for (const auto& e : kTable)
    if (e.ext.size() == ext.size() && iequals(e.ext, ext))
      return {e.type, compressible_type(e.type)};
  return {"application/octet-stream", false};
}

}  // namespace

mime_type mime_for_path(std::string_view path) {
  // The extension is the text after the last '.' of the last segment: scan from the end.
  std::size_t i = path.size();
  while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/')
    --i;
  if (i > 0 && path[i - 1] == '.') {
    const std::size_t n = path.size() - i;
    if (n > kMaxKeyed) {
      if (n <= kMaxExt) return long_extension(path.substr(i));
    } else if (n > 0) {
      const std::uint64_t key = ext_key(path.data() + i, n);
      for (auto h = slot_of(key); kSlotsTable[h].key != 0; h = (h + 1) & (kSlots - 1)) {
        const slot& s = kSlotsTable[h];
        if (s.key == key) return {kTable[s.entry].type, s.compressible};
      }
    }
  }
  return {"application/octet-stream", false};
}

bool is_compressible(std::string_view content_type) {
  return compressible_type(content_type);
}

}  // namespace pagewire::http
