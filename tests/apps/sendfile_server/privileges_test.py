"""--user NAME[:GROUP]: a server started as root binds, loads its certificate and opens its
log as root, then runs as NAME in every thread; files are opened with NAME's rights (a file
only root may read gets 403 where the same server without --user serves it); a key only
root may read still serves HTTPS, and a SIGHUP reload that cannot read it keeps the old
certificate; a wrong name, a malformed spec, a root NAME cannot reach, or a non-root start
asking for another account exits 2 with one line.

Needs real root: the Bazel sandbox's user namespace maps uid 0 alone, so the test is tagged
no-sandbox, and its document roots live under /tmp, which every account can traverse
(TEST_TMPDIR is under /root).

Usage: privileges_test.py SENDFILE_SERVER_BINARY"""

import grp
import json
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

import server_testlib as lib

ACCOUNT = "nobody"
GROUP = "users"


def status_ids(pid):
    """{task id: (uids, gids, groups)} of every thread of `pid`, from /proc."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        fields = {}
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                fields[key] = value.split()
        out[tid] = (fields["Uid"], fields["Gid"], sorted(int(g) for g in fields["Groups"]))
    return out


def https_get(port, path):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            reader = lib.Reader(s)
            return reader.read_response()


@unittest.skipUnless(os.geteuid() == 0, "--user needs the server started as root")
class RunsAsAccount(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pw_priv_", dir="/tmp")
        os.chmod(self.dir, 0o755)
        self.root = os.path.join(self.dir, "root")
        os.mkdir(self.root, 0o755)
        self.public = os.urandom(100_000)
        with open(os.path.join(self.root, "public.bin"), "wb") as f:
            f.write(self.public)
        os.chmod(os.path.join(self.root, "public.bin"), 0o644)
        with open(os.path.join(self.root, "private.bin"), "wb") as f:
            f.write(b"root only\n")
        os.chmod(os.path.join(self.root, "private.bin"), 0o600)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_every_thread_runs_as_the_account_with_its_groups(self):
        pw = pwd.getpwnam(ACCOUNT)
        with lib.Server(self.root, "--user", ACCOUNT, threads=2) as srv:
            self.assertEqual(lib.get(srv.port, "/public.bin").status, 200)
            ids = status_ids(srv.proc.pid)
            self.assertGreaterEqual(len(ids), 3)  # main, 2 workers
            expect_groups = sorted(set(os.getgrouplist(ACCOUNT, pw.pw_gid)))
            for tid, (uids, gids, groups) in ids.items():
                self.assertEqual(uids, [str(pw.pw_uid)] * 4, tid)  # real, effective, saved, fs
                self.assertEqual(gids, [str(pw.pw_gid)] * 4, tid)
                self.assertEqual(groups, expect_groups, tid)
        self.assertIn(f"as {ACCOUNT}", srv.stderr())

    def test_a_group_given_replaces_the_accounts_groups(self):
        gid = grp.getgrnam(GROUP).gr_gid
        with lib.Server(self.root, "--user", f"{ACCOUNT}:{GROUP}") as srv:
            for uids, gids, groups in status_ids(srv.proc.pid).values():
                self.assertEqual(gids, [str(gid)] * 4)
                self.assertEqual(groups, [gid])

    def test_files_open_with_the_accounts_rights(self):
        with lib.Server(self.root, "--user", ACCOUNT) as srv:
            r = lib.get(srv.port, "/public.bin")
            self.assertEqual(r.status, 200)
            self.assertEqual(r.body, self.public)
            self.assertEqual(lib.get(srv.port, "/private.bin").status, 403)
        with lib.Server(self.root) as srv:  # the same server as root reads it
            self.assertEqual(lib.get(srv.port, "/private.bin").body, b"root only\n")

    def test_a_key_only_root_reads_serves_https_and_a_reload_keeps_it(self):
        cert, key = os.path.join(self.dir, "cert.pem"), os.path.join(self.dir, "key.pem")
        r = lib.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                     "-out", cert, "-days", "2", "-subj", "/CN=localhost"])
        self.assertEqual(r.returncode, 0, r.stderr)
        os.chmod(key, 0o600)
        with lib.Server(self.root, "--user", ACCOUNT, "--tls-cert", cert, "--tls-key", key,
                        "--stats") as srv:
            self.assertEqual(https_get(srv.port, "/public.bin").body, self.public)
            srv.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while "still serving the old certificate" not in srv.stderr():
                self.assertLess(time.monotonic(), deadline, srv.stderr())
                time.sleep(0.05)
            self.assertIn("Permission denied", srv.stderr())
            self.assertEqual(https_get(srv.port, "/public.bin").body, self.public)
            stats = json.loads(https_get(srv.port, "/-/stats").body)
            self.assertEqual(stats["tls_reloads"], {"done": 0, "failed": 1})


class Refused(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="pw_priv_", dir="/tmp")
        os.chmod(self.dir, 0o755)

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def check_refused(self, args, mentions, **kw):
        proc = lib.run([lib.BINARY, "--listen", "127.0.0.1:0", *args], timeout=10, **kw)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        lines = proc.stderr.decode().splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("sendfile_server: --user"), lines[0])
        self.assertIn(mentions, lines[0])

    def test_unknown_names_and_malformed_specs(self):
        self.check_refused(["--root", self.dir, "--user", "no-such-account"],
                           "no user 'no-such-account'")
        self.check_refused(["--root", self.dir, "--user", f"{ACCOUNT}:no-such-group"],
                           "no group 'no-such-group'")
        for spec in (":users", f"{ACCOUNT}:"):
            self.check_refused(["--root", self.dir, "--user", spec], "NAME or NAME:GROUP")

    @unittest.skipUnless(os.geteuid() == 0, "needs root")
    def test_a_root_the_account_cannot_reach(self):
        closed = os.path.join(self.dir, "closed")
        os.makedirs(os.path.join(closed, "root"))
        os.chmod(closed, 0o700)
        self.check_refused(["--root", os.path.join(closed, "root"), "--user", ACCOUNT],
                           "cannot open --root")

    @unittest.skipUnless(os.geteuid() == 0, "needs root to become another account first")
    def test_a_server_not_started_as_root_cannot_change_its_user(self):
        # The binary is copied where the account can run it (the build tree is under /root).
        binary = os.path.join(self.dir, "sendfile_server")
        shutil.copy(lib.BINARY, binary)
        os.chmod(binary, 0o755)
        pw = pwd.getpwnam(ACCOUNT)

        def as_account():
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)

        proc = lib.run([binary, "--root", self.dir, "--listen", "127.0.0.1:0", "--user",
                        "root"], timeout=10, preexec_fn=as_account)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(b"only a server started as root can change its user", proc.stderr)


if __name__ == "__main__":
    lib.main("privileges_test")
