#pragma once

/// Where pagewire's own notices go. The library says very little on its own: that a context
/// fell back to epoll because io_uring was refused, that splice was refused for a kind of file
/// (each once per process), how many operations a context's shutdown left in flight, and the
/// seed of fault injection (test builds). Each is one line.
///
/// By default a line goes to stderr as "pagewire: <line>\n". set_log_handler(fn) sends the
/// lines to fn instead (a program's own logger; a function that does nothing silences them);
/// set_log_handler(nullptr) restores stderr. What ends the process is not a notice and still
/// goes to stderr before the abort: an io_uring_enter failure the loop cannot go on from, a
/// page_pool destroyed while its pages are referenced, a page_cache destroyed with reads in
/// flight.
///
/// Threading: any thread may log, so the handler may be called on several threads at once and
/// must be safe for that. set_log_handler may be called from any thread; lines logged after it
/// returns go to the new handler. Lifetime: the handler is a plain function, nothing to free.

#include <string_view>

namespace pagewire::runtime {

/// Receives one line, without a prefix or a trailing newline; valid during the call only.
using log_handler = void (*)(std::string_view line);

/// Installs `handler` for the whole process; nullptr restores the default (stderr).
void set_log_handler(log_handler handler) noexcept;

/// Formats one line (printf-style) and hands it to the current handler. For pagewire's layers.
[[gnu::format(printf, 1, 2)]] void log_line(const char* format, ...) noexcept;

}  // namespace pagewire::runtime
