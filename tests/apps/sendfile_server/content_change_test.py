"""Files that change on disk while sendfile_server runs (a site deploy), end to end. The
server's caches all learn of changes on one schedule: the open-file cache re-stats an
entry after 1 s (a new inode or version, that is size, mtime or ctime, gives a new file
object), a path that failed to open is remembered for 1 s (absent_cache), on-the-fly
compressed bodies are keyed by the file's version, and so are the user-space page cache's
pages and the remembered small bodies (resident_bodies). Pins down, on the default backend
(io_uring) and on the epoll fallback (PAGEWIRE_FORCE_FALLBACK=1), both run side by side:
- replace by rename, a 1 KiB file (gathered from the user-space page cache) and a 2 MiB
  one (splice): the new bytes and a new ETag within BOUND; until then every response is
  the old file whole with the old ETag, and once the new one was seen the old never comes
  back, on one keep-alive connection or on fresh ones; the old ETag no longer matches;
- rewrite in place with another size (growing: until the change shows, the old length of
  the new bytes; shrinking: a response cut short): the new bytes and Content-Length within
  BOUND;
- rewrite in place with the same size (a new mtime), and with the same size and mtime put
  back (`cp -p`, `rsync --inplace -t`: only ctime tells): the new bytes within BOUND,
  also where the old ones were gathered from the page cache;
- delete: 404 within BOUND; a path that answered 404 gets 200 with its bytes within BOUND;
- --compress gzip,zstd: an on-the-fly gzip body follows a rename, a same-size rewrite and
  a ctime-only change (the compressed cache never serves an old version's body for long);
  a precompressed sibling that appears is served within BOUND (its absence was only
  remembered for a while), one replaced by rename is served anew, one deleted leaves
  on-the-fly compression of the file itself;
- a 64 MiB response in flight when the file is renamed over ends with the old bytes
  whole and byte-exact, even after new requests already got the new file;
- files truncated while being served: each such response is a prefix of the old bytes,
  shorter than its Content-Length but holding every byte the file still has, then the
  connection ends with a FIN (no reset dropping those bytes); the server logs that once,
  counts each (/-/stats truncated_files) and serves everything else right.
Every response's framing is checked: a body is exactly Content-Length bytes, nothing
follows it on a fresh connection, and the next response on a keep-alive one starts right
after it. The server runs one thread, so every connection sees one cache. Every socket
has a timeout and every poll a deadline.

Usage: content_change_test.py SENDFILE_SERVER_BINARY"""

import gzip
import json
import os
import random
import tempfile
import threading
import time
import unittest

import server_testlib as lib

BOUND = 5.0  # seconds a change may take to show: 1 s revalidation, slack for sanitizers
POLL = 0.05  # seconds between polls
AFTER = 6  # responses checked after the new version first showed (it must stay)
TIMEOUT = 10  # any one socket operation
KIB, MIB = 1 << 10, 1 << 20

BACKENDS = {"default": None, "fallback": {"PAGEWIRE_FORCE_FALLBACK": "1"}}


def text(seed, n):
    """Compressible HTML of `n` bytes, distinct per seed."""
    rng = random.Random(seed)
    words = [b"<p>", b"deploy", b"page", b"wire", b"splice", b"cache", b"</p>\n", b"version"]
    out = b"<!doctype html><title>v%d</title>\n" % seed
    while len(out) < n:
        out += rng.choice(words) + b" "
    return out[:n]


def write(path, data):
    with open(path, "wb") as f:  # O_TRUNC: an in-place rewrite when the file exists
        f.write(data)


def replace(path, data):
    """Writes `data` to a temporary file beside `path`, then renames it over `path`."""
    tmp = path + ".tmp"
    write(tmp, data)
    os.rename(tmp, path)


def request(path, headers=()):
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


