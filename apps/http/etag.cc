#include <pagewire/apps/http/ascii.h>
#include <pagewire/apps/http/etag.h>

namespace pagewire::http {
namespace {

// Lower-case hex without leading zeros ("0" for 0): the digit count from the highest set
// bit, then the digits written right to left, with no reversal pass.
char* put_hex(char* p, std::uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  const int n = v == 0 ? 1 : (67 - __builtin_clzll(v)) / 4;
  for (int i = n - 1; i >= 0; --i) {
    p[i] = kHex[v & 0xf];
    v >>= 4;
  }
  return p + n;
}

// The opaque part of an entity-tag, without W/ and quotes; empty when malformed.
std::string_view opaque(std::string_view t, bool& weak) {
  weak = t.size() >= 2 && t[0] == 'W' && t[1] == '/';
  if (weak) t.remove_prefix(2);
  if (t.size() < 2 || t.front() != '"' || t.back() != '"') return {};
  return t;  // quotes kept: "" is a valid (empty) tag and stays distinct from malformed
}

}  // namespace

etag etag::make(std::uint64_t inode, std::uint64_t size, std::int64_t mtime_ns,
                content_coding coding) {
  // A file version's tag is formatted once per thread and then copied: a small
  // direct-mapped cache keyed by everything the tag is made of, so a hit is exact.
  struct cached {
    std::uint64_t inode = 0, size = 0;
    std::int64_t mtime_ns = 0;
    content_coding coding = content_coding::identity;
    bool valid = false;
    etag tag;
  };
  thread_local cached cache[16];
  cached& c = cache[(inode ^ (inode >> 4) ^ size ^ static_cast<std::uint64_t>(coding)) & 15];
  if (c.valid && c.inode == inode && c.size == size && c.mtime_ns == mtime_ns &&
      c.coding == coding) {
    return c.tag;
  }
  c.tag = format(inode, size, mtime_ns, coding);
  c.inode = inode;
  c.size = size;
  c.mtime_ns = mtime_ns;
  c.coding = coding;
  c.valid = true;
  return c.tag;
}

etag etag::format(std::uint64_t inode, std::uint64_t size, std::int64_t mtime_ns,
                  content_coding coding) {
  etag e;
  char* p = e.buf_.data();
  *p++ = '"';
  p = put_hex(p, inode);
  *p++ = '-';
  p = put_hex(p, size);
  *p++ = '-';
  p = put_hex(p, static_cast<std::uint64_t>(mtime_ns));
  for (char c : etag_suffix(coding))
    *p++ = c;
  *p++ = '"';
  e.len_ = static_cast<std::uint8_t>(p - e.buf_.data());
  return e;
}

bool strong_match(std::string_view a, std::string_view b) {
  bool wa, wb;
  const auto oa = opaque(a, wa), ob = opaque(b, wb);
  return !oa.empty() && !wa && !wb && oa == ob;
}

bool weak_match(std::string_view a, std::string_view b) {
  bool wa, wb;
  const auto oa = opaque(a, wa), ob = opaque(b, wb);
  return !oa.empty() && oa == ob;
}

bool etag_list_matches(std::string_view field, std::string_view tag, bool weak) {
  field = trim_ows(field);
  if (field == "*") return true;
  // entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE; etagc may include ',' so scan by quotes.
  std::size_t i = 0;
  while (i < field.size()) {
    while (i < field.size() && (is_ows(field[i]) || field[i] == ','))
      ++i;
    if (i == field.size()) break;
    const std::size_t start = i;
    if (field.compare(i, 2, "W/") == 0) i += 2;
    if (i >= field.size() || field[i] != '"') return false;
    const auto close = field.find('"', i + 1);
    if (close == std::string_view::npos) return false;
    i = close + 1;
    const auto candidate = field.substr(start, i - start);
    if (weak ? weak_match(candidate, tag) : strong_match(candidate, tag)) return true;
  }
  return false;
}

}  // namespace pagewire::http
