"""Shared pieces of sendfile_server's end-to-end tests: start the real binary on
loopback (an ephemeral port read from its start-up line), build document roots, talk
raw HTTP over sockets, and a unittest runner that writes the JUnit XML Bazel asks for
(XML_OUTPUT_FILE), so `make test` counts each case. Standard library only.
Every wait here is bounded by a timeout."""

import hashlib
import os
import re
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

import junit_unittest

BINARY = None  # set by main() from argv[1]

SIZES = {"1k.bin": 1 << 10, "64k.bin": 64 << 10, "1m.bin": 1 << 20, "64m.bin": 64 << 20}


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def make_root(sizes=SIZES):
    """A temporary document root with random files of the demo sizes and an index.html.
    Returns (path, {name: sha256})."""
    root = tempfile.mkdtemp(prefix="pw_root_", dir=os.environ.get("TEST_TMPDIR"))
    digests = {}
    for name, size in sizes.items():
        data = os.urandom(size)
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
        digests[name] = sha256(data)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write("<!doctype html><title>pagewire test root</title>\n")
    return root, digests


def wait_for_start(proc, pattern, timeout, name):
    """Reads `proc`'s stderr until `pattern` (bytes regex) matches what came so far; returns
    (the match, the bytes read). When the process exits first or `timeout` passes, kills it
    and raises RuntimeError with what it printed."""
    deadline = time.monotonic() + timeout
    buf = b""
    while not (m := re.search(pattern, buf, re.MULTILINE)):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            rest = proc.stderr.read() if proc.poll() is not None else b""
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
            raise RuntimeError(f"{name} did not start: {(buf + rest).decode(errors='replace')}")
        ready, _, _ = select.select([proc.stderr], [], [], left)
        if ready:
            buf += os.read(proc.stderr.fileno(), 4096)
    return m, buf


class Server:
    """The sendfile_server binary on 127.0.0.1 with an ephemeral port (a --listen in `extra`
    comes later and wins)."""

    def __init__(self, root, *extra, threads=1, start_timeout=20, env=None):
        """`env`: variables added to this process's environment for the server."""
        args = [BINARY, "--root", root, "--listen", "127.0.0.1:0", "--threads", str(threads),
                *extra]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env={**os.environ, **(env or {})})
        self.stderr_lines = []
        self.port = None
        m, buf = wait_for_start(self.proc, rb"on (\S+):(\d+) with", start_timeout, "server")
        self.port = int(m.group(2))
        self.stderr_lines.append(buf.decode(errors="replace"))
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode(errors="replace"))

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Sends `sig` and waits; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stderr(self):
        """What the server wrote to stderr: so far, or all of it once the process exited (the
        drain thread reads to the pipe's EOF first, so a line written just before the exit is
        not missed)."""
        if self.proc.poll() is not None:
            self._drain.join(timeout=10)
        return "".join(self.stderr_lines)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        try:
            rc = self.stop() if self.proc.poll() is None else self.proc.returncode
            if rc != 0 and exc_type is None:  # sanitizer reports, crashes at exit
                raise AssertionError(f"server exited with {rc}: {self.stderr()}")
        finally:
            self.kill()


def connect(port, timeout=10, rcvbuf=None):
    """A TCP connection to 127.0.0.1:port. `rcvbuf` caps the receive buffer (set before
    connecting, so no autotuning: the server cannot get far ahead of what the test read)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        s.connect(("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return s


def parse_head(head):
    """A response head (bytes, without the blank line) -> (version, status, reason,
    [(name, value)])."""
    lines = head.decode("latin-1").split("\r\n")
    version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = []
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.append((k, v.strip()))
    return version, int(status), reason, headers


class Response:
    def __init__(self, status, reason, headers, body, version):
        self.status, self.reason, self.headers, self.body, self.version = (
            status, reason, headers, body, version)

    def header(self, name):
        """The value of `name` (case-insensitive), or None; several -> joined with ', '."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def count(self, name):
        return sum(1 for k, _ in self.headers if k.lower() == name.lower())


class Reader:
    """Reads HTTP/1.1 responses off a socket (Content-Length framing only, which is all
    this server sends)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(1 << 20)
        if not chunk:
            raise EOFError("connection closed")
        self.buf += chunk

    def read_head(self):
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        return parse_head(head)

    def read_response(self, head_request=False):
        version, status, reason, headers = self.read_head()
        r = Response(status, reason, headers, b"", version)
        length = r.header("Content-Length")
        if head_request or status == 304 or length is None:
            return r
        n = int(length)
        while len(self.buf) < n:
            self._fill()
        r.body, self.buf = self.buf[:n], self.buf[n:]
        return r

    def at_eof(self, timeout=5):
        """True when the peer closes (after any buffered bytes) within `timeout`."""
        if self.buf:
            return False
        self.sock.settimeout(timeout)
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False


def request(port, raw, head_request=False, timeout=10):
    """One request on a fresh connection; returns the Response."""
    with connect(port, timeout) as s:
        s.sendall(raw)
        return Reader(s).read_response(head_request)


def get(port, path, headers=(), method="GET", version="HTTP/1.1"):
    lines = [f"{method} {path} {version}", "Host: localhost", *headers, "", ""]
    return request(port, "\r\n".join(lines).encode("latin-1"), head_request=method == "HEAD")


def raw_exchange(port, data, timeout=5, limit=None):
    """Sends `data` (the server may close before taking it all), returns every byte until
    the server closes, `timeout` idles or `limit` bytes have come."""
    with connect(port, timeout) as s:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        try:
            while limit is None or len(out) < limit:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                out += chunk
        except (socket.timeout, ConnectionResetError):
            pass
        return out


def run(args, timeout=60, **kw):
    return subprocess.run(args, capture_output=True, timeout=timeout, check=False, **kw)


def main(suite_name):
    """Takes the binary from argv[1]; unittest plus JUnit XML in $XML_OUTPUT_FILE."""
    global BINARY
    BINARY = os.path.abspath(sys.argv[1])
    junit_unittest.run_suite(suite_name)