class Got:
    """A response as the client saw it. `complete`: the whole body (Content-Length bytes)
    came; else the connection ended (FIN or reset) before it."""

    def __init__(self, version, status, headers, body, complete, where):
        self.r = lib.Response(status, "", headers, bytes(body), version)
        self.complete, self.where = complete, where

    @property
    def status(self):
        return self.r.status

    @property
    def body(self):
        return self.r.body

    def header(self, name):
        return self.r.header(name)

    def length(self):
        return int(self.header("Content-Length"))

    def __repr__(self):
        end = "" if self.complete else " then the end"
        return (f"<{self.status} on a {self.where}, "
                f"Content-Length {self.header('Content-Length')}, {len(self.body)} bytes{end}, "
                f"ETag {self.header('ETag')}, "
                f"Content-Encoding {self.header('Content-Encoding')}>")


def fetch_fresh(port, path, headers=()):
    """One GET on a new connection that asks to close, read until the server closes."""
    with lib.connect(port, TIMEOUT) as s:
        s.sendall(request(path, [*headers, "Connection: close"]))
        data = bytearray()
        try:
            while True:
                chunk = s.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    head, sep, body = bytes(data).partition(b"\r\n\r\n")
    if not sep:
        raise AssertionError(f"GET {path}: no response head, got {data[:200]!r}")
    version, status, _, hdrs = lib.parse_head(head)
    got = Got(version, status, hdrs, body, True, "fresh connection")
    if version != "HTTP/1.1" or (got.header("Content-Length") is None and status != 304):
        raise AssertionError(f"GET {path}: bad head {head[:300]!r}")
    n = got.length() if status != 304 else 0  # a 304 has no body (RFC 9110 15.4.5)
    if len(body) > n:
        raise AssertionError(f"GET {path}: {len(body) - n} bytes after the body: {got!r}")
    got.complete = len(body) == n
    return got


class KeepAlive:
    """GETs on one connection, reopened only after the server ended one (a short body)."""

    def __init__(self, port):
        self.port, self.sock = port, None

    def get(self, path, headers=()):
        if self.sock is None:
            self.sock = lib.connect(self.port, TIMEOUT)
            self.rd = lib.Reader(self.sock)
        self.sock.sendall(request(path, headers))
        version, status, _, hdrs = self.rd.read_head()  # garbage left by the last body: fails
        if version != "HTTP/1.1" or not any(k.lower() == "content-length" for k, _ in hdrs):
            raise AssertionError(f"GET {path}: bad head on a keep-alive connection: {hdrs}")
        got = Got(version, status, hdrs, b"", True, "keep-alive connection")
        n = got.length()
        body = bytearray(self.rd.buf[:n])
        self.rd.buf = self.rd.buf[n:]
        try:
            while len(body) < n:
                chunk = self.sock.recv(min(n - len(body), 1 << 20))
                if not chunk:
                    break
                body += chunk
        except ConnectionResetError:
            pass
        got.r.body = bytes(body)
        if len(body) < n:
            got.complete = False
            self.close()
        return got

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


# What a response may be: predicates over a Got.
def body_is(data, status=200, decode=None, coding=None):
    def match(g):
        if not g.complete or g.status != status:
            return False
        if coding is not None and g.header("Content-Encoding") != coding:
            return False
        return (decode(g.body) if decode else g.body) == data
    return match


def status_is(status):
    return lambda g: g.complete and g.status == status


def gunzip(body):
    try:
        return gzip.decompress(body)
    except (OSError, EOFError) as e:
        raise AssertionError(f"a gzip body that does not decode: {e}") from None


