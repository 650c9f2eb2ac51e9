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

}  // namespace

mime_type mime_for_path(std::string_view path) {
  const auto slash = path.rfind('/');
  const auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  const auto dot = name.rfind('.');
  if (dot != std::string_view::npos) {
    const auto ext = name.substr(dot + 1);
    for (const auto& e : kTable) {
      if (iequals(e.ext, ext)) return {e.type, is_compressible(e.type)};
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
