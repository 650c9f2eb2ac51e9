#!/usr/bin/env bash
# INPUT_FILTER of bazel/Doxyfile. A public header opens with `#pragma once`, a blank line and
# the `///` block that says what the file holds; doxygen would give that block to the next
# declaration. Shown to doxygen as `/// \file` + `///` on the same two lines, the block
# documents the file, and every line keeps its number.
exec awk 'NR == 1 { first = $0; next }
          NR == 2 { second = $0; next }
          NR == 3 { if (first == "#pragma once" && second == "" && $0 ~ /^\/\/\/ /) {
                      first = "/// \\file"; second = "///" }
                    print first; print second }
          { print }
          END { if (NR == 1) print first; if (NR == 2) { print first; print second } }' "$1"
