"""HTTP/1.1 conformance of sendfile_server, one test per header rule of issue 7
(RFC 9110 / RFC 9112): methods, HEAD, validators, conditional requests, ranges,
multipart/byteranges, If-Range, directories, keep-alive, HTTP/1.0, pipelining,
parser limits, precompressed siblings. Raw sockets, curl and http.client.

Usage: conformance_test.py SENDFILE_SERVER_BINARY"""

import email.utils
import json
import gzip
import http.client
import os
import re
import socket
import threading
import time
import unittest

import server_testlib as lib


def setUpModule():
    global ROOT, SRV, DATA
    ROOT, _ = lib.make_root({"64k.bin": 64 << 10})
    DATA = {}
    for name, content in {"page.html": b"<p>hi</p>\n" * 50, "style.css": b"body{}\n" * 300,
                          "data.json": b'{"a": 1}\n', "notes.txt": b"plain text\n" * 200}.items():
        with open(os.path.join(ROOT, name), "wb") as f:
            f.write(content)
        DATA[name] = content
    with open(os.path.join(ROOT, "64k.bin"), "rb") as f:
        DATA["64k.bin"] = f.read()
    os.mkdir(os.path.join(ROOT, "docs"))
    with open(os.path.join(ROOT, "docs", "index.html"), "wb") as f:
        f.write(b"<p>docs</p>\n")
    os.mkdir(os.path.join(ROOT, "empty"))
    # Precompressed siblings: fresh for notes.txt, stale (older) for style.css.
    DATA["notes.txt.gz"] = gzip.compress(DATA["notes.txt"])
    with open(os.path.join(ROOT, "notes.txt.gz"), "wb") as f:
        f.write(DATA["notes.txt.gz"])
    with open(os.path.join(ROOT, "style.css.gz"), "wb") as f:
        f.write(gzip.compress(b"STALE"))
    old = time.time() - 3600
    os.utime(os.path.join(ROOT, "style.css.gz"), (old, old))
    SRV = lib.Server(ROOT, "--compress", "gzip", "--stats")


def tearDownModule():
    rc = SRV.stop()
    if rc != 0:  # sanitizer reports, crashes at exit
        raise AssertionError(f"server exited with {rc}: {SRV.stderr()}")


def get(path, *headers, method="GET", version="HTTP/1.1"):
    return lib.get(SRV.port, path, headers, method=method, version=version)


