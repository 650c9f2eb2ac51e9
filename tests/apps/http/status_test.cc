#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/http/status.h>

namespace pagewire::http {
namespace {

constexpr status kAll[] = {
    status::ok,
    status::partial_content,
    status::moved_permanently,
    status::not_modified,
    status::bad_request,
    status::forbidden,
    status::not_found,
    status::method_not_allowed,
    status::not_acceptable,
    status::length_required,
    status::precondition_failed,
    status::content_too_large,
    status::uri_too_long,
    status::range_not_satisfiable,
    status::request_header_fields_too_large,
    status::internal_server_error,
    status::not_implemented,
    status::service_unavailable,
    status::http_version_not_supported,
};

TEST(Status, PrebuiltStatusLineIsVersionCodeReasonAndCrlf) {
  for (const status s : kAll) {
    const std::string expected =
        "HTTP/1.1 " + std::to_string(code_of(s)) + " " + std::string(reason_phrase(s)) + "\r\n";
    EXPECT_EQ(status_line(s), expected) << code_of(s);
  }
}

static_assert(status_line(status::ok) == "HTTP/1.1 200 OK\r\n");

}  // namespace
}  // namespace pagewire::http
