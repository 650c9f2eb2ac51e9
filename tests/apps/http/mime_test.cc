#include <string>

#include <gtest/gtest.h>

#include <pagewire/apps/http/mime.h>

namespace pagewire::http {
namespace {

TEST(Mime, KnownExtensions) {
  EXPECT_EQ(mime_for_path("index.html").content_type, "text/html; charset=utf-8");
  EXPECT_EQ(mime_for_path("a/b/style.css").content_type, "text/css; charset=utf-8");
  EXPECT_EQ(mime_for_path("app.js").content_type, "text/javascript; charset=utf-8");
  EXPECT_EQ(mime_for_path("d.json").content_type, "application/json");
  EXPECT_EQ(mime_for_path("readme.txt").content_type, "text/plain; charset=utf-8");
  EXPECT_EQ(mime_for_path("logo.svg").content_type, "image/svg+xml");
  EXPECT_EQ(mime_for_path("p.png").content_type, "image/png");
  EXPECT_EQ(mime_for_path("p.jpg").content_type, "image/jpeg");
  EXPECT_EQ(mime_for_path("p.gif").content_type, "image/gif");
  EXPECT_EQ(mime_for_path("p.webp").content_type, "image/webp");
  EXPECT_EQ(mime_for_path("favicon.ico").content_type, "image/x-icon");
  EXPECT_EQ(mime_for_path("m.wasm").content_type, "application/wasm");
  EXPECT_EQ(mime_for_path("d.pdf").content_type, "application/pdf");
  EXPECT_EQ(mime_for_path("a.zip").content_type, "application/zip");
  EXPECT_EQ(mime_for_path("a.tar.gz").content_type, "application/gzip");
  EXPECT_EQ(mime_for_path("a.zst").content_type, "application/zstd");
  EXPECT_EQ(mime_for_path("v.mp4").content_type, "video/mp4");
  EXPECT_EQ(mime_for_path("f.woff2").content_type, "font/woff2");
  EXPECT_EQ(mime_for_path("feed.xml").content_type, "application/xml");
}

TEST(Mime, EveryTableLengthAndLookalikesResolve) {
  EXPECT_EQ(mime_for_path("app.webmanifest").content_type, "application/manifest+json");
  EXPECT_EQ(mime_for_path("APP.WEBMANIFEST").content_type, "application/manifest+json");
  EXPECT_EQ(mime_for_path("a.webmanifestx").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("a.md").content_type, "text/markdown; charset=utf-8");
  EXPECT_EQ(mime_for_path("a.m").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("a.htmll").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("a.").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path(".html").content_type, "text/html; charset=utf-8");
  EXPECT_EQ(mime_for_path("d/.css").content_type, "text/css; charset=utf-8");
  EXPECT_TRUE(mime_for_path("a.webmanifest").compressible);
  EXPECT_TRUE(mime_for_path("a.MJS").compressible);
}

// The integer key of an extension must not let a shorter known one match a longer name.
TEST(Mime, LookalikeKeysDoNotMatch) {
  using namespace std::string_literals;
  EXPECT_EQ(mime_for_path("a.js\0"s).content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("a.jsx").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("a.webmanifesx").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("a.WEBMANIFEST").content_type, "application/manifest+json");
  EXPECT_TRUE(mime_for_path("a.webmanifest").compressible);
  EXPECT_EQ(mime_for_path("a.woff2").content_type, "font/woff2");
  EXPECT_EQ(mime_for_path("a.12345678").content_type, "application/octet-stream");
}

TEST(Mime, ExtensionIsCaseInsensitive) {
  EXPECT_EQ(mime_for_path("INDEX.HTML").content_type, "text/html; charset=utf-8");
  EXPECT_EQ(mime_for_path("P.JpG").content_type, "image/jpeg");
}

TEST(Mime, UnknownOrMissingExtensionIsOctetStream) {
  EXPECT_EQ(mime_for_path("Makefile").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("a.unknownext").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("dir.html/file").content_type, "application/octet-stream");
  EXPECT_EQ(mime_for_path("").content_type, "application/octet-stream");
  EXPECT_FALSE(mime_for_path("x.bin").compressible);
}

TEST(Mime, CompressiblePredicate) {
  for (auto p : {"a.html", "a.css", "a.js", "a.json", "a.txt", "a.svg", "a.xml", "a.wasm"}) {
    EXPECT_TRUE(mime_for_path(p).compressible) << p;
  }
  for (auto p : {"a.png", "a.jpg", "a.gz", "a.zst", "a.mp4", "a.woff2", "a.zip", "a.pdf"}) {
    EXPECT_FALSE(mime_for_path(p).compressible) << p;
  }
  EXPECT_TRUE(is_compressible("text/x-anything"));
  EXPECT_TRUE(is_compressible("application/ld+json; charset=utf-8"));
  EXPECT_TRUE(is_compressible("application/xhtml+xml"));
  EXPECT_FALSE(is_compressible("application/octet-stream"));
}

}  // namespace
}  // namespace pagewire::http
