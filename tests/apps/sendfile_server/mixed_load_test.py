"""sendfile_server under mixed load, a bounded chaos run: clients that behave check every
response byte for byte while, at the same time on the same server, other clients send
garbage, cut requests short, reset connections in the middle of a response, read slowly,
hold connections idle, send oversized heads, probe for files outside the root and
pipeline bursts. Pins down:
- bad input and vanished clients cost only their own connection: every response a good
  client gets is complete and byte-exact (identity, ranges, multipart, HEAD, 304, gzip and
  zstd), pipelined responses come in order, and a half-closed client still gets its body;
- once the load stops every connection closes (open_connections in /-/stats falls back to
  the one asking) and no descriptor is left behind: no socket but the listeners, each
  file open at most once per thread, pipes within the pools' bound; the same after a
  second round, with as many io_uring (or epoll) descriptors as after the first;
- every access-log line is well-formed and the server exits 0 on SIGTERM (in make test's
  asan-ubsan pass, with no sanitizer report).
All of it on io_uring and again on the epoll fallback. Each round runs ROUND_SECONDS; every
socket has a timeout, so nothing can hang. The seed of each worker is printed on failure
(MIXED_LOAD_SEED=N replays the request mix; the timing is the machine's).

Usage: mixed_load_test.py SENDFILE_SERVER_BINARY"""

import gzip
import json
import os
import random
import re
import socket
import struct
import tempfile
import threading
import time
import unittest

import server_testlib as lib

ROUND_SECONDS = 4.0
TIMEOUT = 10  # any one socket operation

COMBINED = re.compile(r'^\S+ - \S+ \[[^\]]+\] "(?:[^"\\]|\\.)*" \d{3} \d+ '
                      r'"(?:[^"\\]|\\.)*" "(?:[^"\\]|\\.)*"$')


def make_files():
    rng = random.Random(7)
    words = [b"pagewire", b"splice", b"page", b"zero", b"copy", b"socket", b"ring", b"<p>"]
    text = b" ".join(rng.choice(words) for _ in range(60000))
    return {
        "1k.bin": os.urandom(1 << 10),
        "64k.bin": os.urandom(64 << 10),
        "1m.bin": os.urandom(1 << 20),
        "odd.bin": os.urandom((3 << 20) + 123),
        "page.html": text,  # compressible: gzip and zstd on the fly
    }


def setUpModule():
    global ROOT, FILES
    FILES = make_files()
    ROOT = tempfile.mkdtemp(prefix="pw_mixed_", dir=os.environ.get("TEST_TMPDIR"))
    for name, data in FILES.items():
        with open(os.path.join(ROOT, name), "wb") as f:
            f.write(data)


