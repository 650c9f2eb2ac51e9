"""apps/asio_file_server, the benchmark's Asio baseline, end to end (standard library only).

The baseline is only a fair row of the server comparison if it serves what pagewire serves,
byte for byte, and stays as fast at the end of a run as at the start. Pinned down here:
every file size (empty, below, at and past its 64 KiB chunk) comes back byte-exact with
keep-alive on one connection; HEAD has GET's headers and no body; a missing file is a 404 and
the connection goes on; a path with ".." is a 400; clients that reset in the middle of a
response leave no file open in the server (each one used to leak a descriptor, and a
benchmark's wrk runs end that way 64 at a time); SIGTERM exits 0.

Usage: asio_file_server_test.py ASIO_FILE_SERVER_BINARY"""

import hashlib
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import unittest

import junit_unittest

# sendfile_server's test library (its folder in the runfiles tree, beside this one).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "sendfile_server"))
import server_testlib  # noqa: E402

BINARY = None  # set from argv
TIMEOUT = 30  # seconds, for any one wait (sanitizer builds are slower)
SIZES = {"empty.bin": 0, "1k.bin": 1 << 10, "64k.bin": 64 << 10, "odd.bin": (64 << 10) * 3 + 7,
         "1m.bin": 1 << 20}
BIG = 64 << 20  # sparse; what matters is that a response outlasts the client


def make_root():
    """sendfile_server's test root (random files of SIZES, digests) and a sparse BIG file."""
    root, digests = server_testlib.make_root(SIZES)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.truncate(BIG)
    return root, digests


class AsioServer:
    """The binary on 127.0.0.1, on the free port its "listening on" line names."""

    def __init__(self, root):
        self.proc = subprocess.Popen([BINARY, "--root", root, "--listen", "127.0.0.1:0"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        m, _ = server_testlib.wait_for_start(
            self.proc, rb"^asio_file_server: listening on 127\.0\.0\.1:(\d+)\n", TIMEOUT,
            "asio_file_server")
        self.port = int(m.group(1))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()

    def open_files(self):
        """Regular files the server has open (its descriptors that point into a root)."""
        fd_dir = f"/proc/{self.proc.pid}/fd"
        names = []
        for fd in os.listdir(fd_dir):
            try:
                names.append(os.readlink(os.path.join(fd_dir, fd)))
            except FileNotFoundError:  # closed while we looked
                pass
        return [n for n in names if n.endswith(".bin")]


class Client:
    """One keep-alive connection: requests written on it, responses read by server_testlib."""

    def __init__(self, port):
        self.sock = server_testlib.connect(port, TIMEOUT)
        self.reader = server_testlib.Reader(self.sock)

    def close(self):
        self.sock.close()

    def request(self, method, path):
        """The Response (server_testlib's) to METHOD path."""
        self.sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        return self.reader.read_response(head_request=method == "HEAD")


class AsioFileServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.digests = make_root()

    def setUp(self):
        self.server = AsioServer(self.root)
        self.addCleanup(self.server.kill)

    def client(self):
        client = Client(self.server.port)
        self.addCleanup(client.close)
        return client

    def check_get(self, client, name):
        """GET /name on `client`: a 200 with the file's length and bytes."""
        r = client.request("GET", "/" + name)
        self.assertEqual(r.status, 200, name)
        self.assertEqual(int(r.header("Content-Length")), SIZES[name], name)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), self.digests[name], name)

    def test_every_size_byte_exact_on_one_keep_alive_connection(self):
        client = self.client()
        for _ in range(2):
            for name in SIZES:
                self.check_get(client, name)

    def test_head_has_the_headers_of_get_and_no_body(self):
        client = self.client()
        r = client.request("HEAD", "/odd.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(int(r.header("Content-Length")), SIZES["odd.bin"])
        # No body came: the next response on the connection is whole and in place.
        self.check_get(client, "1k.bin")

    def test_missing_file_is_404_and_the_connection_goes_on(self):
        client = self.client()
        r = client.request("GET", "/nothing-here.bin")
        self.assertEqual((r.status, r.header("Content-Length"), r.body), (404, "0", b""))
        self.check_get(client, "64k.bin")

    def test_dot_dot_is_400(self):
        self.assertEqual(server_testlib.get(self.server.port, "/../etc/passwd").status, 400)

    def test_clients_resetting_mid_response_leave_no_file_open(self):
        self.assertEqual(self.server.open_files(), [])
        for _ in range(16):
            s = server_testlib.connect(self.server.port, TIMEOUT, rcvbuf=64 << 10)
            s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
            self.assertTrue(s.recv(4096))  # the response has begun
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
        # Each aborted response ends at its next write; then its file must be closed.
        deadline = time.monotonic() + TIMEOUT
        while (still := self.server.open_files()) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(still, [])
        self.check_get(self.client(), "1m.bin")

    def test_sigterm_exits_0(self):
        self.server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.server.proc.wait(timeout=TIMEOUT), 0)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    junit_unittest.run_suite("asio_file_server_test")