class Basics(unittest.TestCase):
    def test_get_sends_length_date_server_validators_type(self):
        r = get("/64k.bin")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.version, "HTTP/1.1")
        self.assertEqual(r.body, DATA["64k.bin"])
        self.assertEqual(r.header("Content-Length"), str(64 << 10))
        self.assertIsNotNone(email.utils.parsedate_to_datetime(r.header("Date")))
        self.assertRegex(r.header("Date"), r"^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$")
        self.assertIsNotNone(r.header("Server"))
        self.assertIsNotNone(email.utils.parsedate_to_datetime(r.header("Last-Modified")))
        self.assertRegex(r.header("ETag"), r'^"[^"]+"$')  # strong
        self.assertEqual(r.header("Content-Type"), "application/octet-stream")
        self.assertEqual(r.header("Accept-Ranges"), "bytes")

    def test_content_type_from_extension(self):
        self.assertTrue(get("/page.html").header("Content-Type").startswith("text/html"))
        self.assertTrue(get("/style.css").header("Content-Type").startswith("text/css"))
        self.assertTrue(get("/data.json").header("Content-Type").startswith("application/json"))
        self.assertTrue(get("/notes.txt").header("Content-Type").startswith("text/plain"))

    def test_etag_changes_with_the_file(self):
        path = os.path.join(ROOT, "changing.txt")
        with open(path, "wb") as f:
            f.write(b"one")
        first = get("/changing.txt").header("ETag")
        with open(path, "wb") as f:
            f.write(b"two, longer")
        deadline = time.monotonic() + 5  # the open-file cache revalidates within a second
        while time.monotonic() < deadline:
            r = get("/changing.txt")
            if r.body == b"two, longer":
                break
            time.sleep(0.2)
        self.assertEqual(r.body, b"two, longer")
        self.assertNotEqual(r.header("ETag"), first)

    def test_head_has_gets_fields_and_no_body(self):
        g = get("/page.html")
        h = get("/page.html", method="HEAD")
        self.assertEqual(h.status, 200)
        for name in ("Content-Length", "Content-Type", "ETag", "Last-Modified", "Accept-Ranges"):
            self.assertEqual(h.header(name), g.header(name), name)
        # A HEAD then a GET on one connection: the GET's status line follows the HEAD's
        # head directly, so the HEAD carried no body.
        with lib.connect(SRV.port) as s:
            s.sendall(b"HEAD /page.html HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /data.json HTTP/1.1\r\nHost: x\r\n\r\n")
            rd = lib.Reader(s)
            rd.read_response(head_request=True)
            r2 = rd.read_response()
            self.assertEqual(r2.body, DATA["data.json"])

    def test_other_methods_get_405_with_allow(self):
        for m in ("POST", "PUT", "DELETE", "OPTIONS", "PATCH"):
            r = lib.request(SRV.port, f"{m} /page.html HTTP/1.1\r\nHost: x\r\nContent-Length: 0"
                                      f"\r\n\r\n".encode())
            self.assertEqual(r.status, 405, m)
            self.assertEqual(r.header("Allow"), "GET, HEAD")

    def test_unknown_methods_get_501_and_the_connection_serves_on(self):
        # RFC 9110 §9.1: methods are case-sensitive; one the server does not know -> 501.
        with lib.connect(SRV.port) as s:
            s.sendall(b"get /page.html HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"PROPFIND /page.html HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET /page.html HTTP/1.1\r\nHost: x\r\n\r\n")
            rd = lib.Reader(s)
            for m in ("get", "PROPFIND"):
                r = rd.read_response()
                self.assertEqual(r.status, 501, m)
                self.assertIsNone(r.header("Allow"))
            self.assertEqual(rd.read_response().body, DATA["page.html"])

    def test_missing_file_is_404(self):
        self.assertEqual(get("/nope.html").status, 404)

    def test_directory_serves_index_html(self):
        r = get("/docs/")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"<p>docs</p>\n")
        self.assertTrue(r.header("Content-Type").startswith("text/html"))
        self.assertEqual(get("/").status, 200)

    def test_directory_without_index_is_404_without_list_dirs(self):
        self.assertEqual(get("/empty/").status, 404)
        # Without the slash too: no redirect to a 404, no hint that the directory exists.
        self.assertEqual(get("/empty").status, 404)

    def test_directory_without_slash_redirects_to_it_keeping_the_query(self):
        # RFC 9110 §15.4.2, as nginx and Apache: relative links in the index then resolve
        # inside the directory. The Location is the normalized path, escaped again; the
        # connection stays open.
        with lib.connect(SRV.port) as s:
            s.sendall(b"GET /docs?v=1&w=/x HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"HEAD /d%6Fcs HTTP/1.1\r\nHost: x\r\n\r\n"
                      b"GET http://x/docs HTTP/1.1\r\nHost: x\r\n\r\n")
            rd = lib.Reader(s)
            r1 = rd.read_response()
            r2 = rd.read_response(head_request=True)
            r3 = rd.read_response()
        self.assertEqual((r1.status, r2.status, r3.status), (301, 301, 301))
        self.assertEqual(r1.header("Location"), "/docs/?v=1&w=/x")
        self.assertEqual(r2.header("Location"), "/docs/")
        self.assertEqual(r3.header("Location"), "/docs/")
        self.assertEqual(r1.body, b"301 Moved Permanently\n")
        self.assertEqual(r2.header("Content-Length"), str(len(r1.body)))
        self.assertIsNone(r1.header("Connection"))
        self.assertEqual(get("/docs/").status, 200)

    def test_a_location_never_names_another_host(self):
        # "//docs/" in a Location is the host "docs" to a browser (RFC 3986 §4.2).
        for target in ("//docs", "///docs", "/%2F/docs", "http://x//docs", "/./docs"):
            r = get(target)
            self.assertEqual((r.status, r.header("Location")), (301, "/docs/"), target)
        self.assertEqual(get("//docs?a=1").header("Location"), "/docs/?a=1")

    def test_file_named_with_a_trailing_slash_is_404(self):
        self.assertEqual(get("/page.html").status, 200)
        self.assertEqual(get("/page.html/").status, 404)
        self.assertEqual(get("/page.html%2f").status, 404)
        self.assertEqual(get("/docs/index.html/").status, 404)
        # RFC 3986 §5.2.4: a last "." segment is a trailing slash ("/a/." is "/a/").
        self.assertEqual(get("/page.html/.").status, 404)
        self.assertEqual(get("/page.html/%2e").status, 404)
        self.assertEqual(get("/docs/.").body, b"<p>docs</p>\n")

    def test_curl_follows_the_directory_redirect_to_the_index(self):
        p = lib.run(["curl", "-s", "--http1.1", "-L", "-w", "%{num_redirects} %{url_effective}",
                     "-o", "/dev/null", SRV.url("/docs")])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.decode(), "1 " + SRV.url("/docs/"))
        p = lib.run(["curl", "-s", "--http1.1", "-L", SRV.url("/docs")])
        self.assertEqual(p.stdout, b"<p>docs</p>\n")

    def test_redirect_with_a_location_too_long_for_a_head_is_414(self):
        r = get("/docs?" + "q" * 4000)
        self.assertEqual(r.status, 414)
        self.assertIsNone(r.header("Location"))
        self.assertEqual(get("/docs?" + "q" * 1000).status, 301)

    def test_list_dirs_lists_entries(self):
        with lib.Server(ROOT, "--list-dirs") as srv:
            r = lib.get(srv.port, "/empty/")
            self.assertEqual(r.status, 200)
            os.makedirs(os.path.join(ROOT, "listed"), exist_ok=True)
            with open(os.path.join(ROOT, "listed", "a<b>.txt"), "w") as f:
                f.write("x")
            r = lib.get(srv.port, "/listed/")
            self.assertEqual(r.status, 200)

            self.assertIn(b"a&lt;b&gt;.txt", r.body)
            self.assertIn(b'href="a%3Cb%3E.txt"', r.body)
            # The entries' relative links resolve inside the directory only with the slash.
            r = lib.get(srv.port, "/empty")
            self.assertEqual((r.status, r.header("Location")), (301, "/empty/"))


