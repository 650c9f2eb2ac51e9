"""The access log: one combined-format line per response (nginx/Apache "combined"),
written by the log writer off the hot path, complete after a graceful stop; quotes
and control bytes in client-supplied fields are escaped so no line can be forged;
"-" writes to stdout; SIGUSR1 (or SIGHUP) reopens the file after logrotate renamed it.

Usage: access_log_test.py SENDFILE_SERVER_BINARY"""

import json
import os
import re
import signal
import tempfile
import time
import unittest

import server_testlib as lib

COMBINED = re.compile(
    r'^(\S+) - (\S+) \[(\d\d/\w{3}/\d{4}:\d\d:\d\d:\d\d \+0000)\] "([^"\\]*(?:\\.[^"\\]*)*)" '
    r'(\d{3}) (\d+) "([^"\\]*(?:\\.[^"\\]*)*)" "([^"\\]*(?:\\.[^"\\]*)*)"$')


class AccessLog(unittest.TestCase):
    def test_combined_lines_for_every_response(self):
        root, _ = lib.make_root({"1k.bin": 1024})
        log = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")), "access.log")
        with lib.Server(root, "--access-log", log, threads=2) as srv:
            lib.get(srv.port, "/1k.bin", ["User-Agent: tester/1.0", "Referer: http://r/"])
            lib.get(srv.port, "/missing")
            lib.get(srv.port, "/1k.bin", ['User-Agent: evil" 200 0 "x\x80'], method="HEAD")
            lib.raw_exchange(srv.port, b"BROKEN\r\n\r\n")
            self.assertEqual(srv.stop(), 0)
        with open(log) as f:
            lines = f.read().splitlines()
        self.assertEqual(len(lines), 4, lines)
        parsed = [COMBINED.match(line) for line in lines]
        for line, m in zip(lines, parsed):
            self.assertIsNotNone(m, line)
        by_status = sorted((m.group(5), m.group(4), m.group(6), m.group(7), m.group(8))
                           for m in parsed)
        self.assertIn(("200", "GET /1k.bin HTTP/1.1", "1024", "http://r/", "tester/1.0"),
                      by_status)
        self.assertIn(("404", "GET /missing HTTP/1.1", "14", "-", "-"), by_status)
        head = [b for b in by_status if b[1].startswith("HEAD")][0]
        self.assertEqual(head[0], "200")
        self.assertEqual(head[2], "0")
        self.assertIn("\\x22", head[4])  # the quote is escaped, not a field end
        self.assertIn("\\x80", head[4])
        self.assertIn("400", [b[0] for b in by_status])
        for m in parsed:
            self.assertEqual(m.group(1), "127.0.0.1")

    def test_sigusr1_reopens_the_log_after_a_rename(self):
        root, _ = lib.make_root({"1k.bin": 1024})
        log = os.path.join(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")), "access.log")

        def wait_for(pred, what):
            deadline = time.monotonic() + 10
            while not pred():
                self.assertLess(time.monotonic(), deadline, what)
                time.sleep(0.02)

        def lines(path):
            with open(path) as f:
                return f.read().splitlines()

        def log_stats(srv):
            return json.loads(lib.get(srv.port, "/-/stats").body)["access_log"]

        with lib.Server(root, "--access-log", log, "--stats", threads=2) as srv:
            lib.get(srv.port, "/1k.bin?before")
            wait_for(lambda: any("?before" in x for x in lines(log)), "first line flushed")
            os.rename(log, log + ".1")  # what logrotate does
            lib.get(srv.port, "/1k.bin?renamed")  # still goes to the renamed file
            srv.proc.send_signal(signal.SIGUSR1)
            wait_for(lambda: os.path.exists(log), "log reopened")
            lib.get(srv.port, "/1k.bin?after")
            srv.proc.send_signal(signal.SIGHUP)  # the same, with nothing renamed: same file
            lib.get(srv.port, "/1k.bin?again")
            wait_for(lambda: log_stats(srv)["reopens"] == 2, "second reopen counted")
            self.assertEqual(log_stats(srv),
                             {"write_errors": 0, "reopens": 2, "reopen_errors": 0})
            self.assertEqual(srv.stop(), 0, srv.stderr())
        old, new = lines(log + ".1"), lines(log)
        self.assertEqual([x for x in old if "?" in x and "?before" not in x and "?renamed" not in x],
                         [], old)
        self.assertTrue(any("?before" in x for x in old), old)
        self.assertTrue(any("?renamed" in x for x in old), old)
        self.assertTrue(any("?after" in x for x in new), new)
        self.assertTrue(any("?again" in x for x in new), new)
        self.assertEqual(len([x for x in old + new if "?" in x]), 4)
        for line in old + new:
            self.assertIsNotNone(COMBINED.match(line), line)

    def test_a_failed_reopen_keeps_writing_to_the_old_file(self):
        root, _ = lib.make_root({"1k.bin": 1024})
        top = tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR"))
        os.mkdir(os.path.join(top, "logs"))
        log = os.path.join(top, "logs", "access.log")
        with lib.Server(root, "--access-log", log, "--stats") as srv:
            lib.get(srv.port, "/1k.bin?one")
            os.rename(log, os.path.join(top, "rotated.log"))
            os.rmdir(os.path.join(top, "logs"))  # the path cannot be opened again
            srv.proc.send_signal(signal.SIGUSR1)
            deadline = time.monotonic() + 10
            while json.loads(lib.get(srv.port, "/-/stats").body)["access_log"]["reopen_errors"] < 1:
                self.assertLess(time.monotonic(), deadline, "reopen error counted")
                time.sleep(0.02)
            lib.get(srv.port, "/1k.bin?two")
            self.assertEqual(srv.stop(), 0)
            self.assertIn("cannot reopen access log", srv.stderr())
        with open(os.path.join(top, "rotated.log")) as f:
            text = f.read()
        self.assertIn("?one", text)
        self.assertIn("?two", text)

    def test_dash_logs_to_stdout(self):
        root, _ = lib.make_root({"1k.bin": 1024})
        srv = lib.Server(root, "--access-log", "-")
        try:
            lib.get(srv.port, "/1k.bin")
            self.assertEqual(srv.stop(), 0)
            out = srv.proc.stdout.read().decode()
            self.assertRegex(out, r'"GET /1k.bin HTTP/1.1" 200 1024 ')
        finally:
            srv.kill()


if __name__ == "__main__":
    lib.main("access_log_test")
