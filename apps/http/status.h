#pragma once

/// HTTP status codes the static server sends, with their reason phrases (RFC 9110 §15).
/// Header-only and stateless: safe from any thread.

#include <cstdint>
#include <string_view>

namespace pagewire::http {

enum class status : std::uint16_t {
  ok = 200,
  partial_content = 206,
  moved_permanently = 301,
  not_modified = 304,
  bad_request = 400,
  forbidden = 403,
  not_found = 404,
  method_not_allowed = 405,
  not_acceptable = 406,
  length_required = 411,
  precondition_failed = 412,
  content_too_large = 413,
  uri_too_long = 414,
  range_not_satisfiable = 416,
  request_header_fields_too_large = 431,
  internal_server_error = 500,
  not_implemented = 501,
  service_unavailable = 503,
  http_version_not_supported = 505,
};

constexpr unsigned code_of(status s) {
  return static_cast<unsigned>(s);
}

constexpr std::string_view reason_phrase(status s) {
  switch (s) {
    case status::ok:
      return "OK";
    case status::partial_content:
      return "Partial Content";
    case status::moved_permanently:
      return "Moved Permanently";
    case status::not_modified:
      return "Not Modified";
    case status::bad_request:
      return "Bad Request";
    case status::forbidden:
      return "Forbidden";
    case status::not_found:
      return "Not Found";
    case status::method_not_allowed:
      return "Method Not Allowed";
    case status::not_acceptable:
      return "Not Acceptable";
    case status::length_required:
      return "Length Required";
    case status::precondition_failed:
      return "Precondition Failed";
    case status::content_too_large:
      return "Content Too Large";
    case status::uri_too_long:
      return "URI Too Long";
    case status::range_not_satisfiable:
      return "Range Not Satisfiable";
    case status::request_header_fields_too_large:
      return "Request Header Fields Too Large";
    case status::internal_server_error:
      return "Internal Server Error";
    case status::not_implemented:
      return "Not Implemented";
    case status::service_unavailable:
      return "Service Unavailable";
    case status::http_version_not_supported:
      return "HTTP Version Not Supported";
  }
  return "Unknown";
}

/// The whole HTTP/1.1 status line with its CRLF ("HTTP/1.1 404 Not Found\r\n"), built at
/// compile time: a response head starts with one copy of a constant.
constexpr std::string_view status_line(status s) {
  switch (s) {
    case status::ok:
      return "HTTP/1.1 200 OK\r\n";
    case status::partial_content:
      return "HTTP/1.1 206 Partial Content\r\n";
    case status::moved_permanently:
      return "HTTP/1.1 301 Moved Permanently\r\n";
    case status::not_modified:
      return "HTTP/1.1 304 Not Modified\r\n";
    case status::bad_request:
      return "HTTP/1.1 400 Bad Request\r\n";
    case status::forbidden:
      return "HTTP/1.1 403 Forbidden\r\n";
    case status::not_found:
      return "HTTP/1.1 404 Not Found\r\n";
    case status::method_not_allowed:
      return "HTTP/1.1 405 Method Not Allowed\r\n";
    case status::not_acceptable:
      return "HTTP/1.1 406 Not Acceptable\r\n";
    case status::length_required:
      return "HTTP/1.1 411 Length Required\r\n";
    case status::precondition_failed:
      return "HTTP/1.1 412 Precondition Failed\r\n";
    case status::content_too_large:
      return "HTTP/1.1 413 Content Too Large\r\n";
    case status::uri_too_long:
      return "HTTP/1.1 414 URI Too Long\r\n";
    case status::range_not_satisfiable:
      return "HTTP/1.1 416 Range Not Satisfiable\r\n";
    case status::request_header_fields_too_large:
      return "HTTP/1.1 431 Request Header Fields Too Large\r\n";
    case status::internal_server_error:
      return "HTTP/1.1 500 Internal Server Error\r\n";
    case status::not_implemented:
      return "HTTP/1.1 501 Not Implemented\r\n";
    case status::service_unavailable:
      return "HTTP/1.1 503 Service Unavailable\r\n";
    case status::http_version_not_supported:
      return "HTTP/1.1 505 HTTP Version Not Supported\r\n";
  }
  return "HTTP/1.1 500 Internal Server Error\r\n";
}

}  // namespace pagewire::http
