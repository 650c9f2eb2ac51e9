// Writes the demo document root that `make run` serves: an index.html linking four
// files of 1 KiB, 64 KiB, 1 MiB and 64 MiB. Contents are deterministic (a fixed
// xorshift stream) so checksums are stable from build to build.
//
// Usage: make_demo_root OUTDIR

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <sys/stat.h>
#include <vector>

namespace {

struct demo_file {
  const char* name;
  std::uint64_t size;
};

constexpr demo_file kFiles[] = {
    {"1k.bin", 1u << 10},
    {"64k.bin", 64u << 10},
    {"1m.bin", 1u << 20},
    {"64m.bin", 64u << 20},
};

bool write_all(std::FILE* out, const void* data, std::size_t len) {
  return std::fwrite(data, 1, len, out) == len;
}

bool write_file(const std::string& path, std::uint64_t size, std::uint64_t seed) {
  std::FILE* out = std::fopen(path.c_str(), "wb");
  if (out == nullptr) return false;
  std::vector<std::uint64_t> block(8192);
  std::uint64_t state = seed;
  std::uint64_t left = size;
  bool ok = true;
  while (ok && left > 0) {
    for (auto& word : block) {
      state ^= state << 13;
      state ^= state >> 7;
      state ^= state << 17;
      word = state;
    }
    const std::size_t chunk =
        left < block.size() * sizeof(std::uint64_t) ? left : block.size() * sizeof(std::uint64_t);
    ok = write_all(out, block.data(), chunk);
    left -= chunk;
  }
  return std::fclose(out) == 0 && ok;
}

std::string index_html() {
  std::string html =
      "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>pagewire demo</title></head>\n"
      "<body>\n<h1>pagewire demo root</h1>\n<ul>\n";
  for (const auto& file : kFiles) {
    html += "  <li><a href=\"/" + std::string(file.name) + "\">" + file.name + "</a> (" +
            std::to_string(file.size) + " bytes)</li>\n";
  }
  html += "</ul>\n</body></html>\n";
  return html;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "make_demo_root: mkdir %s: %s\n", dir.c_str(), std::strerror(errno));
    return 1;
  }
  std::uint64_t seed = 0x9e3779b97f4a7c15ull;
  for (const auto& file : kFiles) {
    if (!write_file(dir + "/" + file.name, file.size, seed++)) {
      std::fprintf(stderr, "make_demo_root: writing %s failed\n", file.name);
      return 1;
    }
  }
  const std::string html = index_html();
  std::FILE* out = std::fopen((dir + "/index.html").c_str(), "wb");
  if (out == nullptr || !write_all(out, html.data(), html.size()) || std::fclose(out) != 0) {
    std::fprintf(stderr, "make_demo_root: writing index.html failed\n");
    return 1;
  }
  return 0;
}