class Backend:
    """A document root and two servers on it, all on one event-loop backend: `plain`
    (default options) and `comp` (--compress gzip,zstd), both with /-/stats."""

    def __init__(self, name, env):
        self.name = name
        self.root = tempfile.mkdtemp(prefix=f"pw_change_{name}_",
                                     dir=os.environ.get("TEST_TMPDIR"))
        self.plain = lib.Server(self.root, "--stats", env=env)
        self.comp = lib.Server(self.root, "--stats", "--compress", "gzip,zstd", env=env)
        if env:  # the fallback runs where asked (the default may be either, by kernel)
            for srv in (self.plain, self.comp):
                backend = self.stats(srv)["backend"]
                if backend != "fallback":
                    raise AssertionError(f"{env} gave the {backend} backend")

    def path(self, name):
        return os.path.join(self.root, name)

    def stats(self, srv):
        return json.loads(lib.get(srv.port, "/-/stats").body)

    def stop(self):
        bad = []
        for srv in (self.plain, self.comp):
            rc = srv.stop()
            if rc != 0:  # sanitizer reports, crashes at exit
                bad.append(f"{self.name} server exited with {rc}: {srv.stderr()}")
        return bad


def setUpModule():
    global BACKS, BIG_OLD, BIG_NEW, LONG
    BIG_OLD, BIG_NEW = os.urandom(64 * MIB), os.urandom(64 * MIB)
    LONG = os.urandom(24 * MIB)
    BACKS = [Backend(name, env) for name, env in BACKENDS.items()]


def tearDownModule():
    bad = [line for b in BACKS for line in b.stop()]
    if bad:
        raise AssertionError("\n".join(bad))