class Conditionals(unittest.TestCase):
    def test_if_none_match_gives_304_with_etag(self):
        tag = get("/page.html").header("ETag")
        r = get("/page.html", f"If-None-Match: {tag}")
        self.assertEqual(r.status, 304)
        self.assertEqual(r.header("ETag"), tag)
        self.assertEqual(r.body, b"")

    def test_if_none_match_uses_weak_comparison(self):
        tag = get("/page.html").header("ETag")
        self.assertEqual(get("/page.html", f'If-None-Match: "x", W/{tag}').status, 304)
        self.assertEqual(get("/page.html", "If-None-Match: *").status, 304)

    def test_if_none_match_wins_over_if_modified_since(self):
        future = email.utils.formatdate(time.time() + 86400, usegmt=True)
        r = get("/page.html", 'If-None-Match: "other"', f"If-Modified-Since: {future}")
        self.assertEqual(r.status, 200)

    def test_if_modified_since(self):
        lm = get("/page.html").header("Last-Modified")
        self.assertEqual(get("/page.html", f"If-Modified-Since: {lm}").status, 304)
        past = email.utils.formatdate(time.time() - 10 * 86400, usegmt=True)
        self.assertEqual(get("/page.html", f"If-Modified-Since: {past}").status, 200)
        self.assertEqual(get("/page.html", "If-Modified-Since: yesterday").status, 200)

    def test_if_match_failure_is_412(self):
        self.assertEqual(get("/page.html", 'If-Match: "nope"').status, 412)

    def test_future_mtime_is_sent_as_the_date_and_hides_no_later_change(self):
        # RFC 9110 §8.8.2.1: a Last-Modified later than the Date MUST be replaced by the
        # Date; else a client revalidating with the future date gets 304 after a change.
        path = os.path.join(ROOT, "future.txt")
        with open(path, "wb") as f:
            f.write(b"from the future\n")
        ahead = time.time() + 86400
        os.utime(path, (ahead, ahead))
        r = get("/future.txt")
        self.assertEqual(r.status, 200)
        lm = r.header("Last-Modified")
        self.assertLessEqual(email.utils.parsedate_to_datetime(lm),
                             email.utils.parsedate_to_datetime(r.header("Date")))
        time.sleep(1.2)  # the change lands in a later second than that Date
        with open(path, "wb") as f:
            f.write(b"changed now\n")
        deadline = time.monotonic() + 5  # the open-file cache revalidates within a second
        while time.monotonic() < deadline and get("/future.txt").body != b"changed now\n":
            time.sleep(0.2)
        r = get("/future.txt", f"If-Modified-Since: {lm}")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.body, b"changed now\n")


