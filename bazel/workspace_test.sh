#!/usr/bin/env bash
# `make test`'s check of pagewire as an outside Bazel dependency: a temporary workspace maps
# @pagewire to this checkout (and the three stand-ins Bazel 4.2.3 needs offline to its
# bazel/ folder, as README.md says), builds tests/install/consumer.cc as
# cc_binary(deps = ["@pagewire//:pagewire"]) in an output base of its own, and runs it.
# Exit 0 and one line "workspace: ok" when the program printed "ok".
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
BAZEL=${BAZEL:-bazel}

ws=$(mktemp -d)
cleanup() {
  (cd "$ws" && "$BAZEL" --output_base="$ws/.output" shutdown >/dev/null 2>&1) || true
  chmod -R u+w "$ws" 2>/dev/null || true
  rm -rf "$ws"
}
trap cleanup EXIT

cat >"$ws/WORKSPACE" <<WS
local_repository(name = "pagewire", path = "$repo")
local_repository(name = "rules_cc", path = "$repo/bazel/rules_cc")
local_repository(name = "rules_java", path = "$repo/bazel/rules_java")
local_repository(name = "remote_coverage_tools", path = "$repo/bazel/remote_coverage_tools")
WS
cat >"$ws/BUILD" <<'BUILD'
cc_binary(
    name = "app",
    srcs = ["app.cc"],
    copts = ["-std=c++20"],
    deps = ["@pagewire//:pagewire"],
)
BUILD
cp tests/install/consumer.cc "$ws/app.cc"

cd "$ws"
if ! "$BAZEL" --output_base="$ws/.output" build //:app >"$ws/build.log" 2>&1; then
  cat "$ws/build.log" >&2
  echo "workspace: the outside workspace did not build" >&2
  exit 1
fi
out=$(./bazel-bin/app)
if [ "$out" != ok ]; then
  echo "workspace: the program printed '$out'" >&2
  exit 1
fi
echo "workspace: ok"
