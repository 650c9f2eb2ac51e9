"""HTTPS (--tls-cert/--tls-key): the session through filters/tls_layer. A self-signed
certificate made with the openssl CLI in TEST_TMPDIR; curl -k, openssl s_client and
Python's ssl module as clients. Byte-exact bodies for every demo size, HEAD, Range,
304, a plain-HTTP client on the TLS port (closed, while a TLS client keeps being
served), a file that shrinks mid-response, the handshake timeout, TLS 1.0/1.1 and client renegotiation refused, session
resumption (TLS 1.3 tickets, TLS 1.2 session IDs), certificate reload on SIGHUP and
/-/stats."""

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import server_testlib as lib

ROOT = DIGESTS = CERT = KEY = None


def setUpModule():
    global ROOT, DIGESTS, CERT, KEY
    ROOT, DIGESTS = lib.make_root()
    d = tempfile.mkdtemp(prefix="pw_tls_", dir=os.environ.get("TEST_TMPDIR"))
    CERT, KEY = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    r = lib.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", KEY,
                 "-out", CERT, "-days", "2", "-subj", "/CN=localhost"])
    assert r.returncode == 0, r.stderr


def make_cert(directory, name, cn):
    """A new RSA key and self-signed certificate; returns (cert path, key path)."""
    cert, key = os.path.join(directory, name + ".crt"), os.path.join(directory, name + ".key")
    r = lib.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                 "-out", cert, "-days", "2", "-subj", "/CN=" + cn])
    assert r.returncode == 0, r.stderr
    return cert, key


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class TlsSocket:
    """One TLS connection with the lib.Reader interface over it."""

    def __init__(self, port, timeout=20):
        raw = lib.connect(port, timeout)
        self.sock = client_context().wrap_socket(raw, server_hostname="localhost")
        self.reader = lib.Reader(self.sock)

    def request(self, path, headers=(), method="GET"):
        lines = [f"{method} {path} HTTP/1.1", "Host: localhost", *headers, "", ""]
        self.sock.sendall("\r\n".join(lines).encode("latin-1"))
        return self.reader.read_response(head_request=method == "HEAD")

    def close(self):
        self.sock.close()


