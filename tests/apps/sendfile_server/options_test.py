"""sendfile_server's command line: a bad flag, a missing root or an unreadable
certificate gives one line on stderr and a non-zero exit before anything is served, and
so does a port another server listens on;
--help prints the usage and exits 0; SIGINT and SIGTERM stop it with status 0;
--busy-poll-us reaches the threads' rings; --notsent-lowat caps the unsent bytes a stalled
client leaves in the server's socket, and, off or tiny, loses no byte.

Usage: options_test.py SENDFILE_SERVER_BINARY"""

import json
import os
import re
import signal
import socket
import tempfile
import time
import unittest

import server_testlib as lib


class BadOptions(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))

    def check_rejected(self, args, mentions):
        proc = lib.run([lib.BINARY, *args], timeout=10)
        self.assertNotEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(proc.stdout, b"")
        lines = proc.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("sendfile_server: "), lines[0])
        self.assertIn(mentions, lines[0])

    def test_unknown_flag(self):
        self.check_rejected(["--root", self.root, "--frobnicate"], "--frobnicate")

    def test_stray_argument(self):
        self.check_rejected(["--root", self.root, "extra"], "extra")

    def test_flag_missing_its_value(self):
        self.check_rejected(["--root"], "--root")

    def test_threads_not_a_positive_number(self):
        self.check_rejected(["--root", self.root, "--threads", "abc"], "--threads")
        self.check_rejected(["--root", self.root, "--threads=0"], "--threads")

    def test_listen_malformed(self):
        self.check_rejected(["--root", self.root, "--listen", "localhost"], "--listen")
        self.check_rejected(["--root", self.root, "--listen", "127.0.0.1:99999"], "--listen")

    def test_listen_unbindable_address(self):
        self.check_rejected(["--root", self.root, "--listen", "192.0.2.1:8080"], "--listen")

    def test_missing_root(self):
        self.check_rejected(["--root", os.path.join(self.root, "nope")], "--root")

    def test_root_is_a_file(self):
        path = os.path.join(self.root, "plain")
        with open(path, "w") as f:
            f.write("x")
        self.check_rejected(["--root", path], "--root")

    def test_unreadable_certificate(self):
        self.check_rejected(["--root", self.root, "--tls-cert", "/nonexistent/cert.pem",
                             "--tls-key", "/nonexistent/key.pem"], "--tls-cert")

    def test_certificate_and_key_that_are_not_pem(self):
        cert = os.path.join(self.root, "c.pem")
        key = os.path.join(self.root, "k.pem")
        for p in (cert, key):
            with open(p, "w") as f:
                f.write("x")
        self.check_rejected(["--root", self.root, "--tls-cert", cert, "--tls-key", key],
                            "--tls-cert")

    def test_certificate_without_key(self):
        cert = os.path.join(self.root, "cert.pem")
        with open(cert, "w") as f:
            f.write("not a certificate")
        self.check_rejected(["--root", self.root, "--tls-cert", cert], "--tls-key")

    def test_unknown_coding(self):
        self.check_rejected(["--root", self.root, "--compress", "gzip,brotli"], "--compress")

    def test_timeout_out_of_range(self):
        self.check_rejected(["--root", self.root, "--header-timeout-ms", "0"],
                            "--header-timeout-ms")

    def test_busy_poll_out_of_range(self):
        self.check_rejected(["--root", self.root, "--busy-poll-us", "1000001"], "--busy-poll-us")
        self.check_rejected(["--root", self.root, "--busy-poll-us", "-1"], "--busy-poll-us")

    def test_notsent_lowat_out_of_range(self):
        self.check_rejected(["--root", self.root, "--notsent-lowat", "-1"], "--notsent-lowat")
        self.check_rejected(["--root", self.root, "--notsent-lowat", "1073741825"],
                            "--notsent-lowat")

    def test_port_another_reuseport_listener_holds(self):
        # Without the exclusivity check the kernel lets a second SO_REUSEPORT listener of the
        # same user join, and the two would split the connections.
        other = socket.socket()
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", 0))
        other.listen()
        with other:
            port = other.getsockname()[1]
            self.check_rejected(["--root", self.root, "--listen", f"127.0.0.1:{port}",
                                 "--threads", "2"], "in use")

    def test_access_log_unwritable(self):
        self.check_rejected(["--root", self.root, "--listen", "127.0.0.1:0",
                             "--access-log", "/nonexistent/dir/log"], "--access-log")


