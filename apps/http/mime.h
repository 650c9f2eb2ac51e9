#pragma once

/// Built-in file extension -> Content-Type table and the "worth compressing" predicate.
/// Static, read-only data: safe from any thread.

#include <string_view>

namespace pagewire::http {

struct mime_type {
  std::string_view content_type;  // full field value, with charset for text types
  bool compressible;
};

/// By the extension after the last '.' of the last path segment, case-insensitively;
/// application/octet-stream (not compressible) when unknown or absent.
mime_type mime_for_path(std::string_view path);

/// True for text/*, and JSON, JavaScript, XML, SVG, WebAssembly and similar types
/// (parameters such as "; charset=utf-8" are ignored).
bool is_compressible(std::string_view content_type);

}  // namespace pagewire::http