class Ranges(unittest.TestCase):
    def test_single_range_is_206_with_content_range(self):
        r = get("/64k.bin", "Range: bytes=100-1099")
        self.assertEqual(r.status, 206)
        self.assertEqual(r.header("Content-Range"), f"bytes 100-1099/{64 << 10}")
        self.assertEqual(r.body, DATA["64k.bin"][100:1100])

    def test_suffix_and_open_ranges(self):
        r = get("/64k.bin", "Range: bytes=-100")
        self.assertEqual(r.body, DATA["64k.bin"][-100:])
        r = get("/64k.bin", "Range: bytes=65000-")
        self.assertEqual(r.body, DATA["64k.bin"][65000:])
        r = get("/64k.bin", "Range: bytes=65000-999999")  # clipped
        self.assertEqual(r.header("Content-Range"), f"bytes 65000-65535/{64 << 10}")

    def test_multiple_ranges_are_multipart_byteranges(self):
        r = get("/64k.bin", "Range: bytes=0-9,1000-1009,-5")
        self.assertEqual(r.status, 206)
        m = re.match(r"multipart/byteranges; boundary=(\S+)", r.header("Content-Type"))
        self.assertIsNotNone(m)
        self.assertEqual(int(r.header("Content-Length")), len(r.body))
        boundary = m.group(1).encode()
        parts = r.body.split(b"--" + boundary)
        self.assertEqual(parts[-1].strip(b"\r\n"), b"--")
        bodies = []
        for p in parts[1:-1]:
            head, _, body = p.partition(b"\r\n\r\n")
            self.assertIn(b"Content-Range: bytes ", head)
            bodies.append(body[:-2] if body.endswith(b"\r\n") else body)
        d = DATA["64k.bin"]
        self.assertEqual(bodies, [d[0:10], d[1000:1010], d[-5:]])

    def test_unsatisfiable_is_416_with_star_range(self):
        r = get("/64k.bin", "Range: bytes=70000-80000")
        self.assertEqual(r.status, 416)
        self.assertEqual(r.header("Content-Range"), f"bytes */{64 << 10}")

    def test_malformed_range_is_ignored(self):
        for bad in ("bytes=abc", "bytes=5-2", "pages=1-2", "bytes 0-1"):
            r = get("/64k.bin", f"Range: {bad}")
            self.assertEqual(r.status, 200, bad)
            self.assertEqual(len(r.body), 64 << 10)

    def test_too_many_or_overlapping_ranges_give_the_whole(self):
        many = ",".join(f"{i * 10}-{i * 10 + 1}" for i in range(17))
        self.assertEqual(get("/64k.bin", f"Range: bytes={many}").status, 200)
        self.assertEqual(get("/64k.bin", "Range: bytes=0-100,50-150").status, 200)

    def test_if_range(self):
        tag = get("/64k.bin").header("ETag")
        self.assertEqual(get("/64k.bin", "Range: bytes=0-1", f"If-Range: {tag}").status, 206)
        r = get("/64k.bin", "Range: bytes=0-1", 'If-Range: "stale"')
        self.assertEqual(r.status, 200)
        self.assertEqual(len(r.body), 64 << 10)

    def test_curl_range(self):
        p = lib.run(["curl", "-s", "--http1.1", "--range", "10-19", SRV.url("/64k.bin")])
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout, DATA["64k.bin"][10:20])


