#include <gtest/gtest.h>

#include <pagewire/apps/http/access_log.h>

namespace pagewire::http {
namespace {

TEST(AccessLog, CombinedLogFormat) {
  std::string out;
  append_combined_log(out, {"127.0.0.1", "", 971185536, "GET /apache_pb.gif HTTP/1.0", 200, 2326,
                            "http://www.example.com/start.html", "Mozilla/4.08"});
  EXPECT_EQ(out,
            "127.0.0.1 - - [10/Oct/2000:13:45:36 +0000] \"GET /apache_pb.gif HTTP/1.0\" 200 2326 "
            "\"http://www.example.com/start.html\" \"Mozilla/4.08\"\n");
}

TEST(AccessLog, EmptyFieldsAreDashes) {
  std::string out;
  append_combined_log(out, {"::1", "", 0, "", 400, 0, "", ""});
  EXPECT_EQ(out, "::1 - - [01/Jan/1970:00:00:00 +0000] \"-\" 400 0 \"-\" \"-\"\n");
}

TEST(AccessLog, EscapesQuotesAndControlBytesSoLinesCannotBeForged) {
  std::string out;
  append_combined_log(out, {"h", "", 0, "GET /\"a\\ HTTP/1.1", 200, 1, "", "x\ny\xff"});
  EXPECT_NE(out.find("\"GET /\\x22a\\x5C HTTP/1.1\""), std::string::npos);
  EXPECT_NE(out.find("\"x\\x0Ay\\xFF\""), std::string::npos);
  EXPECT_EQ(out.find('\n'), out.size() - 1);
}

}  // namespace
}  // namespace pagewire::http
