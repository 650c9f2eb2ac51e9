"""apps/asio_file_server, the benchmark's Asio baseline, end to end (standard library only).

The baseline is only a fair row of the server comparison if it serves what pagewire serves,
byte for byte, and stays as fast at the end of a run as at the start. Pinned down here:
every file size (empty, below, at and past its 64 KiB chunk) comes back byte-exact with
keep-alive on one connection; HEAD has GET's headers and no body; a missing file is a 404 and
the connection goes on; a path with ".." is a 400; clients that reset in the middle of a
response leave no file open in the server (each one used to leak a descriptor, and a
benchmark's wrk runs end that way 64 at a time); SIGTERM exits 0. Running out of descriptors
(EMFILE) pauses accepting and it resumes once connections close (the first such error used to
end the accept loop for good); bad --listen and --threads values are a one-line error and exit
status 2 (they used to wrap, or pick a random port); a worker thread that cannot start is an
error and exit status 1 (it used to be std::terminate).

Usage: asio_file_server_test.py ASIO_FILE_SERVER_BINARY"""

import hashlib
import os
import resource
import select
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

    def __init__(self, root, *extra, preexec_fn=None):
        self.proc = subprocess.Popen([BINARY, "--root", root, "--listen", "127.0.0.1:0", *extra],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     preexec_fn=preexec_fn)
        m, _ = server_testlib.wait_for_start(
            self.proc, rb"^asio_file_server: listening on 127\.0\.0\.1:(\d+)\n", TIMEOUT,
            "asio_file_server")
        self.port = int(m.group(1))

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc.stderr.close()

    def read_stderr_until(self, text, timeout):
        """Reads the server's stderr until `text` (bytes) has appeared or `timeout` passes;
        returns what was read."""
        deadline = time.monotonic() + timeout
        buf = b""
        while text not in buf and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([self.proc.stderr], [], [], left)
            if ready:
                chunk = os.read(self.proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                buf += chunk
        return buf

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

    def test_more_threads_still_serve(self):
        server = AsioServer(self.root, "--threads", "4")
        self.addCleanup(server.kill)
        client = Client(server.port)
        self.addCleanup(client.close)
        self.check_get(client, "64k.bin")


FD_LIMIT = 32  # the server's RLIMIT_NOFILE in the EMFILE test
FLOOD = 60  # connections opened at once: well past FD_LIMIT


def limit_open_files():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


class AcceptAfterEmfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root, cls.digests = make_root()

    def test_accepts_again_once_descriptors_free_up(self):
        server = AsioServer(self.root, preexec_fn=limit_open_files)
        self.addCleanup(server.kill)
        flood = []
        try:
            for _ in range(FLOOD):  # the kernel completes them all: the backlog is long
                flood.append(server_testlib.connect(server.port, TIMEOUT))
            err = server.read_stderr_until(b"Too many open files", TIMEOUT)
            self.assertIn(b"Too many open files", err)
        finally:
            for s in flood:
                s.close()
        # Its sessions see EOF and close; the pause ends; it accepts (and drops) the rest of the
        # flood, then this.
        sock = server_testlib.connect(server.port, TIMEOUT)
        self.addCleanup(sock.close)
        sock.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: t\r\n\r\n")
        r = server_testlib.Reader(sock).read_response()
        self.assertEqual(r.status, 200)
        self.assertEqual(hashlib.sha256(r.body).hexdigest(), self.digests["1k.bin"])
        self.assertIsNone(server.proc.poll())


class BadFlags(unittest.TestCase):
    def run_binary(self, *args, preexec_fn=None, timeout=TIMEOUT):
        """(exit status, stderr) of the binary with `args`, killed after `timeout` (None then)."""
        proc = subprocess.Popen([BINARY, *args], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        try:
            _, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            return None, err
        return proc.returncode, err

    def check_rejected(self, *args):
        status, err = self.run_binary("--root", "/", *args, timeout=10)
        self.assertEqual(status, 2, (args, err))
        self.assertEqual(err.count(b"\n"), 1, (args, err))
        self.assertNotIn(b"listening", err, args)

    def test_bad_ports_are_rejected(self):
        for port in ["70000", "65536", "abc", "", "-1", "+80", " 80", "80x", "0x50",
                     "99999999999999999999"]:
            with self.subTest(port=port):
                self.check_rejected("--listen", "127.0.0.1:" + port)
        self.check_rejected("--listen", "127.0.0.1")
        self.check_rejected("--listen", ":80")

    def test_bad_thread_counts_are_rejected(self):
        for threads in ["5000000000", "0", "-1", "1025", "abc", "", "4x", " 4"]:
            with self.subTest(threads=threads):
                self.check_rejected("--threads", threads)

    def test_unknown_flag_and_missing_root_are_rejected(self):
        self.check_rejected("--bogus", "1")
        self.check_rejected("--threads")
        status, err = self.run_binary("--threads", "2", timeout=10)
        self.assertEqual((status, err.count(b"\n")), (2, 1), err)

    def test_a_thread_that_cannot_start_is_an_error_not_terminate(self):
        # 1024 threads' stacks do not fit in 256 MiB of address space: one fails to start.
        def limit_address_space():
            resource.setrlimit(resource.RLIMIT_AS, (256 << 20, 256 << 20))

        status, err = self.run_binary("--root", "/", "--listen", "127.0.0.1:0", "--threads",
                                      "1024", preexec_fn=limit_address_space, timeout=10)
        if b"Sanitizer" in err:
            self.skipTest("a sanitizer cannot run in 256 MiB of address space")
        self.assertNotIn(b"terminate called", err)
        self.assertNotEqual(status, -signal.SIGABRT, err)
        if b"cannot start thread" not in err:
            self.skipTest(f"every thread started under the limit: {err!r}")
        self.assertEqual(status, 1, err)
        self.assertNotIn(b"listening", err)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    junit_unittest.run_suite("asio_file_server_test")
