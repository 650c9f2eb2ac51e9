#include <charconv>

#include <pagewire/apps/http/multipart.h>

namespace pagewire::http {
namespace {

void append_u64(std::string& s, std::uint64_t v) {
  char buf[20];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  s.append(buf, r.ptr);
}

}  // namespace

multipart_plan::multipart_plan(std::span<const byte_range> ranges, std::uint64_t size,
                               std::string_view content_type, std::string_view boundary) {
  content_type_ = "multipart/byteranges; boundary=";
  content_type_.append(boundary);
  head_offsets_.reserve(ranges.size() + 1);
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    head_offsets_.push_back(bytes_.size());
    // The first delimiter needs no leading CRLF (RFC 2046 §5.1.1: it is part of it).
    if (i != 0) bytes_.append("\r\n");
    bytes_.append("--").append(boundary).append("\r\nContent-Type: ").append(content_type);
    bytes_.append("\r\nContent-Range: bytes ");
    append_u64(bytes_, ranges[i].first);
    bytes_.push_back('-');
    append_u64(bytes_, ranges[i].last());
    bytes_.push_back('/');
    append_u64(bytes_, size);
    bytes_.append("\r\n\r\n");
    content_length_ += ranges[i].length;
  }
  closing_offset_ = bytes_.size();
  bytes_.append("\r\n--").append(boundary).append("--\r\n");
  content_length_ += bytes_.size();
  parts_.resize(ranges.size());
  for (std::size_t i = 0; i < ranges.size(); ++i) {
    parts_[i].file_offset = ranges[i].first;
    parts_[i].file_length = ranges[i].length;
  }
  rebind();
}

// Part heads are views into bytes_; recompute them whenever bytes_ may have moved.
void multipart_plan::rebind() {
  for (std::size_t i = 0; i < parts_.size(); ++i) {
    const std::size_t end = i + 1 < parts_.size() ? head_offsets_[i + 1] : closing_offset_;
    parts_[i].head = std::string_view(bytes_).substr(head_offsets_[i], end - head_offsets_[i]);
  }
}

multipart_plan::multipart_plan(multipart_plan&& o) noexcept
    : bytes_(std::move(o.bytes_)),
      content_type_(std::move(o.content_type_)),
      parts_(std::move(o.parts_)),
      head_offsets_(std::move(o.head_offsets_)),
      closing_offset_(o.closing_offset_),
      content_length_(o.content_length_) {
  rebind();  // short-string optimisation may have moved the bytes
}

multipart_plan& multipart_plan::operator=(multipart_plan&& o) noexcept {
  bytes_ = std::move(o.bytes_);
  content_type_ = std::move(o.content_type_);
  parts_ = std::move(o.parts_);
  head_offsets_ = std::move(o.head_offsets_);
  closing_offset_ = o.closing_offset_;
  content_length_ = o.content_length_;
  rebind();
  return *this;
}

std::string_view multipart_plan::closing() const {
  return std::string_view(bytes_).substr(closing_offset_);
}

std::string make_boundary(std::uint64_t seed) {
  // splitmix64 finalizer: distinct seeds give unrelated-looking boundaries.
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string b = "pw";
  for (int i = 0; i < 16; ++i)
    b.push_back(kHex[(z >> (60 - 4 * i)) & 0xf]);
  b.append(kHex + (seed & 0xf), 1).append(kHex + ((seed >> 4) & 0xf), 1);
  return b;
}

}  // namespace pagewire::http
