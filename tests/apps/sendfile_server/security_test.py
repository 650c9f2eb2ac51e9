"""The security corpus of issue 7: traversal in every encoding, NUL, backslashes,
non-origin targets, symlinks out of the root and a directory swapped for a symlink
between requests. The rule checked everywhere: never an outside byte (a secret file
next to the root, /etc/passwd), and the server keeps serving.

Usage: security_test.py SENDFILE_SERVER_BINARY"""

import os
import tempfile
import time
import unittest

import server_testlib as lib

SECRET = b"TOP-SECRET-" + os.urandom(8).hex().encode()


def setUpModule():
    global BASE, ROOT, OUTSIDE, SRV
    BASE = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    ROOT = os.path.join(BASE, "root")
    OUTSIDE = os.path.join(BASE, "outside")
    os.mkdir(ROOT)
    os.mkdir(OUTSIDE)
    with open(os.path.join(OUTSIDE, "secret.txt"), "wb") as f:
        f.write(SECRET)
    with open(os.path.join(OUTSIDE, "file.txt"), "wb") as f:
        f.write(SECRET)
    with open(os.path.join(ROOT, "public.txt"), "wb") as f:
        f.write(b"public\n")
    os.mkdir(os.path.join(ROOT, "d"))
    with open(os.path.join(ROOT, "d", "file.txt"), "wb") as f:
        f.write(b"inside\n")
    os.symlink("../outside/secret.txt", os.path.join(ROOT, "rel_link"))
    os.symlink(os.path.join(OUTSIDE, "secret.txt"), os.path.join(ROOT, "abs_link"))
    os.symlink("/etc/passwd", os.path.join(ROOT, "passwd_link"))
    os.symlink("../outside", os.path.join(ROOT, "dir_link"))
    os.symlink("/proc/self/root/etc/passwd", os.path.join(ROOT, "magic_link"))
    os.symlink("public.txt", os.path.join(ROOT, "inner_link"))
    os.mkfifo(os.path.join(ROOT, "fifo"))
    SRV = lib.Server(ROOT, "--list-dirs")


def tearDownModule():
    rc = SRV.stop()
    if rc != 0:  # sanitizer reports, crashes at exit
        raise AssertionError(f"server exited with {rc}: {SRV.stderr()}")


def assert_nothing_outside(tc, out, what):
    tc.assertNotIn(SECRET, out, what)
    tc.assertNotIn(b"root:x:", out, what)


class Traversal(unittest.TestCase):
    CORPUS = [
        "/../etc/passwd", "/../outside/secret.txt", "/%2e%2e/", "/%2e%2e/outside/secret.txt",
        "/.%2e/outside/secret.txt", "/%2e./outside/secret.txt", "/%252e%252e/outside/secret.txt",
        "/..%2foutside%2fsecret.txt", "/..%2f..%2fetc%2fpasswd", "//etc/passwd",
        "/a%00b", "/public.txt%00.html", "/%5c..%5coutside%5csecret.txt",
        "/d/../../outside/secret.txt", "/d/%2e%2e/%2e%2e/outside/secret.txt",
        "../x", "x", "*", "/..", "/.%00./", "http://evil/../../etc/passwd",
        "/%c0%ae%c0%ae/outside/secret.txt",
    ]

    def test_corpus_never_leaves_the_root(self):
        for target in self.CORPUS:
            out = lib.raw_exchange(SRV.port,
                                   f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close"
                                   f"\r\n\r\n".encode())
            assert_nothing_outside(self, out, target)
            status = out[9:12]
            self.assertIn(status, (b"400", b"404"), (target, out[:80]))
        self.assertEqual(lib.get(SRV.port, "/public.txt").body, b"public\n")

    def test_decoded_once(self):
        # "%252e%252e" decodes to the literal name "%2e%2e", which does not exist.
        self.assertEqual(lib.get(SRV.port, "/%252e%252e/public.txt").status, 404)
        self.assertEqual(lib.get(SRV.port, "/%70ublic.txt").body, b"public\n")

    def test_backslash_and_nul_are_400(self):
        self.assertEqual(lib.get(SRV.port, "/a%00b").status, 400)
        self.assertEqual(lib.get(SRV.port, "/d%5cfile.txt").status, 400)
        self.assertEqual(lib.get(SRV.port, "/..%2fpublic.txt").status, 400)


class Symlinks(unittest.TestCase):
    def test_links_out_of_the_root_are_refused(self):
        for name in ("rel_link", "abs_link", "passwd_link", "dir_link/secret.txt",
                     "magic_link", "dir_link/"):
            r = lib.get(SRV.port, "/" + name)
            self.assertIn(r.status, (403, 404), name)
            assert_nothing_outside(self, r.body, name)

    def test_links_inside_the_root_work(self):
        self.assertEqual(lib.get(SRV.port, "/inner_link").body, b"public\n")

    def test_special_files_are_not_served(self):
        r = lib.get(SRV.port, "/fifo")  # must not block the worker either
        self.assertEqual(r.status, 404)
        self.assertEqual(lib.get(SRV.port, "/public.txt").status, 200)

    def test_directory_swapped_for_a_symlink_between_requests(self):
        d = os.path.join(ROOT, "d")
        self.assertEqual(lib.get(SRV.port, "/d/file.txt").body, b"inside\n")
        os.rename(d, os.path.join(ROOT, "d_old"))
        os.symlink("../outside", d)
        try:
            deadline = time.monotonic() + 2.5  # past the open-file cache's revalidation
            while time.monotonic() < deadline:
                r = lib.get(SRV.port, "/d/file.txt")
                assert_nothing_outside(self, r.body, "swapped dir")
                self.assertIn(r.status, (200, 404))
                if r.status == 200:
                    self.assertEqual(r.body, b"inside\n")  # a descriptor opened before
                time.sleep(0.1)
            self.assertEqual(lib.get(SRV.port, "/d/file.txt").status, 404)
            r = lib.get(SRV.port, "/d/")
            assert_nothing_outside(self, r.body, "swapped dir listing")
        finally:
            os.unlink(d)
            os.rename(os.path.join(ROOT, "d_old"), d)


if __name__ == "__main__":
    lib.main("security_test")
