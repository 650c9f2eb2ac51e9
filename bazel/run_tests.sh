#!/usr/bin/env bash
# `make test`: the whole suite plainly, then under ASan+UBSan, then a program built against
# pagewire from outside (bazel/install_test.sh: make install + pkg-config;
# bazel/workspace_test.sh: a Bazel workspace of its own), then the API reference
# (bazel/docs_test.sh) and the lint (bazel/lint_test.sh), and one closing line
# "N passed, N failed" counting test cases from each run's test.xml files and those four checks.
# Extra configs can be added with PAGEWIRE_TEST_CONFIGS (e.g. "plain asan-ubsan tsan").
set -u
cd "$(dirname "$0")/.."

BAZEL=${BAZEL:-bazel}
configs=${PAGEWIRE_TEST_CONFIGS:-"plain asan-ubsan"}
passed=0
failed=0
skipped=0
status=0

for config in $configs; do
  flags=()
  query='tests(//...) except attr(tags, "manual", tests(//...))'
  if [ "$config" != plain ]; then
    flags=(--config="$config")
    # Tests tagged no_sanitizer (load loops whose timing a sanitizer distorts) run plainly only.
    flags+=(--test_tag_filters=-no_sanitizer,-manual)
    query="$query except attr(tags, \"no_sanitizer\", tests(//...))"
  fi
  echo "== bazel test //... (${config})"
  "$BAZEL" test "${flags[@]}" //... 
  rc=$?
  labels=$("$BAZEL" query --noshow_progress "$query" 2>/dev/null)
  testlogs=$("$BAZEL" info "${flags[@]}" bazel-testlogs 2>/dev/null)
  read -r p f s < <(python3 bazel/count_test_cases.py "$testlogs" $labels)
  # A non-zero Bazel exit with no failed case (a build break) still counts as a failure.
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  [ "$rc" -ne 0 ] && status=1
  echo "== ${config}: ${p} passed, ${f} failed, ${s} skipped"
  passed=$((passed + p))
  failed=$((failed + f))
  skipped=$((skipped + s))
done

# Once per run with the plain suite, one case each: a program built with pkg-config against
# `make install`, one in a Bazel workspace of its own, the API reference (make docs), and
# clang-format and clang-tidy (make lint).
if [[ " $configs " == *" plain "* ]]; then
  for check in install workspace docs lint; do
    echo "== ${check}: bazel/${check}_test.sh"
    if BAZEL="$BAZEL" bash "bazel/${check}_test.sh"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
    fi
  done
fi

[ "$failed" -ne 0 ] && status=1
echo "${passed} passed, ${failed} failed, ${skipped} skipped"
exit "$status"
