# pagewire's entry points. Each target installs what it needs on a fresh Debian 12
# machine (apt-get, quietly) and does nothing extra when everything is there.
SHELL := /bin/bash
BAZEL ?= bazel
LISTEN ?= 127.0.0.1:8080

# Build and test dependencies, all from Debian 12's archive.
PACKAGES := bazel-bootstrap g++ python3 \
	liburing-dev libboost1.81-dev libssl-dev zlib1g-dev libzstd-dev \
	libgtest-dev libgmock-dev libbenchmark-dev \
	openssl curl wget zstd gzip iproute2 pkg-config doxygen clang-format-14 clang-tidy-14

# What `make bench` adds: the load generator and the peer servers.
BENCH_PACKAGES := wrk nginx-light

# What `make fuzz` adds: clang with its libFuzzer and sanitizer runtimes.
FUZZ_PACKAGES := clang-14 libclang-rt-14-dev

.PHONY: all deps bench-deps build test test-tsan run bench install docs fuzz lint format clean

all: build

deps:
	@bash bazel/install_packages.sh $(PACKAGES)

bench-deps: deps
	@bash bazel/install_packages.sh $(BENCH_PACKAGES)

build: deps
	$(BAZEL) build //...

# Whole suite plainly and under ASan+UBSan, then pagewire built against from outside
# (make install + pkg-config, a Bazel workspace of its own), the API reference built
# without a warning, and the lint (make lint); closes with "N passed, N failed".
test: deps
	@bash bazel/run_tests.sh

test-tsan: deps
	@PAGEWIRE_TEST_CONFIGS=tsan bash bazel/run_tests.sh

run: deps
	$(BAZEL) build --config=release //apps/sendfile_server //apps/demo:demo_root
	bin=$$($(BAZEL) info --config=release bazel-bin 2>/dev/null) && \
	exec "$$bin/apps/sendfile_server/sendfile_server" \
		--root "$$bin/apps/demo/demo_root" --listen $(LISTEN)

bench: bench-deps
	@bash bench/run.sh

# libFuzzer over every target in tests/fuzz/ (TARGET.build), each bounded by FUZZ_SECONDS
# (default 60); FUZZ_TARGETS="http ..." runs only those. A target that fails (its crash input
# is left in $FUZZ_OUT/TARGET/, default /tmp/pagewire-fuzz) does not stop the others; the last
# line names it.
fuzz: deps
	@bash bazel/install_packages.sh $(FUZZ_PACKAGES)
	@failed=""; for t in $${FUZZ_TARGETS:-$$(basename -s .build tests/fuzz/*.build)}; do \
		bash tests/fuzz/run_fuzz.sh "$$t" $${FUZZ_SECONDS:-60} || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi; echo "fuzz: every target ran clean"

# The library, headers and pagewire.pc under PREFIX (default /usr/local).
install: deps
	@bash bazel/install.sh

# The API reference from the public headers' `///` comments: docs/html/index.html.
docs: deps
	@bash bazel/docs.sh

# clang-format and clang-tidy (.clang-format, .clang-tidy) as make test checks them.
lint: deps
	@bash bazel/lint_test.sh

format: deps
	@git ls-files '*.cc' '*.h' | xargs clang-format-14 -i

clean:
	$(BAZEL) clean
