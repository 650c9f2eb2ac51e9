#include <pagewire/apps/http/accept_encoding.h>
#include <pagewire/apps/http/ascii.h>

namespace pagewire::http {
namespace {

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), as thousandths.
int parse_qvalue(std::string_view s) {
  if (s.empty() || s.size() > 5 || (s[0] != '0' && s[0] != '1')) return -1;
  if (s.size() > 1 && s[1] != '.') return -1;
  int v = (s[0] - '0') * 1000;
  int scale = 100;
  for (std::size_t i = 2; i < s.size(); ++i, scale /= 10) {
    if (!is_digit(s[i])) return -1;
    v += (s[i] - '0') * scale;
  }
  return v > 1000 ? -1 : v;
}

// "gzip;q=0.5" -> ("gzip", 500); -1 weight when malformed.
int parse_element(std::string_view e, std::string_view& coding) {
  const auto semi = e.find(';');
  coding = trim_ows(e.substr(0, semi));
  if (!is_token(coding)) return -1;
  int q = 1000;
  while (semi != std::string_view::npos && !e.empty()) {
    e.remove_prefix(e.find(';') + 1);
    const auto next = e.find(';');
    const auto param = trim_ows(e.substr(0, next));
    const auto eq = param.find('=');
    if (eq == std::string_view::npos) return -1;
    if (iequals(trim_ows(param.substr(0, eq)), "q")) {
      q = parse_qvalue(trim_ows(param.substr(eq + 1)));
      if (q < 0) return -1;
    }
    if (next == std::string_view::npos) break;
  }
  return q;
}

bool names(std::string_view token, content_coding c) {
  if (c == content_coding::gzip) return iequals(token, "gzip") || iequals(token, "x-gzip");
  if (c == content_coding::identity) return iequals(token, "identity");
  return iequals(token, coding_token(c));
}

}  // namespace

std::optional<content_coding> negotiate_encoding(std::optional<std::string_view> accept_encoding,
                                                 std::span<const content_coding> available) {
  if (!accept_encoding) return content_coding::identity;
  constexpr int kUnset = -1;
  int star = kUnset;
  int identity = kUnset;
  int weights[3] = {kUnset, kUnset, kUnset};  // indexed by content_coding
  for_each_list_element(*accept_encoding, [&](std::string_view e) {
    std::string_view token;
    const int q = parse_element(e, token);
    if (q < 0) return;
    if (token == "*") {
      star = q;
    } else if (names(token, content_coding::identity)) {
      identity = q;
    } else {
      for (auto c : {content_coding::gzip, content_coding::zstd})
        if (names(token, c)) weights[static_cast<int>(c)] = q;
    }
  });
  std::optional<content_coding> best;
  int best_q = 0;
  for (auto c : available) {
    if (c == content_coding::identity) continue;
    int q = weights[static_cast<int>(c)];
    if (q == kUnset) q = star == kUnset ? 0 : star;
    if (q > best_q) best = c, best_q = q;
  }
  // Unlisted identity: what "*" says, else acceptable as the last resort (weight 0.001).
  const int id_q = identity != kUnset ? identity : star != kUnset ? star : 1;
  if (id_q > best_q) best = content_coding::identity;
  return best;
}

}  // namespace pagewire::http