class Connections(unittest.TestCase):
    def test_keep_alive_serves_many_requests_on_one_connection(self):
        conn = http.client.HTTPConnection("127.0.0.1", SRV.port, timeout=10)
        for name in ("page.html", "data.json", "64k.bin", "page.html"):
            conn.request("GET", "/" + name)
            resp = conn.getresponse()
            self.assertEqual(resp.read(), DATA[name])
            self.assertFalse(resp.will_close)
        conn.close()

    def test_pipelined_responses_come_in_order(self):
        names = ["data.json", "page.html", "nope", "notes.txt", "data.json"]
        raw = b"".join(f"GET /{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for n in names)
        with lib.connect(SRV.port) as s:
            s.sendall(raw)
            rd = lib.Reader(s)
            for n in names:
                r = rd.read_response()
                if n == "nope":
                    self.assertEqual(r.status, 404)
                else:
                    self.assertEqual(r.body, DATA[n], n)

    def test_pipelined_one_byte_at_a_time(self):
        raw = b"GET /data.json HTTP/1.1\r\nHost: x\r\n\r\n" * 2
        with lib.connect(SRV.port) as s:
            for i in range(len(raw)):
                s.send(raw[i:i + 1])
            rd = lib.Reader(s)
            self.assertEqual(rd.read_response().body, DATA["data.json"])
            self.assertEqual(rd.read_response().body, DATA["data.json"])

    def test_connection_close_is_honoured(self):
        with lib.connect(SRV.port) as s:
            s.sendall(b"GET /data.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            rd = lib.Reader(s)
            r = rd.read_response()
            self.assertEqual(r.header("Connection"), "close")
            self.assertTrue(rd.at_eof())

    def test_http10_closes_unless_keep_alive(self):
        with lib.connect(SRV.port) as s:
            s.sendall(b"GET /data.json HTTP/1.0\r\n\r\n")
            rd = lib.Reader(s)
            r = rd.read_response()
            self.assertEqual(r.body, DATA["data.json"])
            self.assertTrue(rd.at_eof())
        with lib.connect(SRV.port) as s:
            s.sendall(b"GET /data.json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            rd = lib.Reader(s)
            self.assertEqual(rd.read_response().header("Connection"), "keep-alive")
            s.sendall(b"GET /data.json HTTP/1.0\r\n\r\n")
            self.assertEqual(rd.read_response().body, DATA["data.json"])

    def test_expect_100_continue_is_answered_before_the_body(self):
        # RFC 9110 §10.1.1: the server MUST send 100 (Continue) or the final status at once,
        # not leave the client waiting out its timeout before it sends the content.
        with lib.connect(SRV.port) as s:
            s.sendall(b"POST /page.html HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                      b"Expect: 100-continue\r\n\r\n")
            s.settimeout(3)
            rd = lib.Reader(s)
            try:
                status = rd.read_head()[1]
            except socket.timeout:
                status = None
            self.assertEqual(status, 100)
            s.settimeout(10)
            s.sendall(b"hello" b"GET /data.json HTTP/1.1\r\nHost: x\r\n\r\n")
            self.assertEqual(rd.read_response().status, 405)
            self.assertEqual(rd.read_response().body, DATA["data.json"])

    def test_curl_head_and_http11(self):
        p = lib.run(["curl", "-s", "-I", "--http1.1", SRV.url("/page.html")])
        self.assertEqual(p.returncode, 0)
        self.assertIn(b"HTTP/1.1 200 OK", p.stdout)
        self.assertIn(f"Content-Length: {len(DATA['page.html'])}".encode(), p.stdout)


class Limits(unittest.TestCase):
    def test_too_large_header_block_is_431(self):
        big = "X-Big: " + "a" * 17000
        out = lib.raw_exchange(SRV.port, f"GET / HTTP/1.1\r\nHost: x\r\n{big}\r\n\r\n".encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:60])

    def test_too_many_fields_is_431(self):
        fields = "".join(f"X-{i}: v\r\n" for i in range(101))
        out = lib.raw_exchange(SRV.port, f"GET / HTTP/1.1\r\nHost: x\r\n{fields}\r\n".encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 431 "), out[:60])

    def test_too_long_target_is_414(self):
        out = lib.raw_exchange(SRV.port, f"GET /{'a' * 17000} HTTP/1.1\r\n\r\n".encode())
        self.assertTrue(out.startswith(b"HTTP/1.1 414 "), out[:60])

    def test_garbage_request_line_is_400_and_closes(self):
        out = lib.raw_exchange(SRV.port, b"HELLO\r\n\r\n")
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out[:60])
        self.assertIn(b"Connection: close", out)

    def test_refused_head_request_gets_the_head_alone(self):
        # RFC 9112 §6.3: no response to HEAD has content, an error response included.
        out = lib.raw_exchange(SRV.port,
                               b"HEAD /page.html HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n")
        head, sep, rest = out.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 400 "), out[:60])
        self.assertEqual(sep, b"\r\n\r\n")
        self.assertIn(b"Content-Length: ", head)  # what a GET's 400 would carry
        self.assertEqual(rest, b"")

    def test_lines_ended_by_cr_alone_get_400_at_once(self):
        # RFC 9112 §2.2: a bare CR is invalid; no LF ever comes, so the answer must not wait
        # for the header timeout (10 s here).
        start = time.monotonic()
        out = lib.raw_exchange(SRV.port, b"GET /page.html HTTP/1.1\rHost: x\r\r", timeout=8)
        self.assertTrue(out.startswith(b"HTTP/1.1 400 "), out[:60])
        self.assertLess(time.monotonic() - start, 5)


class Encodings(unittest.TestCase):
    def test_fresh_precompressed_sibling_is_sent_with_vary_and_own_etag(self):
        plain = get("/notes.txt")
        r = get("/notes.txt", "Accept-Encoding: gzip")
        self.assertEqual(r.status, 200)
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(r.header("Vary"), "Accept-Encoding")
        self.assertEqual(r.body, DATA["notes.txt.gz"])
        self.assertNotEqual(r.header("ETag"), plain.header("ETag"))
        self.assertEqual(plain.header("Vary"), "Accept-Encoding")

    def test_q_values_and_case(self):
        self.assertEqual(get("/notes.txt", "Accept-Encoding: GZIP;q=0.5").header(
            "Content-Encoding"), "gzip")
        self.assertIsNone(get("/notes.txt", "Accept-Encoding: gzip;q=0").header(
            "Content-Encoding"))
        self.assertEqual(get("/notes.txt", "Accept-Encoding: *").header("Content-Encoding"),
                         "gzip")

    def test_nothing_acceptable_is_406(self):
        r = get("/64k.bin", "Accept-Encoding: identity;q=0")
        self.assertEqual(r.status, 406)

    def test_stale_sibling_is_not_used(self):
        r = get("/style.css", "Accept-Encoding: gzip")  # compressed on the fly instead
        self.assertEqual(r.header("Content-Encoding"), "gzip")
        self.assertEqual(gzip.decompress(r.body), DATA["style.css"])

    def test_range_applies_to_identity_only(self):
        r = get("/notes.txt", "Accept-Encoding: gzip", "Range: bytes=0-4")
        self.assertEqual(r.status, 206)
        self.assertIsNone(r.header("Content-Encoding"))
        self.assertEqual(r.body, DATA["notes.txt"][:5])

    def test_on_the_fly_gzip_and_zstd_for_compressible_types(self):
        page = os.path.join(ROOT, "big.html")
        content = b"<p>compress me, compress me</p>\n" * 400
        with open(page, "wb") as f:
            f.write(content)
        with lib.Server(ROOT, "--compress", "zstd,gzip") as srv:
            r = lib.get(srv.port, "/big.html", ["Accept-Encoding: gzip"])
            self.assertEqual(r.header("Content-Encoding"), "gzip")
            self.assertEqual(int(r.header("Content-Length")), len(r.body))
            self.assertLess(len(r.body), len(content))
            self.assertEqual(gzip.decompress(r.body), content)
            self.assertTrue(r.header("ETag").endswith('-gz"'))
            z = lib.get(srv.port, "/big.html", ["Accept-Encoding: gzip, zstd"])
            self.assertEqual(z.header("Content-Encoding"), "zstd")  # the server's preference
            p = lib.run(["zstd", "-d", "-c"], input=z.body)
            self.assertEqual(p.stdout, content)
            h = lib.get(srv.port, "/big.html", ["Accept-Encoding: gzip"], method="HEAD")
            self.assertEqual(h.header("Content-Length"), r.header("Content-Length"))
            # Pipelined behind a compressed response, in order.
            with lib.connect(srv.port) as s:
                s.sendall(b"GET /big.html HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
                          b"GET /data.json HTTP/1.1\r\nHost: x\r\n\r\n")
                rd = lib.Reader(s)
                self.assertEqual(gzip.decompress(rd.read_response().body), content)
                self.assertEqual(rd.read_response().body, DATA["data.json"])
            # Small and incompressible files stay identity.
            self.assertIsNone(lib.get(srv.port, "/data.json", ["Accept-Encoding: gzip"]).header(
                "Content-Encoding"))
            self.assertIsNone(lib.get(srv.port, "/64k.bin", ["Accept-Encoding: gzip"]).header(
                "Content-Encoding"))
            p = lib.run(["curl", "-s", "--compressed", "--http1.1", srv.url("/big.html")])
            self.assertEqual(p.stdout, content)

    def test_on_the_fly_compression_works_with_cache_mb_0(self):
        # The codecs read file bytes through the page cache; --cache-mb 0 keeps none of them
        # between requests but must not turn compression off.
        page = os.path.join(ROOT, "nocache.html")
        content = b"<p>no cache, still compressed</p>\n" * 300
        with open(page, "wb") as f:
            f.write(content)
        with lib.Server(ROOT, "--compress", "gzip", "--cache-mb", "0") as srv:
            r = lib.get(srv.port, "/nocache.html", ["Accept-Encoding: gzip"])
            self.assertEqual(r.header("Content-Encoding"), "gzip")
            self.assertEqual(gzip.decompress(r.body), content)
            self.assertEqual(lib.get(srv.port, "/64k.bin").body, DATA["64k.bin"])

    def fetch_at_once(self, srv, names):
        """GETs each of `names` with Accept-Encoding: gzip, all at once, each with a pipelined
        GET of /data.json behind it: {name: (response, data.json response)}."""
        results, errors = {}, []

        def fetch(name):
            try:
                with lib.connect(srv.port, timeout=60) as s:
                    s.sendall(f"GET /{name} HTTP/1.1\r\nHost: t\r\n"
                              "Accept-Encoding: gzip\r\n\r\n"
                              "GET /data.json HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                    reader = lib.Reader(s)
                    results[name] = (reader.read_response(), reader.read_response())
            except Exception as e:  # reported below, with the others
                errors.append(f"{name}: {e!r}")

        threads = [threading.Thread(target=fetch, args=(n,)) for n in names]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertEqual(errors, [])
        return results

    def write_texts(self, count, size):
        """`count` random text files of `size` bytes under ROOT: {name: content}."""
        contents = {}
        for i in range(count):
            name = f"text{size}_{i}.txt"
            contents[name] = os.urandom(size // 2).hex().encode()
            with open(os.path.join(ROOT, name), "wb") as f:
                f.write(contents[name])
            self.addCleanup(os.unlink, os.path.join(ROOT, name))
        return contents

    def test_compressions_over_the_memory_budget_go_out_uncompressed(self):
        # Each on-the-fly compression holds its file and its output in the worker's page pool;
        # those in flight may hold 4 MiB of files between them (one bigger file goes alone).
        # Eight files of almost 8 MiB asked for at once: those over the budget are answered in
        # identity (with Vary), never 500, and their connections carry on with the next
        # pipelined request.
        contents = self.write_texts(8, (8 << 20) - 128)
        with lib.Server(ROOT, "--compress", "gzip", "--cache-mb", "0", "--stats") as srv:
            results = self.fetch_at_once(srv, contents)
            codings = []
            for name, (big, small) in sorted(results.items()):
                self.assertEqual(big.status, 200, name)
                self.assertEqual(big.header("Vary"), "Accept-Encoding", name)
                coding = big.header("Content-Encoding")
                codings.append(coding)
                body = gzip.decompress(big.body) if coding == "gzip" else big.body
                self.assertEqual(body, contents[name], name)
                self.assertEqual((small.status, small.body), (200, DATA["data.json"]), name)
            stats = json.loads(lib.get(srv.port, "/-/stats").body)["compressed_cache"]
            self.assertEqual(stats["failed"] + stats["refused"], codings.count(None), stats)
            self.assertGreater(stats["refused"], 0, codings)
            self.assertIn("gzip", codings)

    def test_compressions_within_the_memory_budget_all_go_compressed(self):
        # Eight 256 KiB files at once hold 2 MiB between them: every one is compressed.
        contents = self.write_texts(8, 256 << 10)
        with lib.Server(ROOT, "--compress", "gzip", "--cache-mb", "0", "--stats") as srv:
            results = self.fetch_at_once(srv, contents)
            for name, (big, small) in sorted(results.items()):
                self.assertEqual(big.header("Content-Encoding"), "gzip", name)
                self.assertEqual(gzip.decompress(big.body), contents[name], name)
                self.assertEqual((small.status, small.body), (200, DATA["data.json"]), name)
            stats = json.loads(lib.get(srv.port, "/-/stats").body)["compressed_cache"]
            self.assertEqual((stats["failed"], stats["refused"]), (0, 0), stats)

    def test_repeated_on_the_fly_requests_reuse_the_compressed_body_until_the_file_changes(self):
        page = os.path.join(ROOT, "cached.html")
        content = b"<p>cache me</p>\n" * 500
        with open(page, "wb") as f:
            f.write(content)
        with lib.Server(ROOT, "--compress", "gzip", "--stats") as srv:
            first = lib.get(srv.port, "/cached.html", ["Accept-Encoding: gzip"])
            second = lib.get(srv.port, "/cached.html", ["Accept-Encoding: gzip"])
            self.assertEqual(gzip.decompress(second.body), content)
            self.assertEqual(second.body, first.body)
            self.assertEqual(second.header("Content-Length"), first.header("Content-Length"))
            stats = json.loads(lib.get(srv.port, "/-/stats").body)
            self.assertEqual(stats["compressed_cache"],
                             {"hits": 1, "misses": 1, "failed": 0, "refused": 0})
            changed = b"<p>changed</p>\n" * 700  # new size and mtime: a new version
            with open(page, "wb") as f:
                f.write(changed)
            os.utime(page, ns=(time.time_ns() + 5 * 10**9, time.time_ns() + 5 * 10**9))
            time.sleep(1.2)  # past open_file_cache's 1 s revalidation: the new version is seen
            third = lib.get(srv.port, "/cached.html", ["Accept-Encoding: gzip"])
            self.assertEqual(gzip.decompress(third.body), changed)
            stats = json.loads(lib.get(srv.port, "/-/stats").body)
            self.assertEqual(stats["compressed_cache"]["misses"], 2)

    def test_absent_sibling_is_remembered_and_a_later_one_is_picked_up(self):
        path = os.path.join(ROOT, "late.bin")  # not compressible: siblings or identity only
        content = os.urandom(3000)
        with open(path, "wb") as f:
            f.write(content)
        with lib.Server(ROOT, "--compress", "gzip,zstd", "--stats") as srv:
            for _ in range(5):
                r = lib.get(srv.port, "/late.bin", ["Accept-Encoding: gzip"])
                self.assertEqual(r.status, 200)
                self.assertIsNone(r.header("Content-Encoding"))
                self.assertEqual(r.body, content)
            absent = json.loads(lib.get(srv.port, "/-/stats").body)["absent_siblings"]
            # Two codings x five requests; each failed open is remembered for the open-file
            # cache's 1 s, so (barring a 1 s stall between requests) most are spared.
            self.assertEqual(absent["checked"] + absent["cached"], 10)
            self.assertGreaterEqual(absent["checked"], 2)
            self.assertGreaterEqual(absent["cached"], 1)
            packed = gzip.compress(content)
            with open(path + ".gz", "wb") as f:
                f.write(packed)
            seen = None
            deadline = time.monotonic() + 15  # revalidation comes after 1 s
            while time.monotonic() < deadline:
                r = lib.get(srv.port, "/late.bin", ["Accept-Encoding: gzip"])
                seen = r.header("Content-Encoding")
                if seen == "gzip":
                    break
                time.sleep(0.2)
            self.assertEqual(seen, "gzip")
            self.assertEqual(r.body, packed)
            self.assertEqual(r.header("Vary"), "Accept-Encoding")

    def test_compressible_file_over_the_on_the_fly_limit_is_served_identity(self):
        page = os.path.join(ROOT, "huge.html")
        content = b"<p>too big to compress in memory</p>\n" * ((9 << 20) // 37)
        with open(page, "wb") as f:
            f.write(content)
        with lib.Server(ROOT, "--compress", "gzip") as srv:
            r = lib.get(srv.port, "/huge.html", ["Accept-Encoding: gzip"])
            self.assertIsNone(r.header("Content-Encoding"))
            self.assertEqual(int(r.header("Content-Length")), len(content))
            self.assertEqual(r.body, content)

    def test_curl_compressed_decodes_the_sibling(self):
        p = lib.run(["curl", "-s", "--compressed", "--http1.1", SRV.url("/notes.txt")])
        self.assertEqual(p.returncode, 0)
        self.assertEqual(p.stdout, DATA["notes.txt"])


if __name__ == "__main__":
    lib.main("conformance_test")
