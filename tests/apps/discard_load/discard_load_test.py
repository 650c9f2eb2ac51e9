"""apps/discard_load, the server comparison's discarding client, end to end (standard library
only).

Its figures stand in for wrk's in a table of requests/s, so they must count what a server
really answered: every response counted is a whole 200 response, body_bytes is exactly their
Content-Lengths, and the body bytes are dropped in the kernel (copied_bytes stays at the
heads). A server that answers 404, ends a body early or says nothing is an error and exit
status 1, never a count; a refused port and one that never accepts end by the duration;
usage errors are exit status 2.

Usage: discard_load_test.py DISCARD_LOAD_BINARY"""

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
import unittest

import junit_unittest

BINARY = None  # set from argv
BODY = bytes(range(256)) * 400  # 102,400 bytes
TIMEOUT = 60  # seconds for one run of the binary (sanitizer builds are slower)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_GET(self):  # noqa: N802 (the standard library's name)
        self.server.gets += 1
        if self.path == "/blob":
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)
        elif self.path == "/short":  # says 102,400 bytes, sends half, closes
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY[: len(BODY) // 2])
            self.close_connection = True
        elif self.path == "/silent":  # reads the request, answers nothing
            time.sleep(3)
            self.close_connection = True
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.gets = 0


def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


class DiscardLoadTest(unittest.TestCase):
    def setUp(self):
        self.server = Server()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.port = self.server.server_address[1]

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def run_load(self, *args):
        p = subprocess.run([BINARY, *args], capture_output=True, timeout=TIMEOUT)
        return p.returncode, p.stdout.decode(), p.stderr.decode()

    def test_counts_whole_responses_and_discards_their_bodies(self):
        status, out, err = self.run_load("--port", str(self.port), "--path", "/blob",
                                         "--connections", "4", "--requests", "40",
                                         "--duration", "30")
        self.assertEqual(status, 0, err)
        r = parse(out)
        self.assertGreaterEqual(r["requests"], 40)
        self.assertEqual(r["errors"], 0)
        self.assertEqual(r["body_bytes"], r["requests"] * len(BODY))
        self.assertLessEqual(r["requests"], self.server.gets)  # no response counted twice
        # Only heads (and body bytes that came in the same segment) reach user space.
        self.assertLess(r["copied_bytes"], r["body_bytes"] / 4)
        self.assertGreater(r["requests_per_sec"], 0)

    def test_runs_for_the_duration_when_no_request_count_is_given(self):
        start = time.monotonic()
        status, out, err = self.run_load("--port", str(self.port), "--path", "/blob",
                                         "--connections", "2", "--duration", "1")
        elapsed = time.monotonic() - start
        self.assertEqual(status, 0, err)
        r = parse(out)
        self.assertGreater(r["requests"], 0)
        self.assertGreaterEqual(r["seconds"], 0.9)
        self.assertLess(elapsed, 15)

    def check_no_request_counts(self, path, says):
        """Every response of `path` is an error saying `says`; none counts as a request."""
        status, out, err = self.run_load("--port", str(self.port), "--path", path,
                                         "--connections", "1", "--duration", "0.5")
        self.assertEqual(status, 1, err)
        r = parse(out)
        self.assertEqual(r["requests"], 0)
        self.assertGreater(r["errors"], 0)
        self.assertIn(says, err)

    def test_a_404_is_an_error_not_a_request(self):
        self.check_no_request_counts("/missing", "not 200")

    def test_a_body_cut_short_is_an_error(self):
        self.check_no_request_counts("/short", "inside a response body")

    def test_a_server_that_says_nothing_times_out(self):
        status, out, err = self.run_load("--port", str(self.port), "--path", "/silent",
                                         "--connections", "1", "--duration", "2",
                                         "--timeout", "0.3")
        self.assertEqual(status, 1, err)
        self.assertGreater(parse(out)["errors"], 0)
        self.assertIn("no progress", err)

    def test_a_refused_port_ends_by_the_duration(self):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
        start = time.monotonic()
        status, out, err = self.run_load("--port", str(port), "--duration", "0.5")
        self.assertEqual(status, 1, err)
        self.assertEqual(parse(out)["requests"], 0)
        self.assertIn("connect", err)
        self.assertLess(time.monotonic() - start, 15)

    def test_a_server_that_never_accepts_ends_by_the_duration(self):
        # A full accept queue drops the SYNs of further connects, which would wait out the
        # kernel's SYN retries (about two minutes) without a bound of their own.
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(0)
        try:
            start = time.monotonic()
            status, out, err = self.run_load("--port", str(s.getsockname()[1]),
                                             "--connections", "4", "--duration", "1",
                                             "--timeout", "0.3")
            elapsed = time.monotonic() - start
        finally:
            s.close()
        self.assertEqual(status, 1, err)
        self.assertEqual(parse(out)["requests"], 0)
        self.assertGreater(parse(out)["errors"], 0)
        self.assertLess(elapsed, 15)

    def test_usage_errors_exit_2(self):
        for args in [[], ["--port", "0"], ["--port", "99999"], ["--port", "80", "--path", "x"],
                     ["--port", "80", "--connections", "0"], ["--port", "80", "--bogus", "1"],
                     ["--port", "80", "--duration"], ["--port", "80", "--host", "localhost"]]:
            with self.subTest(args=args):
                status, out, err = self.run_load(*args)
                self.assertEqual(status, 2, (out, err))
                self.assertIn("usage", err)


if __name__ == "__main__":
    BINARY = os.path.abspath(sys.argv[1])
    junit_unittest.run_suite("discard_load_test")
