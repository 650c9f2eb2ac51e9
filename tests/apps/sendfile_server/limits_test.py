"""Timeouts, slow and idle clients, and the graceful stop: a slow reader still gets
every byte; a head that never completes is cut at the header timeout; an idle
keep-alive connection is closed at the idle timeout; input a client goes on sending after
its last request, or the rest of a request refused before it all came, does not cut the
response (lingering close); 1,000 idle connections do not stop a normal client from being
served; SIGTERM with a 64 MiB response in flight lets the client finish it whole, then the
server exits 0. Timeouts are set by flags so every wait here is seconds, each bounded.

Usage: limits_test.py SENDFILE_SERVER_BINARY"""

import json
import resource
import signal
import socket
import threading
import time
import unittest

import server_testlib as lib


def setUpModule():
    global ROOT, DIGESTS
    ROOT, DIGESTS = lib.make_root({"1k.bin": 1 << 10, "1m.bin": 1 << 20, "64m.bin": 64 << 20})


def read_exactly_slowly(sock, n, chunk, pause):
    data = bytearray()
    while len(data) < n:
        part = sock.recv(min(chunk, n - len(data)))
        if not part:
            break
        data += part
        time.sleep(pause)
    return bytes(data)


class Timeouts(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = lib.Server(ROOT, "--header-timeout-ms", "500", "--idle-timeout-ms", "800",
                             "--send-timeout-ms", "3000", "--stats")

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()

    def test_incomplete_head_is_closed_at_the_header_timeout(self):
        with lib.connect(self.srv.port, timeout=10) as s:
            s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n")  # no blank line, ever
            start = time.monotonic()
            rest = s.recv(100)  # the server closes (EOF) without a response
            self.assertEqual(rest, b"")
            self.assertLess(time.monotonic() - start, 9)

    def test_trickled_head_is_cut_too(self):
        with lib.connect(self.srv.port, timeout=10) as s:
            closed = False
            for i in range(40):  # one byte every 100 ms: each gap is under the timeout
                try:
                    s.send(b"X-Slow: y\r\n"[i % 11:i % 11 + 1] if i else b"G")
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.1)
            if not closed:
                s.settimeout(5)
                try:
                    closed = s.recv(100) == b""
                except ConnectionResetError:
                    closed = True
            self.assertTrue(closed)

    def test_a_new_connection_must_begin_its_request_within_the_header_timeout(self):
        # As nginx's client_header_timeout: the idle timeout is for the gap between requests.
        with lib.Server(ROOT, "--header-timeout-ms", "300", "--idle-timeout-ms", "5000") as srv:
            with lib.connect(srv.port, timeout=10) as silent:
                start = time.monotonic()
                self.assertTrue(lib.Reader(silent).at_eof(timeout=8))
                self.assertLess(time.monotonic() - start, 3)  # 0.3 s, not 5 s
            with lib.connect(srv.port, timeout=10) as served:
                served.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                rd = lib.Reader(served)
                self.assertEqual(lib.sha256(rd.read_response().body), DIGESTS["1k.bin"])
                time.sleep(1)  # past the header timeout: a served connection idles longer
                served.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(lib.sha256(rd.read_response().body), DIGESTS["1k.bin"])

    def test_idle_keep_alive_connection_is_closed(self):
        with lib.connect(self.srv.port, timeout=10) as s:
            s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            rd = lib.Reader(s)
            self.assertEqual(lib.sha256(rd.read_response().body), DIGESTS["1k.bin"])
            self.assertTrue(rd.at_eof(timeout=8))

    def test_slow_reader_gets_every_byte(self):
        with lib.connect(self.srv.port, timeout=10) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            s.sendall(b"GET /1m.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            rd = lib.Reader(s)
            _, status, _, headers = rd.read_head()
            self.assertEqual(status, 200)
            body = rd.buf + read_exactly_slowly(s, (1 << 20) - len(rd.buf), 64 << 10, 0.05)
            self.assertEqual(lib.sha256(body), DIGESTS["1m.bin"])

    def test_input_still_coming_after_the_last_response_does_not_cut_it(self):
        # A client that goes on sending after a "Connection: close" request (here: 4 MiB of
        # pipelined requests, from a second thread) while it reads a 64 MiB response slowly.
        # Closing with that input unread would reset the connection and destroy the part of
        # the response still in the server's socket buffer; the server lingers instead.
        lingered = json.loads(lib.get(self.srv.port, "/-/stats").body)["lingering_closes"]
        for close_request in (b"Connection: close\r\n", b""):
            with self.subTest(close_request=close_request):
                with lib.connect(self.srv.port, timeout=20) as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                    version = b"HTTP/1.1" if close_request else b"HTTP/1.0"
                    s.sendall(b"GET /64m.bin " + version + b"\r\nHost: x\r\n" + close_request +
                              b"\r\n")
                    more = b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n" * ((4 << 20) // 33)

                    def pump():
                        try:
                            s.sendall(more)
                        except OSError:
                            pass  # the server stops taking it at some point: either is fine

                    t = threading.Thread(target=pump, daemon=True)
                    t.start()
                    time.sleep(0.3)
                    rd = lib.Reader(s)
                    _, status, _, headers = rd.read_head()
                    self.assertEqual(status, 200)
                    body = rd.buf + read_exactly_slowly(s, (64 << 20) - len(rd.buf), 1 << 20, 0)
                    self.assertEqual(len(body), 64 << 20)
                    self.assertEqual(lib.sha256(body), DIGESTS["64m.bin"])
                    s.settimeout(10)
                    self.assertEqual(s.recv(1), b"")  # the server's FIN, right after the body
                    t.join(timeout=10)
        stats = json.loads(lib.get(self.srv.port, "/-/stats").body)
        self.assertGreaterEqual(stats["lingering_closes"], lingered + 2)

    def test_the_rest_of_a_refused_request_meets_no_reset(self):
        # The request line alone earns a 400 and the server closes; the client is still
        # writing its head. Had the server closed outright, those bytes would meet a closed
        # socket whose reset can destroy the 400 before the client reads it. It lingers: the
        # client's writes and its own end of stream go through, and it reads the 400 and a FIN.
        for gap in (0.05, 0.2):
            with self.subTest(gap=gap), lib.connect(self.srv.port, timeout=10) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(b"GET /1k.bin http/1.1\r\n")  # a lower-case version: malformed
                time.sleep(gap)  # the 400 and the server's FIN come meanwhile
                s.sendall(b"Host: x\r\n" + b"X-Filler: " + b"f" * 4000 + b"\r\n\r\n")
                s.shutdown(socket.SHUT_WR)  # ENOTCONN here if a reset came
                rd = lib.Reader(s)
                r = rd.read_response()
                self.assertEqual(r.status, 400)
                self.assertEqual(r.header("Connection"), "close")
                self.assertTrue(rd.at_eof())  # a FIN; a reset would read as False

    def test_stalled_reader_is_dropped_at_the_send_timeout(self):
        with lib.connect(self.srv.port, timeout=15) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.sendall(b"GET /64m.bin HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(5)  # read nothing for longer than --send-timeout-ms
            got = 0
            try:
                while got < (64 << 20) + 1024:
                    part = s.recv(1 << 20)
                    if not part:
                        break
                    got += len(part)
            except ConnectionResetError:
                pass
            self.assertLess(got, 64 << 20)
        self.assertEqual(lib.get(self.srv.port, "/1k.bin").status, 200)


class ManyIdle(unittest.TestCase):
    def test_thousand_idle_connections_while_a_client_is_served(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = min(hard, 4096)
        if soft < want:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        if want < 1200:
            self.skipTest(f"RLIMIT_NOFILE hard limit {hard} is below 1200")
        with lib.Server(ROOT, "--header-timeout-ms", "60000", "--idle-timeout-ms", "60000",
                        threads=2) as srv:
            idle = []
            try:
                for _ in range(1000):
                    idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=10))
                conn_count_ok = True
                for _ in range(20):
                    r = lib.get(srv.port, "/1m.bin")
                    self.assertEqual(lib.sha256(r.body), DIGESTS["1m.bin"])
                # The idle ones are still open: each can be served too.
                for s in idle[::100]:
                    s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(lib.Reader(s).read_response().status, 200)
                self.assertTrue(conn_count_ok)
            finally:
                for s in idle:
                    s.close()


class ConnectionLimit(unittest.TestCase):
    def test_connections_past_the_limit_wait_until_one_closes(self):
        """--max-connections 2: ten more connections get nothing while two are open (even
        those a multishot accept takes in one batch); each close lets exactly one in."""
        with lib.Server(ROOT, "--max-connections", "2", "--header-timeout-ms", "20000",
                        "--idle-timeout-ms", "20000") as srv:
            first = [socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                     for _ in range(2)]
            for s in first:  # both are sessions now
                s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                self.assertEqual(lib.Reader(s).read_response().status, 200)
            waiting = [socket.create_connection(("127.0.0.1", srv.port), timeout=10)
                       for _ in range(10)]
            try:
                for s in waiting:
                    s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    s.setblocking(False)

                def answered(wait):
                    deadline = time.monotonic() + wait
                    got = set()
                    while time.monotonic() < deadline:
                        for i, s in enumerate(waiting):
                            try:
                                if s.recv(1, socket.MSG_PEEK):
                                    got.add(i)
                            except BlockingIOError:
                                pass
                        time.sleep(0.05)
                    return got

                self.assertEqual(answered(1.0), set())
                first[0].close()  # one session ends: one waiting connection is served
                served = answered(1.5)
                self.assertEqual(len(served), 1, served)
                first[1].close()  # and one more
                self.assertEqual(len(answered(1.5)), 2)
            finally:
                for s in first + waiting:
                    s.close()


class GracefulStop(unittest.TestCase):
    def test_sigterm_finishes_the_64mib_response_in_flight(self):
        srv = lib.Server(ROOT, "--shutdown-timeout-ms", "20000")
        try:
            with lib.connect(srv.port, timeout=20) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
                s.sendall(b"GET /64m.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                rd = lib.Reader(s)
                _, status, _, _ = rd.read_head()
                self.assertEqual(status, 200)
                body = bytearray(rd.buf)
                rd.buf = b""
                while len(body) < (4 << 20):  # the response is well under way
                    body += s.recv(1 << 16)
                srv.proc.send_signal(signal.SIGTERM)
                time.sleep(0.3)
                # New connections are refused or closed unanswered while it drains.
                try:
                    with socket.create_connection(("127.0.0.1", srv.port), timeout=2) as late:
                        late.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                        late.settimeout(5)
                        self.assertEqual(late.recv(100), b"")
                except (ConnectionRefusedError, ConnectionResetError):
                    pass
                while len(body) < (64 << 20):
                    part = s.recv(1 << 20)
                    if not part:
                        break
                    body += part
                self.assertEqual(lib.sha256(bytes(body)), DIGESTS["64m.bin"])
                self.assertTrue(rd.at_eof(timeout=10))  # closed after the response
            self.assertEqual(srv.proc.wait(timeout=20), 0, srv.stderr())
        finally:
            srv.kill()

    def test_stop_is_bounded_when_a_client_never_reads(self):
        srv = lib.Server(ROOT, "--shutdown-timeout-ms", "1000", "--send-timeout-ms", "60000")
        try:
            with lib.connect(srv.port, timeout=20) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.sendall(b"GET /64m.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                time.sleep(0.3)
                srv.proc.send_signal(signal.SIGTERM)
                self.assertEqual(srv.proc.wait(timeout=15), 0, srv.stderr())
        finally:
            srv.kill()




if __name__ == "__main__":
    lib.main("limits_test")