class HttpsServing(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = lib.Server(ROOT, "--tls-cert", CERT, "--tls-key", KEY, "--stats",
                             "--header-timeout-ms", "1500")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, cls.srv.stderr()

    def https(self, path):
        return f"https://127.0.0.1:{self.srv.port}{path}"

    def test_curl_insecure_gets_every_demo_size_byte_exact(self):
        out = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "tls_body")
        for name, digest in DIGESTS.items():
            r = lib.run(["curl", "-sS", "-k", "--http1.1", "--max-time", "60", "-o", out,
                         self.https("/" + name)])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out, "rb") as f:
                self.assertEqual(lib.sha256(f.read()), digest, name)

    def test_openssl_s_client_request_gets_the_file(self):
        req = b"GET /64k.bin HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.srv.port}",
                            "-alpn", "http/1.1", "-quiet", "-ign_eof"], input=req,
                           capture_output=True, timeout=60, check=False)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 200"), r.stdout[:200])
        self.assertEqual(lib.sha256(body), DIGESTS["64k.bin"])

    def test_keep_alive_pipelined_requests_over_one_tls_connection(self):
        c = TlsSocket(self.srv.port)
        try:
            raw = b"".join(f"GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in
                           ("1k.bin", "64k.bin", "1k.bin"))
            c.sock.sendall(raw)
            for name in ("1k.bin", "64k.bin", "1k.bin"):
                r = c.reader.read_response()
                self.assertEqual(r.status, 200)
                self.assertEqual(lib.sha256(r.body), DIGESTS[name])
        finally:
            c.close()

    def test_requests_and_close_notify_in_one_send_get_every_response_then_close_notify(self):
        # The server reads both requests and the client's close_notify at once, so its read
        # after the responses ends inside the TLS layer's start_read; the session runs that
        # end from its loop like any other and closes after what it owes, with close_notify.
        client = MemoryTls(self.srv.port)
        names = ("1k.bin", "64k.bin")
        client.tls.write(b"".join(f"GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
                                  for n in names))
        try:
            client.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        client.sock.sendall(client.outgoing.read())
        plain, clean_end = client.read_to_eof()
        client.sock.close()
        for name in names:
            head, sep, rest = plain.partition(b"\r\n\r\n")
            self.assertTrue(sep and head.startswith(b"HTTP/1.1 200"), plain[:200])
            length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
            self.assertEqual(lib.sha256(rest[:length]), DIGESTS[name], name)
            plain = rest[length:]
        self.assertEqual(plain, b"")
        self.assertTrue(clean_end, "the server ended with close_notify")

    def test_close_notify_after_a_closing_response_meets_no_reset(self):
        # The client asks to close, reads the response, the server's close_notify and its FIN,
        # and only then sends its own close_notify, as RFC 8446 6.1 asks. Had the server closed
        # its socket outright, those bytes would meet it closed, and the reset that answers
        # them can destroy the end of a response the client has not read yet. It lingers.
        client = MemoryTls(self.srv.port)
        client.sock.sendall(client.seal(
            b"GET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"))
        plain, clean_end = client.read_to_eof()
        self.assertTrue(plain.startswith(b"HTTP/1.1 200"), plain[:200])
        self.assertTrue(clean_end, "the server ended with close_notify")
        time.sleep(0.1)  # the server is done: its socket is closed by now, unless it lingers
        try:
            client.tls.unwrap()
        except ssl.SSLWantReadError:
            pass
        client.sock.sendall(client.outgoing.read())
        time.sleep(0.05)  # a reset, if one comes, is back by now
        client.sock.shutdown(socket.SHUT_WR)  # ENOTCONN here if a reset came
        self.assertEqual(client.sock.recv(1), b"")  # ECONNRESET here if a reset came
        client.sock.close()

    def test_head_range_and_304_over_tls(self):
        c = TlsSocket(self.srv.port)
        try:
            full = c.request("/1m.bin")
            head = c.request("/1m.bin", method="HEAD")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.header("Content-Length"), str(1 << 20))
            self.assertEqual(head.header("ETag"), full.header("ETag"))
            part = c.request("/1m.bin", ["Range: bytes=1000-1999"])
            self.assertEqual(part.status, 206)
            self.assertEqual(part.header("Content-Range"), f"bytes 1000-1999/{1 << 20}")
            self.assertEqual(part.body, full.body[1000:2000])
            nm = c.request("/1m.bin", [f"If-None-Match: {full.header('ETag')}"])
            self.assertEqual(nm.status, 304)
            self.assertEqual(nm.body, b"")
            again = c.request("/1k.bin")  # the connection is still good after a 304
            self.assertEqual(lib.sha256(again.body), DIGESTS["1k.bin"])
        finally:
            c.close()

    def test_plain_http_on_tls_port_gets_a_plain_400_while_tls_client_is_served(self):
        # As nginx: the client learns it spoke HTTP to an HTTPS port, in words it can read.
        good = TlsSocket(self.srv.port)
        try:
            self.assertEqual(good.request("/1k.bin").status, 200)
            for first in (b"GET /1k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n",
                          b"POST /x HTTP/1.1\r\nHost: localhost\r\nContent-Length: 70000\r\n"
                          b"\r\n" + b"b" * 70000,  # more than the answer: it lingers
                          b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n"):
                with lib.connect(self.srv.port, timeout=10) as plain:
                    plain.sendall(first)
                    r = lib.Reader(plain).read_response()
                    self.assertEqual(r.status, 400, first[:20])
                    self.assertEqual(r.header("Connection"), "close")
                    self.assertIn(b"HTTPS", r.body)
                    self.assertIsNotNone(r.header("Date"))  # RFC 9110 6.6.1: with a clock, 4xx too
                    self.assertEqual(int(r.header("Content-Length")), len(r.body))
                    self.assertEqual(plain.recv(1), b"")  # then a FIN, not a reset
            # Neither TLS nor HTTP: no HTTP answer (at most an alert), and the connection ends.
            got = lib.raw_exchange(self.srv.port, b"\x00\x01garbage" * 10, timeout=10)
            self.assertNotIn(b"HTTP/", got)
            r = good.request("/64k.bin")  # the TLS connection opened before still works
            self.assertEqual(lib.sha256(r.body), DIGESTS["64k.bin"])
        finally:
            good.close()

    def stats(self):
        c = TlsSocket(self.srv.port)
        try:
            return json.loads(c.request("/-/stats").body)
        finally:
            c.close()

    def test_silent_client_is_closed_at_the_handshake_timeout(self):
        before = self.stats()
        with lib.connect(self.srv.port, timeout=15) as s:
            start = time.monotonic()
            try:
                closed = s.recv(1) == b""
            except ConnectionResetError:
                closed = True
            self.assertTrue(closed)
            self.assertLess(time.monotonic() - start, 14)  # header timeout 1.5 s, not 15 s
        after = self.stats()  # a failed handshake, and a timeout like any other
        self.assertEqual(after["timeouts"], before["timeouts"] + 1)
        self.assertEqual(after["tls_handshakes"]["failed"],
                         before["tls_handshakes"]["failed"] + 1)

    def test_alpn_without_http11_is_refused_with_no_application_protocol(self):
        # RFC 7301 §3.2: no protocol in common -> fatal no_application_protocol (120).
        rc, out = self.s_client("-alpn", "h2", stdin=b"")
        self.assertNotEqual(rc, 0, out)
        self.assertIn(b"no application protocol", out)
        rc, out = self.s_client("-alpn", "h2,http/1.1", "-quiet", "-ign_eof",
                                stdin=b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n"
                                      b"Connection: close\r\n\r\n")
        self.assertEqual(rc, 0, out)
        self.assertIn(b"HTTP/1.1 200 OK", out)

    def s_client(self, *args, stdin=b"", timeout=30):
        """openssl s_client against the server; returns (returncode, stdout+stderr)."""
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{self.srv.port}",
                            *args], input=stdin, capture_output=True, timeout=timeout,
                           check=False)
        return r.returncode, r.stdout + r.stderr

    def test_tls_1_0_and_1_1_are_refused_by_the_server(self):
        # The client offers the old version (its own security level lowered so that it does),
        # and the server answers with a protocol_version alert (70); 1.2 and 1.3 handshake.
        for version in ("-tls1", "-tls1_1"):
            rc, out = self.s_client(version, "-cipher", "DEFAULT@SECLEVEL=0")
            self.assertNotEqual(rc, 0, version)
            self.assertTrue(b"alert protocol version" in out, (version, out[-600:]))
        for version, name in (("-tls1_2", b"TLSv1.2"), ("-tls1_3", b"TLSv1.3")):
            rc, out = self.s_client(version)
            self.assertEqual(rc, 0, (version, out[-600:]))
            self.assertTrue(b"New, " + name + b", Cipher is" in out, (version, out[-600:]))
        c = TlsSocket(self.srv.port)  # the refused handshakes cost the server nothing else
        try:
            self.assertEqual(lib.sha256(c.request("/1k.bin").body), DIGESTS["1k.bin"])
        finally:
            c.close()

    def test_client_renegotiation_is_refused_and_the_server_keeps_serving(self):
        # Client-initiated renegotiation costs the server a handshake per request the client
        # likes (a known DoS lever), so it is refused: s_client's "R" command asks for one on
        # a TLS 1.2 connection that has just been served, and gets the no_renegotiation alert.
        with subprocess.Popen(["openssl", "s_client", "-tls1_2", "-connect",
                               f"127.0.0.1:{self.srv.port}"], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as p:
            try:
                p.stdin.write(b"GET /1k.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
                p.stdin.flush()
                time.sleep(0.5)  # the response comes back before the renegotiation is asked
                p.stdin.write(b"R\n")
                p.stdin.flush()
                out, _ = p.communicate(timeout=20)
            finally:
                if p.poll() is None:
                    p.kill()
        self.assertTrue(b"HTTP/1.1 200 OK" in out, out[-600:])
        self.assertTrue(b"RENEGOTIATING" in out, out[-600:])
        self.assertTrue(b"no renegotiation" in out, out[-600:])
        c = TlsSocket(self.srv.port)  # a new client is served as before
        try:
            self.assertEqual(lib.sha256(c.request("/64k.bin").body), DIGESTS["64k.bin"])
        finally:
            c.close()

    def test_stats_report_the_tls_path(self):
        c = TlsSocket(self.srv.port)
        try:
            self.assertEqual(c.request("/1k.bin").status, 200)
            stats = json.loads(c.request("/-/stats").body)
        finally:
            c.close()
        self.assertTrue(stats["tls"])
        self.assertIn(stats["tls_path"], ("userspace", "ktls"))
        self.assertTrue(stats["ktls_reason"])
        hs = stats["tls_handshakes"]
        self.assertGreaterEqual(hs["userspace"] + hs["ktls"], 1)
        self.assertGreaterEqual(stats["paths"]["tls"], 1)


class MemoryTls:
    """A TLS 1.3 client over memory BIOs on a plain socket: the test decides when each
    ciphertext byte goes out."""

    def __init__(self, port):
        self.sock = lib.connect(port, timeout=10)
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        ctx = client_context()
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        self.tls = ctx.wrap_bio(self.incoming, self.outgoing, server_hostname="localhost")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.sock.sendall(self.outgoing.read())
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed during the handshake")
                self.incoming.write(data)
        self.sock.sendall(self.outgoing.read())  # the client's Finished

    def seal(self, plaintext):
        """The records carrying `plaintext`, not sent."""
        self.tls.write(plaintext)
        return self.outgoing.read()

    def read_to_eof(self):
        """Reads the socket to the server's FIN; returns the plaintext, and whether it ended
        with close_notify (read() returns b"" for it, or raises SSLZeroReturnError once our
        own close_notify went out too; without it, the incoming BIO just runs dry)."""
        self.sock.settimeout(10)
        while True:
            data = self.sock.recv(65536)
            if not data:
                break
            self.incoming.write(data)
        plain = b""
        while True:
            try:
                chunk = self.tls.read(65536)
            except ssl.SSLZeroReturnError:
                return plain, True
            except ssl.SSLWantReadError:
                return plain, False
            if not chunk:
                return plain, True
            plain += chunk


class TrickledRecords(unittest.TestCase):
    """The timeouts bound each wait as a whole: ciphertext bytes that never finish a record
    (so never a request byte) do not keep a connection open past the idle timeout."""

    def test_a_request_record_sent_a_byte_at_a_time_is_cut_at_the_idle_timeout(self):
        with lib.Server(ROOT, "--tls-cert", CERT, "--tls-key", KEY, "--stats",
                        "--header-timeout-ms", "400", "--idle-timeout-ms", "800") as srv:
            client = MemoryTls(srv.port)
            record = client.seal(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n" + b"X: " +
                                 b"a" * 200 + b"\r\n\r\n")
            client.sock.settimeout(0.1)
            start, sent, closed = time.monotonic(), 0, None
            while time.monotonic() - start < 6 and closed is None:
                if sent < len(record) - 1:  # never the last byte: the record stays partial
                    client.sock.send(record[sent:sent + 1])
                    sent += 1
                try:
                    data = client.sock.recv(4096)  # each gap (0.1 s) is well inside 400 ms
                    if not data:
                        closed = time.monotonic() - start
                except socket.timeout:
                    pass
                except ConnectionResetError:
                    closed = time.monotonic() - start
            client.sock.close()
            self.assertIsNotNone(closed, f"still open after 6 s, {sent} bytes sent")
            self.assertLess(closed, 3)  # the idle timeout (0.8 s) bounds the whole wait
            self.assertGreater(sent, 3)
            # The server counted it and serves on.
            good = TlsSocket(srv.port)
            try:
                stats = json.loads(good.request("/-/stats").body)
                self.assertGreaterEqual(stats["timeouts"], 1)
                self.assertEqual(lib.sha256(good.request("/64k.bin").body), DIGESTS["64k.bin"])
            finally:
                good.close()

    def test_a_head_trickled_in_whole_records_is_cut_at_the_header_timeout(self):
        with lib.Server(ROOT, "--tls-cert", CERT, "--tls-key", KEY,
                        "--header-timeout-ms", "500", "--idle-timeout-ms", "5000") as srv:
            client = MemoryTls(srv.port)
            client.sock.settimeout(0.15)
            start, closed = time.monotonic(), None
            head = b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n" + b"X: " + b"a" * 100
            for i in range(len(head)):  # one record per request byte, every 0.15 s
                try:
                    client.sock.sendall(client.seal(head[i:i + 1]))
                    data = client.sock.recv(4096)
                    if not data:
                        closed = time.monotonic() - start
                        break
                except socket.timeout:
                    pass
                except (ConnectionResetError, BrokenPipeError):
                    closed = time.monotonic() - start
                    break
            client.sock.close()
            self.assertIsNotNone(closed)
            self.assertLess(closed, 2)  # header timeout 0.5 s from the first byte


class SessionResumption(unittest.TestCase):
    """A client that comes back resumes its session instead of a full handshake: TLS 1.3 by
    the tickets the server sends, TLS 1.2 by session ID. Two worker threads, each with its
    own SO_REUSEPORT listener: every reconnect resumes whichever thread takes it (one
    context, one ticket key)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = lib.Server(ROOT, "--tls-cert", CERT, "--tls-key", KEY, "--stats", threads=2)

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        assert rc == 0, cls.srv.stderr()

    contexts = {}

    def connect(self, version, session=None):
        # A session resumes only through the client context that made it.
        ctx = self.contexts.get(version)
        if ctx is None:
            ctx = self.contexts[version] = client_context()
            ctx.minimum_version = ctx.maximum_version = version
        raw = lib.connect(self.srv.port, 20)
        sock = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
        return sock, lib.Reader(sock)

    def get(self, sock, reader, name):
        sock.sendall(f"GET /{name} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        return reader.read_response()

    def stats(self):
        sock, reader = self.connect(ssl.TLSVersion.TLSv1_3)
        try:
            return json.loads(self.get(sock, reader, "-/stats").body)
        finally:
            sock.close()

    def test_tls13_and_tls12_clients_resume_on_every_reconnect(self):
        for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
            before = self.stats()["tls_handshakes"]["resumed"]
            sock, reader = self.connect(version)
            try:
                self.assertFalse(sock.session_reused)
                # A response read first: TLS 1.3 tickets come after the handshake.
                self.assertEqual(lib.sha256(self.get(sock, reader, "1k.bin").body),
                                 DIGESTS["1k.bin"])
                session = sock.session
            finally:
                sock.close()
            self.assertIsNotNone(session, version)
            for i in range(6):  # fresh connections, spread over both threads
                sock, reader = self.connect(version, session)
                try:
                    self.assertTrue(sock.session_reused, (version, i))
                    r = self.get(sock, reader, "1m.bin")
                    self.assertEqual(lib.sha256(r.body), DIGESTS["1m.bin"], (version, i))
                    if version == ssl.TLSVersion.TLSv1_3:
                        session = sock.session  # a ticket is good for one resumption
                finally:
                    sock.close()
            self.assertGreaterEqual(self.stats()["tls_handshakes"]["resumed"] - before, 6)

    def test_a_resumed_tls13_connection_seals_bodies_without_a_copy(self):
        # The tickets are the records OpenSSL sealed under the application key before the
        # record sealer took over; it must count them (its first sequence number) or the
        # client would fail to open the first body record.
        sock, reader = self.connect(ssl.TLSVersion.TLSv1_3)
        try:
            self.get(sock, reader, "1k.bin")
            session = sock.session
        finally:
            sock.close()
        sock, reader = self.connect(ssl.TLSVersion.TLSv1_3, session)
        try:
            self.assertTrue(sock.session_reused)
            self.get(sock, reader, "1m.bin")  # warms the page cache
            before = json.loads(self.get(sock, reader, "-/stats").body)
            for _ in range(4):
                self.assertEqual(lib.sha256(self.get(sock, reader, "1m.bin").body),
                                 DIGESTS["1m.bin"])
            after = json.loads(self.get(sock, reader, "-/stats").body)
        finally:
            sock.close()
        self.assertLess(after["bytes_copied_user_space"] - before["bytes_copied_user_space"],
                        64 << 10)


class CertificateReload(unittest.TestCase):
    """SIGHUP reloads --tls-cert/--tls-key (a renewed certificate) without a restart:
    connections made after it get the new certificate on every worker thread, connections
    made before keep theirs and go on serving, and a bad pair of files changes nothing."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pw_reload_", dir=os.environ.get("TEST_TMPDIR"))
        self.cert, self.key = os.path.join(self.dir, "live.crt"), os.path.join(self.dir, "live.key")
        self.old = make_cert(self.dir, "old", "old.example")
        self.new = make_cert(self.dir, "new", "new.example")
        self.install(*self.old)

    def install(self, cert, key):
        """Puts a certificate and key at the paths the server was started with (by rename,
        as a renewal tool does)."""
        for src, dst in ((cert, self.cert), (key, self.key)):
            shutil.copyfile(src, dst + ".tmp")
            os.replace(dst + ".tmp", dst)

    @staticmethod
    def der(cert_path):
        with open(cert_path) as f:
            return ssl.PEM_cert_to_DER_cert(f.read())

    @staticmethod
    def served_cert(sock):
        return sock.sock.getpeercert(binary_form=True)

    def wait_for_log(self, srv, text, count=1, timeout=10):
        deadline = time.monotonic() + timeout
        while srv.stderr().count(text) < count:
            self.assertLess(time.monotonic(), deadline, srv.stderr())
            time.sleep(0.02)

    def new_connections_serve(self, srv, cert_path, connections=8):
        """The next `connections` new connections all present `cert_path` and serve a body.
        The reload reaches each worker at its loop's next turn: allow a moment for that."""
        want = self.der(cert_path)
        deadline = time.monotonic() + 5
        seen = 0
        while seen < connections:
            c = TlsSocket(srv.port)
            try:
                got = self.served_cert(c)
                if got != want:
                    self.assertEqual(seen, 0, "an old certificate after the new one showed")
                    self.assertLess(time.monotonic(), deadline, "the reload never showed")
                    continue
                self.assertEqual(lib.sha256(c.request("/64k.bin").body), DIGESTS["64k.bin"])
                seen += 1
            finally:
                c.close()

    def stats(self, srv):
        c = TlsSocket(srv.port)
        try:
            return json.loads(c.request("/-/stats").body)
        finally:
            c.close()

    def test_sighup_serves_the_renewed_certificate_and_open_connections_keep_working(self):
        with lib.Server(ROOT, "--tls-cert", self.cert, "--tls-key", self.key, "--stats",
                        threads=2) as srv:
            self.new_connections_serve(srv, self.old[0], connections=2)
            before = TlsSocket(srv.port)  # open across the reload, with a keep-alive request
            ctx = client_context()
            ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            first = ctx.wrap_socket(lib.connect(srv.port, 20), server_hostname="localhost")
            try:
                self.assertEqual(lib.sha256(before.request("/1k.bin").body), DIGESTS["1k.bin"])
                first.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                lib.Reader(first).read_response()
                ticket = first.session
                self.install(*self.new)
                srv.proc.send_signal(signal.SIGHUP)
                self.wait_for_log(srv, "SIGHUP: reloaded")
                self.new_connections_serve(srv, self.new[0])
                # The connection from before the reload: still the old certificate, and
                # still serving, a large body included.
                self.assertEqual(self.served_cert(before), self.der(self.old[0]))
                r = before.request("/1m.bin")
                self.assertEqual(r.status, 200)
                self.assertEqual(lib.sha256(r.body), DIGESTS["1m.bin"])
                # A ticket from the old configuration: a full handshake, not a failure.
                again = ctx.wrap_socket(lib.connect(srv.port, 20), server_hostname="localhost",
                                        session=ticket)
                try:
                    self.assertFalse(again.session_reused)
                    self.assertEqual(again.getpeercert(binary_form=True), self.der(self.new[0]))
                    again.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: x\r\n\r\n")
                    self.assertEqual(lib.sha256(lib.Reader(again).read_response().body),
                                     DIGESTS["1k.bin"])
                finally:
                    again.close()
            finally:
                before.close()
                first.close()
            reloads = self.stats(srv)["tls_reloads"]
            self.assertEqual(reloads, {"done": 1, "failed": 0})

    def test_a_bad_certificate_or_key_on_sighup_keeps_the_old_one(self):
        with lib.Server(ROOT, "--tls-cert", self.cert, "--tls-key", self.key, "--stats",
                        threads=2) as srv:
            # The renewed certificate with the old key: they do not match.
            shutil.copyfile(self.new[0], self.cert)
            srv.proc.send_signal(signal.SIGHUP)
            self.wait_for_log(srv, "still serving the old certificate")
            # A key file that is not a key, then a certificate that is gone.
            self.install(*self.old)
            with open(self.key, "w") as f:
                f.write("not a key\n")
            srv.proc.send_signal(signal.SIGHUP)
            self.wait_for_log(srv, "still serving the old certificate", count=2)
            self.install(*self.old)
            os.unlink(self.cert)
            srv.proc.send_signal(signal.SIGHUP)
            self.wait_for_log(srv, "still serving the old certificate", count=3)
            self.assertIsNone(srv.proc.poll())
            self.new_connections_serve(srv, self.old[0])
            self.assertEqual(self.stats(srv)["tls_reloads"], {"done": 0, "failed": 3})
            # The files fixed: the next SIGHUP takes them.
            self.install(*self.new)
            srv.proc.send_signal(signal.SIGHUP)
            self.wait_for_log(srv, "SIGHUP: reloaded")
            self.new_connections_serve(srv, self.new[0])


class HttpsBodyCopies(unittest.TestCase):
    def test_tls13_file_bodies_are_sealed_without_a_user_space_copy(self):
        # Page-cache pages of a file are scattered in memory; the record sealer reads them in
        # place. What is left to count is OpenSSL copying the requests in (a few hundred
        # bytes each), not the 1 MiB bodies.
        with lib.Server(ROOT, "--tls-cert", CERT, "--tls-key", KEY, "--stats") as srv:
            c = TlsSocket(srv.port)
            try:
                c.request("/1m.bin")  # warms the page cache
                before = json.loads(c.request("/-/stats").body)
                for _ in range(8):
                    r = c.request("/1m.bin")
                    self.assertEqual(lib.sha256(r.body), DIGESTS["1m.bin"])
                after = json.loads(c.request("/-/stats").body)
            finally:
                c.close()
        self.assertGreaterEqual(after["body_bytes"] - before["body_bytes"], 8 << 20)
        self.assertLess(after["bytes_copied_user_space"] - before["bytes_copied_user_space"],
                        64 << 10)


class HttpsWithoutPageCache(unittest.TestCase):
    def test_cache_mb_0_still_serves_every_demo_size_byte_exact(self):
        # The TLS layer reads file bytes through the page cache: --cache-mb 0 keeps none of
        # them between requests but must still read them.
        out = os.path.join(os.environ.get("TEST_TMPDIR", "/tmp"), "tls_nocache_body")
        with lib.Server(ROOT, "--tls-cert", CERT, "--tls-key", KEY, "--cache-mb", "0") as srv:
            for name, digest in DIGESTS.items():
                r = lib.run(["curl", "-sS", "-k", "--http1.1", "--max-time", "60", "-o", out,
                             f"https://127.0.0.1:{srv.port}/{name}"])
                self.assertEqual(r.returncode, 0, r.stderr)
                with open(out, "rb") as f:
                    self.assertEqual(lib.sha256(f.read()), digest, name)


class ShrinkingFile(unittest.TestCase):
    def test_a_file_that_shrinks_mid_response_ends_after_its_records_without_close_notify(self):
        """As on plain HTTP: every record sealed before the file ended arrives, then the
        stream ends (no close_notify, no reset), and the server counts a truncated file."""
        mib = 1 << 20
        root = tempfile.mkdtemp(prefix="pw_shrink_", dir=os.environ.get("TEST_TMPDIR"))
        path = os.path.join(root, "shrink.bin")
        data = os.urandom(16 * mib)
        with open(path, "wb") as f:
            f.write(data)
        # A 1 MiB page cache: the pages past the first MiB are read after the truncation.
        with lib.Server(root, "--tls-cert", CERT, "--tls-key", KEY, "--cache-mb", "1",
                        "--stats") as srv:
            raw = lib.connect(srv.port, 20)
            sock = client_context().wrap_socket(raw, server_hostname="localhost",
                                                suppress_ragged_eofs=False)
            try:
                sock.sendall(b"GET /shrink.bin HTTP/1.1\r\nHost: localhost\r\n\r\n")
                got = bytearray()
                while b"\r\n\r\n" not in got:
                    got += sock.recv(65536)
                head, _, rest = bytes(got).partition(b"\r\n\r\n")
                self.assertTrue(head.startswith(b"HTTP/1.1 200 "), head)
                self.assertIn(b"Content-Length: %d\r\n" % len(data), head + b"\r\n")
                body = bytearray(rest)
                while len(body) < mib:
                    body += sock.recv(65536)
                os.truncate(path, 12 * mib + 5000)
                while len(body) < 10 * mib:
                    body += sock.recv(65536)
                time.sleep(0.5)  # the server meets the new end with its window full
                try:
                    while True:
                        part = sock.recv(65536)
                        if not part:
                            ended = "close_notify"
                            break
                        body += part
                except ssl.SSLEOFError:
                    ended = "end without close_notify"
                except ConnectionResetError:
                    ended = "reset"
            finally:
                sock.close()
            self.assertEqual(ended, "end without close_notify")
            self.assertEqual(len(body), 12 * mib + 5000)
            self.assertTrue(bytes(body) == data[:12 * mib + 5000], "not a prefix of the file")
            c = TlsSocket(srv.port)
            try:
                stats = json.loads(c.request("/-/stats").body)
            finally:
                c.close()
            self.assertEqual((stats["truncated_files"], stats["send_errors"]), (1, 0))


class PlainServerStats(unittest.TestCase):
    def test_plain_server_reports_no_tls_path(self):
        with lib.Server(ROOT, "--stats") as srv:
            stats = json.loads(lib.get(srv.port, "/-/stats").body)
        self.assertFalse(stats["tls"])
        self.assertEqual(stats["tls_path"], "none")
        self.assertEqual(stats["paths"]["tls"], 0)
        self.assertEqual(stats["tls_reloads"], {"done": 0, "failed": 0})

    def test_sighup_on_a_plain_server_only_reopens_the_log(self):
        with lib.Server(ROOT, "--stats") as srv:
            srv.proc.send_signal(signal.SIGHUP)
            stats = json.loads(lib.get(srv.port, "/-/stats").body)
            self.assertEqual(stats["tls_reloads"], {"done": 0, "failed": 0})
            self.assertNotIn("SIGHUP", srv.stderr())


if __name__ == "__main__":
    lib.main("tls_test")
