"""Build macros shared by pagewire's layers."""

def pw_library(name, hdrs = [], srcs = [], deps = [], copts = [], visibility = None, **kwargs):
    """A pagewire library whose headers are included as <pagewire/FOLDER/NAME.h>.

    copts: C++20 on the library's own compile lines, so that it builds as an outside
    workspace's @pagewire dependency too, where this repository's .bazelrc does not apply.
    alwayslink: every object file goes into whatever links the library. Without it the
    shared object //:libpagewire.so (a cc_binary with no sources of its own) would take
    only what something in it refers to, which is nothing, and come out empty.
    """
    native.cc_library(
        name = name,
        hdrs = hdrs,
        srcs = srcs,
        deps = deps,
        copts = ["-std=c++20"] + copts,
        include_prefix = "pagewire/" + native.package_name(),
        visibility = visibility or ["//visibility:public"],
        alwayslink = True,
        **kwargs
    )

def pw_test(name, srcs, deps = [], size = "small", **kwargs):
    """A GoogleTest binary; test.xml per case is what `make test` counts."""
    native.cc_test(
        name = name,
        srcs = srcs,
        deps = deps + ["//bazel:gtest_main"],
        size = size,
        **kwargs
    )

# Tags of a test that registers page-pool arenas with io_uring and fails when that is refused.
# In Bazel's sandbox the pinned pages count against root's RLIMIT_MEMLOCK (8 MiB here), one
# budget shared by every test running at the same time (a server test's page cache too), so
# such a test runs alone.
REGISTERS_BUFFERS = ["exclusive"]
