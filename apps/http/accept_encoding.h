#pragma once

/// Accept-Encoding negotiation (RFC 9110 §12.5.3, §12.4.2 q-values). Pure: any thread.

#include <optional>
#include <span>
#include <string_view>

#include <pagewire/apps/http/coding.h>

namespace pagewire::http {

/// Picks the coding to send among `available` (the codings this resource can be sent
/// in, in the server's order of preference; identity is implicit and always available).
///
/// - No Accept-Encoding field: identity (any coding would be acceptable, but an old
///   client may not decode it).
/// - Each coding's weight: its own entry (case-insensitive; "x-gzip" counts as gzip),
///   else the "*" entry, else 0 for codings; an unlisted identity with no "*" is a
///   last resort (below any listed coding). q=0 refuses.
/// - Identity is refused only by "identity;q=0", or "*;q=0" with no identity entry.
/// - The highest weight wins; on a tie the server's order, with identity last.
/// - nullopt: nothing acceptable -> 406 Not Acceptable.
/// A malformed element (bad q, bad token) is skipped.
std::optional<content_coding> negotiate_encoding(std::optional<std::string_view> accept_encoding,
                                                 std::span<const content_coding> available);

}  // namespace pagewire::http
