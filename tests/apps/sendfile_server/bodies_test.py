"""Byte-exact bodies (SHA-256) for every demo size through curl, wget and
http.client; `wget -c` resumes a partial download; a sparse file past 4 GiB is served
by range across the 4 GiB boundary (64-bit offsets end to end); plain-HTTP bodies are
never copied in user space (/-/stats), where a small body sent before it was in the page
cache counts as a miss.

Usage: bodies_test.py SENDFILE_SERVER_BINARY"""

import hashlib
import http.client
import json
import os
import tempfile
import time
import unittest

import server_testlib as lib

GIB = 1 << 30


def setUpModule():
    global ROOT, DIGESTS, SRV, TMP
    ROOT, DIGESTS = lib.make_root()
    TMP = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
    SRV = lib.Server(ROOT, "--stats", threads=2)


def tearDownModule():
    rc = SRV.stop()
    if rc != 0:  # sanitizer reports, crashes at exit
        raise AssertionError(f"server exited with {rc}: {SRV.stderr()}")


def stats():
    return json.loads(lib.get(SRV.port, "/-/stats").body)


class Bodies(unittest.TestCase):
    def test_curl_every_size(self):
        for name, digest in DIGESTS.items():
            p = lib.run(["curl", "-s", "--http1.1", "--fail", SRV.url("/" + name)])
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(lib.sha256(p.stdout), digest, name)

    def test_http_client_every_size_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=30)
        for _ in range(2):
            for name, digest in DIGESTS.items():
                conn.request("GET", "/" + name)
                resp = conn.getresponse()
                self.assertEqual(resp.status, 200)
                self.assertEqual(lib.sha256(resp.read()), digest, name)
        conn.close()

    def test_wget_resumes_a_partial_download(self):
        with open(os.path.join(ROOT, "1m.bin"), "rb") as f:
            whole = f.read()
        out = os.path.join(TMP, "1m.bin")
        with open(out, "wb") as f:
            f.write(whole[:300_000])
        p = lib.run(["wget", "-q", "-c", "-O", out, SRV.url("/1m.bin")], cwd=TMP)
        self.assertEqual(p.returncode, 0, p.stderr)
        with open(out, "rb") as f:
            self.assertEqual(lib.sha256(f.read()), DIGESTS["1m.bin"])

    def test_sparse_file_past_4gib_by_range(self):
        path = os.path.join(ROOT, "sparse.bin")
        size = 5 * GIB
        marker = os.urandom(8192)
        where = 4 * GIB - 4096  # straddles the 4 GiB boundary
        with open(path, "wb") as f:
            f.truncate(size)
            f.seek(where)
            f.write(marker)
        h = lib.get(SRV.port, "/sparse.bin", method="HEAD")
        self.assertEqual(h.header("Content-Length"), str(size))
        r = lib.get(SRV.port, "/sparse.bin", [f"Range: bytes={where}-{where + 8191}"])
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), f"bytes {where}-{where + 8191}/{size}")
        self.assertEqual(r.body, marker)
        r = lib.get(SRV.port, "/sparse.bin", ["Range: bytes=-16"])
        self.assertEqual(r.header("Content-Range"), f"bytes {size - 16}-{size - 1}/{size}")
        self.assertEqual(r.body, b"\0" * 16)

    def test_plain_bodies_copy_no_byte_in_user_space(self):
        before = stats()
        for name in DIGESTS:
            p = lib.run(["curl", "-s", "--http1.1", SRV.url("/" + name)])
            self.assertEqual(lib.sha256(p.stdout), DIGESTS[name])
        after = stats()
        self.assertEqual(after["bytes_copied_user_space"], before["bytes_copied_user_space"])
        self.assertGreaterEqual(after["requests"], before["requests"] + len(DIGESTS) + 1)
        self.assertGreater(after["body_bytes"], before["body_bytes"] + (64 << 20))
        self.assertGreater(sum(after["paths"].values()), 0)
        # every response head went by a gather sendmsg on the loop (net's gather_inline)
        self.assertGreater(after["transmit"]["inline_sends"], before["transmit"]["inline_sends"])
        self.assertEqual(set(after["transmit"]), {"inline_sends", "yields", "top_ups", "short_sends"})
        self.assertIn(after["backend"], ("io_uring", "fallback"))
        self.assertGreaterEqual(after["open_connections"], 1)  # this one
        # file bodies went through splice pipes, each one taken from the worker's pool
        self.assertEqual(set(after["pipes"]), {"created", "reused", "discarded", "undersized", "idle"})
        if after["paths"]["splice"] > before["paths"]["splice"]:
            taken = lambda st: st["pipes"]["created"] + st["pipes"]["reused"]
            self.assertGreater(taken(after), taken(before))
            self.assertGreaterEqual(after["pipes"]["idle"], 1)

    def test_stats_count_a_small_body_sent_as_a_file_range_as_a_page_cache_miss(self):
        path = os.path.join(TMP, "pc_miss.bin")
        content = os.urandom(3000)
        with open(path, "wb") as f:
            f.write(content)
        with lib.Server(TMP, "--stats") as srv:
            self.assertEqual(lib.get(srv.port, "/pc_miss.bin").body, content)
            stats = json.loads(lib.get(srv.port, "/-/stats").body)["page_cache"]
            self.assertEqual(stats, {"hits": 0, "misses": 1})
            deadline = time.monotonic() + 10  # the miss warmed the cache: a later hit
            while stats["hits"] == 0 and time.monotonic() < deadline:
                time.sleep(0.05)
                self.assertEqual(lib.get(srv.port, "/pc_miss.bin").body, content)
                stats = json.loads(lib.get(srv.port, "/-/stats").body)["page_cache"]
            self.assertGreaterEqual(stats["hits"], 1)

    def test_stats_is_off_by_default(self):
        with lib.Server(ROOT) as srv:
            self.assertEqual(lib.get(srv.port, "/-/stats").status, 404)


if __name__ == "__main__":
    lib.main("bodies_test")
