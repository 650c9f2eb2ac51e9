"""The example programs of apps/examples, end to end (standard library only).

send_file: Python socket clients fetch a 1 MiB random file, a 3-byte file and an empty file
byte-exact (SHA-256); with --count the program exits 0 by itself and its last line reports 0
bytes copied in user space. A client that resets mid-transfer of a 64 MiB file ends only its
own connection: the next client gets the whole file. Bad arguments, a missing file and an
address it cannot listen on exit 2 with one line on stderr.

filter_stack: gzip and zstd over TLS, a 1 MiB text-like file and an empty file, print OK; a
key that does not match the certificate exits 1 with one line saying so.

Usage: examples_test.py SEND_FILE_BINARY FILTER_STACK_BINARY"""

import hashlib
import os
import random
import re
import select
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest

import junit_unittest

SEND_FILE = None  # set from argv
FILTER_STACK = None
TIMEOUT = 30  # seconds, for any one wait (sanitizer builds are slower)


def tmpdir():
    return tempfile.mkdtemp(prefix="pw_examples_", dir=os.environ.get("TEST_TMPDIR"))


def write_file(directory, name, data):
    path = os.path.join(directory, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def sha256_of_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(port):
    """Connects, reads to EOF; returns (bytes received, SHA-256)."""
    h = hashlib.sha256()
    n = 0
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        while True:
            block = s.recv(1 << 20)
            if not block:
                break
            h.update(block)
            n += len(block)
    return n, h.hexdigest()


def read_then_reset(port, want):
    """Connects with a small receive window, reads `want` bytes, then resets (RST)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(TIMEOUT)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 10)
    s.connect(("127.0.0.1", port))
    got = 0
    while got < want:
        block = s.recv(want - got)
        if not block:
            break
        got += len(block)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    return got


def own_lines(text):
    """The program's own stderr lines: without the library's notices ("pagewire: ...", e.g.
    that io_uring is unavailable and the epoll fallback runs)."""
    return [line for line in text.splitlines() if not line.startswith("pagewire: ")]


def summary(connections, sent):
    return (f"send_file: {connections} connections, {sent} bytes sent, "
            f"0 bytes copied in user space")


class SendFile:
    """send_file on 127.0.0.1, on an ephemeral port read from its "listening on" line."""

    def __init__(self, path, *extra):
        self.proc = subprocess.Popen([SEND_FILE, "--listen", "127.0.0.1:0", path, *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.head = b""
        deadline = time.monotonic() + TIMEOUT
        while not (m := re.search(rb"^send_file: listening on 127\.0\.0\.1:(\d+)\n", self.head,
                                  re.MULTILINE)):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stderr], [], [], max(left, 0))
            chunk = os.read(self.proc.stderr.fileno(), 4096) if ready else b""
            if not chunk:
                self.proc.kill()
                raise AssertionError(f"send_file did not start: {self.head!r}")
            self.head += chunk
        self.port = int(m.group(1))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def finish(self):
        """Waits for the exit (it has --count); returns (status, stderr lines)."""
        try:
            status = self.proc.wait(timeout=TIMEOUT)
        finally:
            self.kill()
        text = (self.head + self.proc.stderr.read()).decode()
        self.proc.stderr.close()
        return status, own_lines(text)


class SendFileServes(unittest.TestCase):
    def serve(self, data, clients=2):
        """Serves `data` to `clients` sequential clients; checks every copy and the exit."""
        path = write_file(tmpdir(), "body.bin", data)
        server = SendFile(path, "--count", str(clients))
        self.addCleanup(server.kill)  # when an assertion fails before it exits
        for _ in range(clients):
            self.assertEqual(fetch(server.port), (len(data), hashlib.sha256(data).hexdigest()))
        status, lines = server.finish()
        self.assertEqual(status, 0, lines)
        self.assertEqual(lines[-1], summary(clients, clients * len(data)), lines)
        self.assertEqual(len(lines), 2, lines)  # listening + summary: no error on the way

    def test_one_mib_random_file_byte_exact(self):
        self.serve(os.urandom(1 << 20))

    def test_three_byte_file_byte_exact(self):
        self.serve(b"abc")

    def test_empty_file_closes_at_once(self):
        self.serve(b"", clients=3)

    def test_client_reset_does_not_stop_the_next_client(self):
        # 64 MiB, sparse but for random blocks at the start, in the middle and at the end, so
        # that bytes out of place change the hash; quick to make.
        size = 64 << 20
        path = os.path.join(tmpdir(), "big.bin")
        with open(path, "wb") as f:
            f.truncate(size)
            for offset in (0, size // 2 + 123, size - 4096):
                f.seek(offset)
                f.write(os.urandom(4096))
        server = SendFile(path, "--count", "2")
        self.addCleanup(server.kill)
        got = read_then_reset(server.port, 256 << 10)
        self.assertEqual(got, 256 << 10)
        self.assertEqual(fetch(server.port), (size, sha256_of_file(path)))
        status, lines = server.finish()
        self.assertEqual(status, 0, lines)
        # The first send failed (reset) part way and was reported; the second was whole.
        self.assertTrue(any(re.match(r"send_file: connection 1: .* after \d+ of 67108864 bytes$",
                                     line) for line in lines), lines)
        m = re.fullmatch(r"send_file: 2 connections, (\d+) bytes sent, "
                         r"0 bytes copied in user space", lines[-1])
        self.assertIsNotNone(m, lines)
        self.assertGreaterEqual(int(m.group(1)), size + got)
        self.assertLess(int(m.group(1)), 2 * size)


class SendFileRefuses(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.file = write_file(tmpdir(), "small.bin", b"x" * 100)

    def check_exit_2(self, args, mentions):
        proc = subprocess.run([SEND_FILE, *args], capture_output=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(proc.stdout, b"")
        lines = own_lines(proc.stderr.decode())
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("send_file: "), lines[0])
        self.assertIn(mentions, lines[0])

    def test_bad_arguments_exit_2(self):
        f = self.file
        for args, mentions in [
            ([], "usage"),
            ([f], "usage"),
            (["--listen"], "--listen"),
            (["--listen", "127.0.0.1", f], "--listen"),
            (["--listen", "127.0.0.1:99999", f], "--listen"),
            (["--listen", "localhost:0", f], "--listen"),
            (["--listen", "127.0.0.1:0", f, "--count", "0"], "--count"),
            (["--listen", "127.0.0.1:0", f, "--count", "two"], "--count"),
            (["--listen", "127.0.0.1:0", f, "--frobnicate"], "--frobnicate"),
            (["--listen", "127.0.0.1:0", f, "extra"], "extra"),
        ]:
            with self.subTest(args=args):
                self.check_exit_2(args, mentions)

    def test_missing_file_exit_2(self):
        missing = os.path.join(tmpdir(), "no-such-file")
        self.check_exit_2(["--listen", "127.0.0.1:0", missing], missing)

    def test_address_in_use_exit_2(self):
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen(1)
            port = taken.getsockname()[1]
            self.check_exit_2(["--listen", f"127.0.0.1:{port}", self.file], "--listen")


class FilterStack(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        d = tmpdir()
        cls.cert = os.path.join(d, "cert.pem")
        cls.key = os.path.join(d, "key.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", cls.key, "-out", cls.cert],
                       check=True, capture_output=True, timeout=TIMEOUT)
        words = [b"pagewire ", b"splice ", b"page ", b"the ", b"of ", b"zero-copy ",
                 b"ring\n", b"GET / ", b"chain ", b"filter "]
        rng = random.Random(7)
        text = b"".join(rng.choice(words) for _ in range(1 << 18))[:1 << 20]
        cls.text = write_file(d, "text.txt", text)
        cls.empty = write_file(d, "empty.txt", b"")

    def run_stack(self, path, *extra):
        return subprocess.run([FILTER_STACK, path, "--cert", self.cert, "--key", self.key,
                               *extra], capture_output=True, timeout=TIMEOUT)

    def check_ok(self, path, coding, size):
        proc = self.run_stack(path, "--coding", coding)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertRegex(proc.stdout.decode(),
                         rf"^filter_stack: OK {size} bytes, coding {coding}, "
                         r"tls path (userspace|ktls)\n$")
        self.assertEqual(own_lines(proc.stderr.decode()), [])

    def test_gzip_text_file(self):
        self.check_ok(self.text, "gzip", 1 << 20)

    def test_zstd_text_file(self):
        self.check_ok(self.text, "zstd", 1 << 20)

    def test_gzip_empty_file(self):
        self.check_ok(self.empty, "gzip", 0)

    def test_zstd_empty_file(self):
        self.check_ok(self.empty, "zstd", 0)

    def test_key_not_matching_certificate_exits_1(self):
        other = os.path.join(tmpdir(), "other.key")
        subprocess.run(["openssl", "genpkey", "-algorithm", "EC", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-out", other],
                       check=True, capture_output=True, timeout=TIMEOUT)
        proc = subprocess.run([FILTER_STACK, self.text, "--cert", self.cert, "--key", other],
                              capture_output=True, timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertEqual(proc.stdout, b"")
        lines = own_lines(proc.stderr.decode())
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith("filter_stack: "), lines[0])
        self.assertIn("mismatch", lines[0])


if __name__ == "__main__":
    SEND_FILE = os.path.abspath(sys.argv[1])
    FILTER_STACK = os.path.abspath(sys.argv[2])
    junit_unittest.run_suite("examples_test")