class GoodOptions(unittest.TestCase):
    def test_help_prints_usage_and_exits_zero(self):
        proc = lib.run([lib.BINARY, "--help"], timeout=10)
        self.assertEqual(proc.returncode, 0)
        self.assertIn(b"usage: sendfile_server", proc.stdout)
        self.assertIn(b"--root", proc.stdout)

    def test_busy_poll_reaches_every_thread_and_is_counted(self):
        root, _ = lib.make_root({"a.txt": 10})

        def served_with(*args):
            with lib.Server(root, "--stats", *args, threads=2) as srv:
                for _ in range(20):
                    self.assertEqual(lib.get(srv.port, "/a.txt").status, 200)
                stats = json.loads(lib.get(srv.port, "/-/stats").body)
                self.assertEqual(srv.stop(), 0, srv.stderr())
            return stats["busy_poll"], stats["backend"]

        polled, backend = served_with("--busy-poll-us", "1000")
        self.assertEqual(polled["us"], 1000)
        if backend == "io_uring":  # the fallback ignores it
            self.assertGreater(polled["wakeups"] + polled["idle"], 0)
        polled, _ = served_with()
        self.assertEqual(polled, {"us": 0, "wakeups": 0, "idle": 0})

    def test_notsent_lowat_off_or_tiny_still_sends_every_byte(self):
        # 0 leaves the kernel's unbounded default; 4096 makes the socket take a few KiB per
        # call, so the body goes out over many wake-ups of the thread.
        root, digests = lib.make_root({"big.bin": 3 * 1024 * 1024 + 5})
        for lowat in ("0", "4096"):
            with lib.Server(root, "--notsent-lowat", lowat) as srv:
                for _ in range(2):
                    r = lib.get(srv.port, "/big.bin")
                    self.assertEqual(r.status, 200)
                    self.assertEqual(lib.sha256(r.body), digests["big.bin"], lowat)
                self.assertEqual(srv.stop(), 0, srv.stderr())

    def test_notsent_lowat_caps_what_a_stalled_client_leaves_unsent(self):
        # The server's side of the connection, read with ss(8) (iproute2): the unsent bytes
        # its socket holds once the client, reading nothing, has stopped the transfer. With
        # the default 16 KiB mark a send stops once the mark is passed (by at most one 64 KiB
        # loopback segment); with 0 the kernel fills the send buffer (about 3 MB here).
        root, _ = lib.make_root({"big.bin": 32 * 1024 * 1024})

        def unsent(port):
            out = lib.run(["ss", "-tnHi", "state", "established", f"( sport = :{port} )"],
                          timeout=10).stdout
            found = re.search(rb"notsent:(\d+)", out)
            return int(found.group(1)) if found else 0

        def settled_unsent_with(*args):
            with lib.Server(root, *args) as srv:
                with lib.connect(srv.port, rcvbuf=4096) as c:
                    c.sendall(b"GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n")
                    last, same = -1, 0
                    deadline = time.monotonic() + 5
                    while same < 3 and time.monotonic() < deadline:
                        time.sleep(0.1)
                        now = unsent(srv.port)
                        same = same + 1 if now == last and now > 0 else 0
                        last = now
            return last

        capped = settled_unsent_with()
        self.assertGreaterEqual(capped, 16384)
        self.assertLessEqual(capped, 16384 + 65536)
        self.assertGreater(settled_unsent_with("--notsent-lowat", "0"), 4 * (16384 + 65536))

    def test_ipv6_listener_takes_both_families(self):
        root, digests = lib.make_root({"a.bin": 70_000})
        with lib.Server(root, "--listen", "[::]:0") as srv:
            self.assertIn(f"on [::]:{srv.port} with", srv.stderr())
            with socket.create_connection(("::1", srv.port), timeout=10) as s:
                s.sendall(b"GET /a.bin HTTP/1.1\r\nHost: [::1]\r\n\r\n")
                r = lib.Reader(s).read_response()
            self.assertEqual(lib.sha256(r.body), digests["a.bin"])
            # The kernel's default (net.ipv6.bindv6only = 0) makes [::] dual-stack.
            self.assertEqual(lib.sha256(lib.get(srv.port, "/a.bin").body), digests["a.bin"])

    def test_second_server_on_the_same_port_is_refused_and_the_first_serves_on(self):
        root, _ = lib.make_root({"a.bin": 4096})
        with lib.Server(root, threads=2) as first:
            proc = lib.run([lib.BINARY, "--root", root, "--listen", f"127.0.0.1:{first.port}"],
                           timeout=10)
            self.assertNotEqual(proc.returncode, 0)
            self.assertIn(b"--listen", proc.stderr)
            self.assertIn(b"in use", proc.stderr)
            for _ in range(8):  # every connection still reaches the first server
                self.assertEqual(lib.get(first.port, "/a.bin").status, 200)

    def test_sigint_and_sigterm_exit_zero(self):
        root, _ = lib.make_root({"a.txt": 10})
        for sig in (signal.SIGINT, signal.SIGTERM):
            with lib.Server(root, threads=2) as srv:
                self.assertEqual(lib.get(srv.port, "/a.txt").status, 200)
                self.assertEqual(srv.stop(sig), 0, srv.stderr())


if __name__ == "__main__":
    lib.main("options_test")