class Failures:
    """What the workers saw go wrong, shared between threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []

    def add(self, who, what):
        with self.lock:
            if len(self.items) < 20:
                self.items.append(f"{who}: {what}")


def request_bytes(method, path, headers=()):
    lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers, "", ""]
    return "\r\n".join(lines).encode("latin-1")


def zstd_decode(data):
    p = lib.run(["zstd", "-d", "-c", "-q"], input=data)
    return p.stdout if p.returncode == 0 else None


class Check:
    """One request a good client makes, and what its response must be. `etags`: the ETags
    the client has seen, by path; a conditional request needs one (else it is a plain GET)."""

    def __init__(self, rng, etags):
        name = rng.choice(list(FILES))
        data = FILES[name]
        path = "/" + name
        kind = rng.choice(["get", "get", "range", "multi", "head", "gzip", "zstd", "cond"])
        if kind in ("gzip", "zstd"):
            path, data = "/page.html", FILES["page.html"]
        if kind == "cond" and path not in etags:
            kind = "get"
        self.kind, self.data, self.path = kind, data, path
        self.headers = []
        if kind == "range":
            a = rng.randrange(len(data))
            b = rng.randrange(a, len(data))
            self.span = (a, b)
            self.headers = [f"Range: bytes={a}-{b}"]
        elif kind == "multi":
            self.headers = ["Range: bytes=0-9,100-199"]
        elif kind in ("gzip", "zstd"):
            self.headers = [f"Accept-Encoding: {kind}"]
        elif kind == "cond":
            self.headers = [f"If-None-Match: {etags[path]}"]
        self.method = "HEAD" if kind == "head" else "GET"

    def raw(self):
        return request_bytes(self.method, self.path, self.headers)

    def verify(self, r):
        """None when `r` is right, else what is wrong."""
        d = self.data
        if self.kind == "get":
            ok = r.status == 200 and r.body == d
        elif self.kind == "range":
            a, b = self.span
            ok = (r.status == 206 and r.body == d[a:b + 1] and
                  r.header("Content-Range") == f"bytes {a}-{b}/{len(d)}")
        elif self.kind == "multi":
            ok = (r.status == 206 and
                  (r.header("Content-Type") or "").startswith("multipart/byteranges") and
                  d[0:10] in r.body and d[100:200] in r.body)
        elif self.kind == "head":
            ok = (r.status == 200 and r.body == b"" and
                  r.header("Content-Length") == str(len(d)))
        elif self.kind == "gzip":
            ok = (r.status == 200 and r.header("Content-Encoding") == "gzip" and
                  gzip.decompress(r.body) == d)
        elif self.kind == "zstd":
            ok = (r.status == 200 and r.header("Content-Encoding") == "zstd" and
                  zstd_decode(r.body) == d)
        else:  # cond
            ok = r.status == 304 and r.body == b""
        if ok:
            return None
        return (f"{self.method} {self.path} {self.headers}: status {r.status}, "
                f"{len(r.body)} body bytes")


class Round:
    """One round of load: every worker runs until the deadline, then stops by itself."""

    def __init__(self, port, seed):
        self.port = port
        self.seed = seed
        self.deadline = time.monotonic() + ROUND_SECONDS
        self.failures = Failures()
        self.lock = threading.Lock()
        self.counts = {}

    def count(self, what):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1

    def running(self):
        return time.monotonic() < self.deadline

    def connect(self):
        return lib.connect(self.port, timeout=TIMEOUT)

    # ---- clients that behave ----

    def keep_alive(self, rng, who):
        """Requests one at a time on a keep-alive connection, a new one every ~20."""
        etags = {}
        while self.running():
            with self.connect() as s:
                reader = lib.Reader(s)
                for _ in range(rng.randrange(1, 40)):
                    if not self.running():
                        break
                    c = Check(rng, etags)
                    s.sendall(c.raw())
                    r = reader.read_response(head_request=c.method == "HEAD")
                    if c.kind == "get" and r.header("ETag"):
                        etags[c.path] = r.header("ETag")
                    problem = c.verify(r)
                    if problem:
                        self.failures.add(who, problem)
                        return
                    self.count("verified")

    def pipeline(self, rng, who):
        """Bursts of 2-10 requests in one write; the responses must come back in order."""
        while self.running():
            with self.connect() as s:
                checks = [Check(rng, {}) for _ in range(rng.randrange(2, 11))]
                s.sendall(b"".join(c.raw() for c in checks))
                reader = lib.Reader(s)
                for c in checks:
                    problem = c.verify(reader.read_response(head_request=c.method == "HEAD"))
                    if problem:
                        self.failures.add(who, "pipelined " + problem)
                        return
                    self.count("verified")

    def half_close(self, rng, who):
        """A request, then shutdown(SHUT_WR): the response still comes whole, then EOF."""
        while self.running():
            name = rng.choice(["1k.bin", "64k.bin", "1m.bin"])
            with self.connect() as s:
                s.sendall(request_bytes("GET", "/" + name))
                s.shutdown(socket.SHUT_WR)
                reader = lib.Reader(s)
                r = reader.read_response()
                if r.status != 200 or r.body != FILES[name]:
                    self.failures.add(who, f"half-closed GET /{name}: status {r.status}")
                    return
                if not reader.at_eof(timeout=TIMEOUT):
                    self.failures.add(who, "half-closed connection not closed after response")
                    return
                self.count("verified")

    # ---- clients that misbehave: only their own connection may suffer ----

    def garbage(self, rng, who):
        """Random bytes, sometimes after a valid request line: a 4xx or a close."""
        while self.running():
            junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 3000)))
            if rng.random() < 0.5:  # a NUL makes the header block invalid, always
                junk = b"GET /1k.bin HTTP/1.1\r\nX: \x00" + junk
            junk += b"\r\n\r\n"
            out = lib.raw_exchange(self.port, junk, TIMEOUT, limit=4096)
            if out and not re.match(rb"HTTP/1\.[01] (4\d\d|501|505) ", out):
                self.failures.add(who, f"garbage answered with {out[:40]!r}")
                return
            self.count("garbage")

    def cut_short(self, rng, who):
        """Part of a request, then close (sometimes with a reset), up to ~1,000 a second.
        Unpaced, this thread opens 10,000 a second; a TSan build of the server on the epoll
        fallback then falls seconds behind and times out good clients too, when two tests
        share the machine (io_uring keeps up; so does every other build)."""
        full = request_bytes("GET", "/1m.bin", ["Range: bytes=0-99"])
        while self.running():
            with self.connect() as s:
                s.sendall(full[:rng.randrange(1, len(full))])
                if rng.random() < 0.5:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.count("cut")
            time.sleep(0.001)

    def reset_mid_body(self, rng, who):
        """A large body, a few KiB of it read, then RST."""
        while self.running():
            with self.connect() as s:
                s.sendall(request_bytes("GET", rng.choice(["/1m.bin", "/odd.bin"])))
                got = 0
                want = rng.randrange(1, 256 << 10)
                while got < want:
                    chunk = s.recv(min(65536, want - got))
                    if not chunk:
                        break
                    got += len(chunk)
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.count("reset")

    def slow_reader(self, rng, who):
        """A small receive buffer, 4 KiB every 20 ms for up to half a second, then close."""
        while self.running():
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.settimeout(TIMEOUT)
            with s:
                s.connect(("127.0.0.1", self.port))
                s.sendall(request_bytes("GET", "/odd.bin"))
                stop = time.monotonic() + rng.uniform(0.1, 0.5)
                while time.monotonic() < stop and s.recv(4096):
                    time.sleep(0.02)
            self.count("slow")

    def oversized(self, rng, who):
        """Heads past the 16 KiB limit: 431 (or 414 for the request line), never served."""
        while self.running():
            if rng.random() < 0.5:
                raw = request_bytes("GET", "/1k.bin", ["X-Big: " + "a" * (20 << 10)])
            else:
                raw = request_bytes("GET", "/" + "a" * (20 << 10))
            out = lib.raw_exchange(self.port, raw, TIMEOUT, limit=4096)
            if out and not re.match(rb"HTTP/1\.1 (431|414|400) ", out):
                self.failures.add(who, f"oversized head answered with {out[:40]!r}")
                return
            self.count("oversized")

    def escape(self, rng, who):
        """Paths that climb out of the root: never a 200."""
        paths = ["/../etc/passwd", "/%2e%2e/etc/passwd", "/.%2e/x", "/%252e%252e/x",
                 "/..%2fetc", "//etc/passwd", "/a%00b", "../x"]
        while self.running():
            path = rng.choice(paths)
            r = lib.request(self.port, request_bytes("GET", path), timeout=TIMEOUT)
            if r.status not in (400, 404):
                self.failures.add(who, f"GET {path} answered {r.status}")
                return
            self.count("escape")

    def idle(self, rng, who):
        """Connections that never send a byte: closed by the header timeout."""
        while self.running():
            with self.connect() as s:
                start = time.monotonic()
                try:
                    closed = s.recv(1) == b""
                except ConnectionResetError:
                    closed = True
                if not closed or time.monotonic() - start > TIMEOUT - 1:
                    self.failures.add(who, "idle connection not closed by the header timeout")
                    return
            self.count("idle_closed")

    def run(self):
        workers = ([self.keep_alive] * 4 + [self.pipeline] * 2 + [self.half_close] +
                   [self.garbage, self.cut_short, self.reset_mid_body, self.slow_reader,
                    self.oversized, self.escape, self.idle])
        threads = []
        for i, work in enumerate(workers):
            who = f"{work.__name__}#{i} (seed {self.seed + i})"
            threads.append(threading.Thread(target=self.guard, args=(work, who, self.seed + i)))
        for t in threads:
            t.start()
        for t in threads:
            t.join(ROUND_SECONDS + 4 * TIMEOUT)
            if t.is_alive():
                self.failures.add("harness", "a worker is still running after its bound")

    def guard(self, work, who, seed):
        try:
            work(random.Random(seed), who)
        except (OSError, EOFError, ValueError) as e:
            # A good client's connection must not fail; a bad one's may be refused.
            if work.__name__ in ("keep_alive", "pipeline", "half_close", "idle", "escape"):
                self.failures.add(who, f"{type(e).__name__}: {e}")


class MixedLoad(unittest.TestCase):
    def stats(self, srv):
        return json.loads(lib.get(srv.port, "/-/stats").body)

    def settle(self, srv):
        """Waits until the only open connection is the one asking."""
        deadline = time.monotonic() + 20
        while True:
            st = self.stats(srv)
            if st["open_connections"] == 1:
                break
            if time.monotonic() > deadline:
                self.fail(f"{st['open_connections']} connections still open after the load")
            time.sleep(0.2)

    @staticmethod
    def open_fds(pid):
        """{what: count} of the process's descriptors: 'pipe', 'anon_inode' or the path of a
        file or directory; 'socket' counts sockets, not descriptors (the epoll fallback
        waits on a dup of the fd, so a listener can show up twice)."""
        d = f"/proc/{pid}/fd"
        kinds = {}
        sockets = set()
        for fd in os.listdir(d):
            try:
                target = os.readlink(os.path.join(d, fd))
            except OSError:  # closed while listing
                continue
            if target.startswith("socket:"):
                sockets.add(target)
                continue
            kind = target.split(":")[0] if not target.startswith("/") else target
            kinds[kind] = kinds.get(kind, 0) + 1
        kinds["socket"] = len(sockets)
        return kinds

    def check_no_leak(self, srv, threads, before):
        """After a round: no socket but the listeners (one per thread), as many io_uring,
        eventfd and epoll descriptors as after the round `before` (None: the first); each
        served file open at most once per thread (its open-file cache); pipes within the
        pools' bound. Returns what it saw. A descriptor lost per connection or per request
        would be thousands here."""
        deadline = time.monotonic() + 10  # the last stats connection may still be closing
        while True:
            after = self.open_fds(srv.proc.pid)
            if after.get("socket") == threads or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual(after.get("socket"), threads, after)
        if before is not None:
            self.assertEqual(after.get("anon_inode"), before.get("anon_inode"), (before, after))
        for kind, n in after.items():
            if kind.startswith(ROOT):
                self.assertLessEqual(n, threads, (kind, after))
        self.assertLessEqual(after.get("pipe", 0), 2 * 64 * threads, after)
        return after

    def test_bad_clients_never_hurt_good_ones_and_nothing_leaks(self):
        self.mixed_load()

    def test_the_same_on_the_epoll_fallback(self):
        """What a server gets where io_uring is refused (seccomp, io_uring_disabled)."""
        self.mixed_load(env={"PAGEWIRE_FORCE_FALLBACK": "1"})

    def mixed_load(self, env=None):
        log = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")), "access.log")
        seed = int(os.environ.get("MIXED_LOAD_SEED", random.randrange(1 << 30)))
        threads = 2
        with lib.Server(ROOT, "--compress", "gzip,zstd", "--stats", "--cache-mb", "1",
                        "--header-timeout-ms", "1000", "--idle-timeout-ms", "2000",
                        "--send-timeout-ms", "3000", "--access-log", log,
                        threads=threads, env=env) as srv:
            seen = None
            for n in range(2):
                rnd = Round(srv.port, seed + 1000 * n)
                rnd.run()
                self.assertEqual(rnd.failures.items, [], f"round {n + 1}, seed {seed}")
                self.assertIsNone(srv.proc.poll(), "the server died")
                for what in ("verified", "garbage", "cut", "reset", "slow", "oversized",
                             "escape", "idle_closed"):
                    self.assertGreater(rnd.counts.get(what, 0), 0, f"no {what} in round {n + 1}")
                self.settle(srv)
                seen = self.check_no_leak(srv, threads, seen)
            st = self.stats(srv)
            if env:
                self.assertEqual(st["backend"], "fallback")
            self.assertGreater(st["timeouts"], 0)
            self.assertEqual(st["truncated_files"], 0)
            self.assertEqual(srv.stop(), 0, srv.stderr())
        with open(log, encoding="latin-1") as f:
            lines = f.read().splitlines()
        self.assertGreater(len(lines), 0)
        bad = [line for line in lines if not COMBINED.match(line)]
        self.assertEqual(bad[:3], [])


if __name__ == "__main__":
    lib.main("mixed_load_test")