class ContentChange(unittest.TestCase):
    def on_each_backend(self, scenario):
        """Runs scenario(backend) for every backend at once (the waits overlap) and fails
        with what each one got wrong."""
        errors = {}

        def run(b):
            try:
                scenario(b)
            except BaseException as e:  # noqa: BLE001 -- reported below, by backend
                errors[b.name] = e

        threads = [threading.Thread(target=run, args=(b,), daemon=True) for b in BACKS]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
            self.assertFalse(t.is_alive(), "a scenario hung")
        if errors:
            self.fail("\n".join(f"[{name} backend] {type(e).__name__}: {e}"
                                for name, e in sorted(errors.items())))

    def await_change(self, port, path, is_old, is_new, headers=(), transitional=None):
        """Polls `path`, in turn on one keep-alive connection and on fresh ones, until a
        response is_new; fails unless that happens within BOUND. Before it every response
        must be is_old (or transitional: what an in-place rewrite may show while the old
        snapshot is still in use); after it AFTER more must all be is_new. Returns
        (old responses, new responses)."""
        ka = KeepAlive(port)
        old, new = [], []
        deadline = time.monotonic() + BOUND
        try:
            for i in range(100000):
                g = fetch_fresh(port, path, headers) if i % 2 else ka.get(path, headers)
                if is_new(g):
                    new.append(g)
                    if len(new) > AFTER:
                        return old, new
                    continue
                if new:
                    self.fail(f"{path}: after the new version showed, {g!r} (old: {is_old(g)})")
                if is_old(g):
                    old.append(g)
                elif not (transitional and transitional(g)):
                    self.fail(f"{path}: neither the old nor the new version: {g!r}")
                if time.monotonic() > deadline:
                    self.fail(f"{path}: still not the new version after {BOUND} s: {g!r}")
                time.sleep(POLL)
        finally:
            ka.close()
        raise AssertionError("unreachable")

    def assert_etags(self, old, new, old_etag):
        """Every old response carried `old_etag`; the new ones one other tag. Returns it."""
        self.assertEqual({g.header("ETag") for g in old} - {old_etag}, set())
        tags = {g.header("ETag") for g in new}
        self.assertEqual(len(tags), 1, tags)
        self.assertNotIn(old_etag, tags)
        return tags.pop()

    def prime_page_cache(self, b, name, data):
        """GETs /name until it came from the worker's page cache (the first GET reads its
        page in); returns the ETag."""
        deadline = time.monotonic() + BOUND
        while True:
            before = b.stats(b.plain)["page_cache"]["hits"]
            g = fetch_fresh(b.plain.port, "/" + name)
            self.assertTrue(body_is(data)(g), g)
            if b.stats(b.plain)["page_cache"]["hits"] > before:
                return g.header("ETag")
            self.assertLess(time.monotonic(), deadline, f"/{name} never came from the page cache")
            time.sleep(POLL)

    # 1 ---------------------------------------------------------------------------------
    def test_replace_by_rename_small_from_page_cache_and_large_by_splice(self):
        def scenario(b):
            files = {"ren1k.bin": (os.urandom(KIB), os.urandom(KIB)),
                     "ren2m.bin": (os.urandom(2 * MIB), os.urandom(2 * MIB))}
            etags = {}
            for name, (old, _) in files.items():
                write(b.path(name), old)
            etags["ren1k.bin"] = self.prime_page_cache(b, "ren1k.bin", files["ren1k.bin"][0])
            etags["ren2m.bin"] = fetch_fresh(b.plain.port, "/ren2m.bin").header("ETag")
            for name, (_, new) in files.items():
                replace(b.path(name), new)
            for name, (old, new) in files.items():
                olds, news = self.await_change(b.plain.port, "/" + name, body_is(old),
                                               body_is(new))
                new_etag = self.assert_etags(olds, news, etags[name])
                # The old validator no longer matches; the new one does.
                g = fetch_fresh(b.plain.port, "/" + name, [f"If-None-Match: {etags[name]}"])
                self.assertTrue(body_is(new)(g), g)
                g = fetch_fresh(b.plain.port, "/" + name, [f"If-None-Match: {new_etag}"])
                self.assertEqual(g.status, 304, g)
        self.on_each_backend(scenario)

    # 2 ---------------------------------------------------------------------------------
    def test_rewrite_in_place_with_another_size(self):
        def scenario(b):
            grow_old, grow_new = os.urandom(KIB), os.urandom(3 * KIB)
            shrink_old, shrink_new = os.urandom(MIB), os.urandom(300 * KIB)
            write(b.path("grow.bin"), grow_old)
            write(b.path("shrink.bin"), shrink_old)
            grow_etag = self.prime_page_cache(b, "grow.bin", grow_old)
            shrink_etag = fetch_fresh(b.plain.port, "/shrink.bin").header("ETag")
            write(b.path("grow.bin"), grow_new)
            write(b.path("shrink.bin"), shrink_new)
            # Until the open-file cache re-stats, a request may still go by the old size:
            # the old length of the new bytes (growing), or the new bytes cut short when
            # the file ends before that length (shrinking). Framing stays sound either way.
            olds, news = self.await_change(
                b.plain.port, "/grow.bin", body_is(grow_old), body_is(grow_new),
                transitional=lambda g: body_is(grow_new[:len(grow_old)])(g)
                and g.length() == len(grow_old))
            self.assertEqual(news[0].header("Content-Length"), str(len(grow_new)))
            self.assert_etags(olds, news, grow_etag)
            olds, news = self.await_change(
                b.plain.port, "/shrink.bin", body_is(shrink_old), body_is(shrink_new),
                transitional=lambda g: not g.complete and g.status == 200
                and g.length() == len(shrink_old) and shrink_new.startswith(g.body))
            self.assertEqual(news[0].header("Content-Length"), str(len(shrink_new)))
            self.assert_etags(olds, news, shrink_etag)
        self.on_each_backend(scenario)

    # 3 ---------------------------------------------------------------------------------
    def test_rewrite_in_place_with_the_same_size(self):
        def scenario(b):
            cases = {"same1k.bin": (os.urandom(KIB), os.urandom(KIB)),
                     "same4k.bin": (os.urandom(4 * KIB), os.urandom(4 * KIB)),  # a full page
                     "same1m.bin": (os.urandom(MIB), os.urandom(MIB)),
                     "ctime1k.bin": (os.urandom(KIB), os.urandom(KIB))}
            for name, (old, _) in cases.items():
                write(b.path(name), old)
            st = os.stat(b.path("ctime1k.bin"))
            for name in ("same1k.bin", "same4k.bin", "ctime1k.bin"):
                self.prime_page_cache(b, name, cases[name][0])
            # The rewrites must get another mtime than the first writes: the kernel stamps
            # mtime from a clock that may tick only every few ms, and a same-size rewrite
            # within one tick would be the same version (size, mtime) as far as any stat
            # can tell. 20 ms is past the coarsest tick (10 ms at HZ=100).
            time.sleep(0.02)
            for name, (_, new) in cases.items():
                write(b.path(name), new)
            # `cp -p` / `rsync --inplace -t`: the mtime put back, only ctime changed.
            os.utime(b.path("ctime1k.bin"), ns=(st.st_atime_ns, st.st_mtime_ns))
            after = os.stat(b.path("ctime1k.bin"))
            self.assertEqual((after.st_size, after.st_mtime_ns), (st.st_size, st.st_mtime_ns))
            self.assertNotEqual(after.st_ctime_ns, st.st_ctime_ns)
            for name, (old, new) in cases.items():
                self.await_change(b.plain.port, "/" + name, body_is(old), body_is(new))
        self.on_each_backend(scenario)

    # 4 ---------------------------------------------------------------------------------
    def test_delete_gives_404_and_a_new_file_at_a_404_path_is_served(self):
        def scenario(b):
            old, again, late = os.urandom(64 * KIB), os.urandom(5000), os.urandom(KIB)
            write(b.path("gone.bin"), old)
            self.assertTrue(body_is(old)(fetch_fresh(b.plain.port, "/gone.bin")))
            self.assertEqual(fetch_fresh(b.plain.port, "/late.bin").status, 404)
            os.unlink(b.path("gone.bin"))
            self.await_change(b.plain.port, "/gone.bin", body_is(old), status_is(404))
            write(b.path("gone.bin"), again)  # at a path that just answered 404
            write(b.path("late.bin"), late)  # at one that never existed
            self.await_change(b.plain.port, "/gone.bin", status_is(404), body_is(again))
            self.await_change(b.plain.port, "/late.bin", status_is(404), body_is(late))
        self.on_each_backend(scenario)

    # 5 ---------------------------------------------------------------------------------
    def test_on_the_fly_compression_follows_the_file(self):
        def scenario(b):
            gz = ["Accept-Encoding: gzip"]
            port = b.comp.port
            cases = {"otf_rename.html": (text(1, 20 * KIB), text(2, 17 * KIB)),
                     "otf_same.html": (text(3, 20 * KIB), text(4, 20 * KIB)),
                     "otf_ctime.html": (text(5, 20 * KIB), text(6, 20 * KIB))}
            etags = {}
            for name, (old, _) in cases.items():
                write(b.path(name), old)
            st = os.stat(b.path("otf_ctime.html"))
            hits = b.stats(b.comp)["compressed_cache"]["hits"]
            for name, (old, _) in cases.items():
                for _ in range(2):  # the second from the compressed-body cache
                    g = fetch_fresh(port, "/" + name, gz)
                    self.assertTrue(body_is(old, decode=gunzip, coding="gzip")(g), g)
                    self.assertTrue(g.header("ETag").endswith('-gz"'), g)
                etags[name] = g.header("ETag")
            self.assertEqual(b.stats(b.comp)["compressed_cache"]["hits"], hits + len(cases))
            time.sleep(0.02)  # a new mtime for the in-place rewrites (see the same-size test)
            replace(b.path("otf_rename.html"), cases["otf_rename.html"][1])
            write(b.path("otf_same.html"), cases["otf_same.html"][1])
            write(b.path("otf_ctime.html"), cases["otf_ctime.html"][1])
            os.utime(b.path("otf_ctime.html"), ns=(st.st_atime_ns, st.st_mtime_ns))
            for name, (old, new) in cases.items():
                olds, news = self.await_change(
                    port, "/" + name, body_is(old, decode=gunzip, coding="gzip"),
                    body_is(new, decode=gunzip, coding="gzip"), headers=gz)
                if name != "otf_ctime.html":  # the ETag is inode-size-mtime: nothing changed
                    self.assert_etags(olds, news, etags[name])
            # zstd on the fly: the new text too.
            g = fetch_fresh(port, "/otf_rename.html", ["Accept-Encoding: zstd"])
            self.assertEqual(g.header("Content-Encoding"), "zstd", g)
            p = lib.run(["zstd", "-d", "-c", "-q"], input=g.body)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, cases["otf_rename.html"][1])
        self.on_each_backend(scenario)

    def test_precompressed_siblings_appear_change_and_go(self):
        def scenario(b):
            gz = ["Accept-Encoding: gzip"]
            port = b.comp.port
            # Each page's sibling holds other text than the page, so the test can tell
            # a sibling's bytes from on-the-fly compression of the page.
            pages = {name: text(10 + i, 8 * KIB)
                     for i, name in enumerate(("sib_new.html", "sib_swap.html", "sib_gone.html"))}
            for name, data in pages.items():
                write(b.path(name), data)
            sib = {"sib_swap.html": gzip.compress(text(20, 6 * KIB)),
                   "sib_gone.html": gzip.compress(text(21, 6 * KIB))}
            for name, data in sib.items():  # written after the page: not older
                write(b.path(name + ".gz"), data)
            on_the_fly = {name: body_is(data, decode=gunzip, coding="gzip")
                          for name, data in pages.items()}
            etags = {}
            for name in pages:
                g = fetch_fresh(port, "/" + name, gz)
                want = body_is(sib[name], coding="gzip") if name in sib else on_the_fly[name]
                self.assertTrue(want(g), g)
                etags[name] = g.header("ETag")
            # sib_new.html.gz was looked for and found absent: remembered for a while only.
            self.assertGreater(b.stats(b.comp)["absent_siblings"]["checked"], 0)
            appeared, swapped = gzip.compress(text(22, 6 * KIB)), gzip.compress(text(23, 6 * KIB))
            write(b.path("sib_new.html.gz"), appeared)
            replace(b.path("sib_swap.html.gz"), swapped)  # a new file: not older either
            os.unlink(b.path("sib_gone.html.gz"))
            steps = {"sib_new.html": (on_the_fly["sib_new.html"], body_is(appeared, coding="gzip")),
                     "sib_swap.html": (body_is(sib["sib_swap.html"], coding="gzip"),
                                       body_is(swapped, coding="gzip")),
                     "sib_gone.html": (body_is(sib["sib_gone.html"], coding="gzip"),
                                       on_the_fly["sib_gone.html"])}
            for name, (is_old, is_new) in steps.items():
                olds, news = self.await_change(port, "/" + name, is_old, is_new, headers=gz)
                self.assert_etags(olds, news, etags[name])
        self.on_each_backend(scenario)

    # 6 ---------------------------------------------------------------------------------
    def test_a_response_in_flight_keeps_the_old_file_when_it_is_renamed_over(self):
        def scenario(b):
            path = b.path("big.bin")
            write(path, BIG_OLD)
            write(b.path("big.next"), BIG_NEW)
            with lib.connect(b.plain.port, TIMEOUT, rcvbuf=256 * KIB) as s:
                s.sendall(request("/big.bin"))
                rd = lib.Reader(s)
                _, status, _, hdrs = rd.read_head()
                self.assertEqual(status, 200)
                n = int(lib.Response(status, "", hdrs, b"", "").header("Content-Length"))
                self.assertEqual(n, len(BIG_OLD))
                body = bytearray(rd.buf)
                while len(body) < 4 * MIB:  # a few MiB, a little at a time
                    chunk = s.recv(64 * KIB)
                    self.assertTrue(chunk, "closed early")
                    body += chunk
                    time.sleep(0.001)
                os.rename(b.path("big.next"), path)
                # While this response waits, others get the new file (first 64 KiB of each,
                # so the polls stay cheap) ...
                head = ["Range: bytes=0-65535"]
                self.await_change(b.plain.port, "/big.bin", body_is(BIG_OLD[:65536], 206),
                                  body_is(BIG_NEW[:65536], 206), headers=head)
                # ... and it still ends with the old bytes, every one.
                while len(body) < n:
                    chunk = s.recv(1 << 20)
                    self.assertTrue(chunk, f"closed after {len(body)} of {n} body bytes")
                    body += chunk
                self.assertEqual(len(body), n)
                self.assertEqual(lib.sha256(body), lib.sha256(BIG_OLD))
            g = fetch_fresh(b.plain.port, "/big.bin")
            self.assertTrue(body_is(BIG_NEW)(g), g)
        self.on_each_backend(scenario)

    # 7 ---------------------------------------------------------------------------------
    def test_files_truncated_while_served_end_their_connections_only(self):
        def scenario(b):
            names = ("trunc_a.bin", "trunc_b.bin")
            for name in names:
                write(b.path(name), LONG)
            before = b.stats(b.plain)["truncated_files"]
            conns = []
            for name in names:
                s = lib.connect(b.plain.port, TIMEOUT, rcvbuf=128 * KIB)
                s.sendall(request("/" + name))
                rd = lib.Reader(s)
                _, status, _, hdrs = rd.read_head()
                self.assertEqual(status, 200)
                self.assertEqual(lib.Response(status, "", hdrs, b"", "").header("Content-Length"),
                                 str(len(LONG)))
                body = bytearray(rd.buf)
                while len(body) < MIB:
                    chunk = s.recv(64 * KIB)
                    self.assertTrue(chunk, "closed early")
                    body += chunk
                conns.append((s, body))
            # Shrunk to a page boundary: no page the server may still be sending from is
            # cut (a partial page would be zeroed past the new end in place).
            for name in names:
                os.truncate(b.path(name), 2 * MIB)
            for (s, body), name in zip(conns, names):
                with s:
                    while True:
                        # A timeout here: the server hung on; a reset: it dropped bytes the
                        # file still has (it must end the connection after them, with a FIN).
                        chunk = s.recv(1 << 20)
                        if not chunk:
                            break
                        body += chunk
                self.assertLess(len(body), len(LONG), name)
                self.assertGreaterEqual(len(body), 2 * MIB, f"{name}: bytes that exist lost")
                self.assertEqual(bytes(body), LONG[:len(body)], f"{name}: not the file's bytes")
            # Counted each, logged once; the server serves others right all along.
            deadline = time.monotonic() + BOUND
            while b.stats(b.plain)["truncated_files"] < before + 2:
                self.assertLess(time.monotonic(), deadline, b.stats(b.plain))
                time.sleep(POLL)
            self.assertEqual(b.stats(b.plain)["truncated_files"], before + 2)
            small = os.urandom(KIB)
            write(b.path("trunc_other.bin"), small)
            self.assertTrue(body_is(small)(fetch_fresh(b.plain.port, "/trunc_other.bin")))
            for name in names:
                self.await_change(
                    b.plain.port, "/" + name, lambda g: False, body_is(LONG[:2 * MIB]),
                    transitional=lambda g: not g.complete and g.length() == len(LONG)
                    and g.body == LONG[:len(g.body)])
            deadline = time.monotonic() + BOUND  # stderr is read by a thread of lib.Server
            while "a file shrank while being served" not in b.plain.stderr():
                self.assertLess(time.monotonic(), deadline, b.plain.stderr())
                time.sleep(POLL)
            logged = b.plain.stderr().count("a file shrank while being served")
            self.assertEqual(logged, 1, b.plain.stderr())
        self.on_each_backend(scenario)


if __name__ == "__main__":
    lib.main("content_change_test")
