"""corpus_test: a libFuzzer target's seed corpus replayed as a GoogleTest binary."""

def corpus_test(name, deps, src = None, **kwargs):
    """NAME_corpus_test: SRC (default NAME_fuzz.cc) linked with corpus_replay.cc, run over corpus/NAME/.

    Args:
      name: the fuzz target, as run_fuzz.sh names it.
      deps: what the target's .build file links, as Bazel labels.
      src: the harness source, when several targets share one.
      **kwargs: passed to cc_test (local_defines for the .build file's cflags, ...).
    """
    corpus = "corpus/" + name
    native.cc_test(
        name = name + "_corpus_test",
        srcs = [src or (name + "_fuzz.cc"), "corpus_replay.cc"],
        args = [native.package_name() + "/" + corpus],
        data = native.glob([corpus + "/*"]),
        deps = deps + [
            ":fuzz_support",
            "//bazel:gtest",
        ],
        **kwargs
    )
