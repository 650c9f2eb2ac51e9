#pragma once

// check(ok) for libFuzzer targets: reports the failed invariant and its line, then aborts so
// libFuzzer saves the input.

#include <cstdio>
#include <cstdlib>

#define check(ok)                                                              \
  do {                                                                         \
    if (!(ok)) {                                                               \
      std::fprintf(stderr, "invariant failed: %s (line %d)\n", #ok, __LINE__); \
      std::abort();                                                            \
    }                                                                          \
  } while (0)
