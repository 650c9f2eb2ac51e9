"""zcbench end to end on a small --bytes: the JSON matches its schema, every record's
byte counts equal what the receiver got, copy copies one byte per byte while sendfile
and splice copy none, and the table and SVG show every record. Paths that transform the
stream (TLS, gzip, zstd): the receiver decodes exactly --bytes of application bytes and
reports the wire bytes (TLS more, compression of text fewer).

Usage: zcbench_report_test.py ZCBENCH_BINARY SCHEMA_JSON"""

import copy
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import xml.etree.ElementTree as ET

import zcbench_testlib as lib

BINARY, SCHEMA_FILE = sys.argv[1], sys.argv[2]
# 8 MiB + 3: the last message of every size is short, and 1000 is no divisor of it.
BYTES = 8 * 1024 * 1024 + 3
SIZES = [4096, 1000, 1024 * 1024]
# Every path of the table, in table order, with the raw loop it is compared with on loopback.
# pw_send_zc: the kernel copies SEND_ZC's pages for a local receiver and says so, transmit then
# sends by sendmsg (and messages under 4 KiB go by sendmsg anyway): compared with sendmsg.
RAW = {"copy": "copy", "sendfile": "sendfile", "splice": "splice", "send_zc": "send_zc",
       "sendmsg": "sendmsg", "pw_splice_pipe": "splice", "pw_sendfile": "sendfile",
       "pw_send_zc": "sendmsg", "pw_gather": "sendmsg"}
PATHS = list(RAW)
# Paths the kernel or RLIMIT_MEMLOCK may refuse (fixed buffers, SEND_ZC): skipped with a note.
MAY_SKIP = {"send_zc", "pw_send_zc"}
# Fewest system calls (io_uring_enter for ring paths) one message can cost.
CALLS_PER_MESSAGE = {"copy": 2, "splice": 2}


def tmpdir():
    return os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()


class CopyReceiverRun(unittest.TestCase):
    """One loopback run with --recv=copy, --repeat 2, shared by the cases below."""

    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_FILE, encoding="utf-8") as f:
            cls.schema = json.load(f)
        work = tempfile.mkdtemp(dir=tmpdir())
        cls.json_file = os.path.join(work, "out.json")
        cls.svg_file = os.path.join(work, "out.svg")
        cls.proc = lib.run_zcbench(
            BINARY, f"--bytes={BYTES}", "--sizes", "4K,1000,1M", "--repeat", "2",
            "--paths", ",".join(PATHS),
            "--transport", "loopback", "--recv=copy", "--json", cls.json_file,
            "--svg", cls.svg_file, "--tmpdir", work)
        cls.work = work
        with open(cls.json_file, encoding="utf-8") as f:
            cls.doc = json.load(f)
        cls.ran = [p for p in PATHS if p not in {s["path"] for s in cls.doc["skipped"]}]

    def test_run_exits_zero_and_leaves_no_temporary_source(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertEqual(sorted(os.listdir(self.work)), ["out.json", "out.svg"])

    def test_json_matches_schema(self):
        self.assertEqual(lib.schema_errors(self.doc, self.schema), [])

    def test_schema_check_rejects_broken_documents(self):
        broken = copy.deepcopy(self.doc)
        del broken["records"][0]["bytes_received"]
        self.assertTrue(lib.schema_errors(broken, self.schema))
        broken = copy.deepcopy(self.doc)
        broken["records"][0]["trials"][0]["syscalls"] = "many"
        self.assertTrue(lib.schema_errors(broken, self.schema))
        broken = copy.deepcopy(self.doc)
        broken["records"][0]["transport"] = "carrier-pigeon"
        self.assertTrue(lib.schema_errors(broken, self.schema))

    def test_one_record_per_path_and_size_with_every_trial(self):
        self.assertLessEqual(set(PATHS) - set(self.ran), MAY_SKIP)
        got = sorted((r["path"], r["message_size"]) for r in self.doc["records"])
        self.assertEqual(got, sorted((p, s) for p in self.ran for s in SIZES))
        for r in self.doc["records"]:
            self.assertEqual((r["transport"], r["recv"], r["repeat"]), ("loopback", "copy", 2))
            self.assertEqual(len(r["trials"]), 2)
        self.assertEqual(self.doc["errors"], [])

    def test_every_record_sent_and_received_exactly_the_bytes_asked(self):
        for r in self.doc["records"]:
            self.assertEqual(r["bytes"], BYTES)
            self.assertEqual(r["bytes_sent"], BYTES, r["path"])
            self.assertEqual(r["bytes_received"], BYTES, r["path"])
            for t in r["trials"]:
                self.assertEqual((t["bytes_sent"], t["bytes_received"]), (BYTES, BYTES))

    def test_copy_copies_one_byte_per_byte_and_every_other_path_none(self):
        for r in self.doc["records"]:
            expected = 1.0 if r["path"] == "copy" else 0.0
            self.assertEqual(r["copied_per_byte"], expected, r["path"])
            for t in r["trials"]:
                self.assertEqual(t["bytes_copied"], BYTES if r["path"] == "copy" else 0)

    def test_syscalls_cover_at_least_one_call_per_message(self):
        for r in self.doc["records"]:
            messages = -(-BYTES // r["message_size"])
            calls_per_message = CALLS_PER_MESSAGE.get(r["path"], 1)
            for t in r["trials"]:
                self.assertGreaterEqual(t["syscalls"], calls_per_message * messages, r["path"])
                self.assertGreater(t["receiver_syscalls"], 0)

    def test_sender_cpu_counts_at_least_the_sending_thread(self):
        # sender_cpu_s = process CPU minus the receiver and main threads, over send():
        # the sending thread plus its helpers (io-wq), so never below the thread alone.
        for r in self.doc["records"]:
            self.assertGreaterEqual(r["sender_cpu_s_per_gb"], r["sender_thread_cpu_s_per_gb"])
            for t in r["trials"]:
                self.assertGreaterEqual(t["sender_cpu_s"], t["sender_thread_cpu_s"], r["path"])
                self.assertGreater(t["sender_thread_cpu_s"], 0, r["path"])
                # user time is a tick-sampled share of the thread's runtime: within it
                self.assertLessEqual(t["sender_user_cpu_s"], t["sender_thread_cpu_s"] + 0.02,
                                     r["path"])

    def test_ratios_name_the_baseline_and_raw_loop(self):
        for r in self.doc["records"]:
            self.assertEqual(r["raw"], RAW[r["path"]])
            self.assertIsNotNone(r["ratio_to_raw"], r["path"])
            if r["raw"] == r["path"]:
                self.assertAlmostEqual(r["ratio_to_raw"], 1.0)
            if r["path"] == "copy":
                self.assertAlmostEqual(r["ratio_to_copy"], 1.0)
            self.assertGreater(r["gb_per_s"], 0)
            self.assertGreater(r["seconds"], 0)

    def test_ratios_pair_the_trials_of_each_round(self):
        cells = {(r["path"], r["message_size"]): r for r in self.doc["records"]}
        for r in self.doc["records"]:
            self.assertEqual([t["round"] for t in r["trials"]], [1, 2], r["path"])
            for field, other in (("ratio_to_raw", r["raw"]), ("ratio_to_copy", "copy")):
                base = cells[(other, r["message_size"])]
                pairs = sorted(t["gb_per_s"] / b["gb_per_s"]
                               for t, b in zip(r["trials"], base["trials"]))
                self.assertAlmostEqual(r[field], sum(pairs) / 2, places=3,
                                       msg=f"{r['path']} {field}")

    def test_host_and_settings_describe_the_run(self):
        self.assertEqual(self.doc["host"]["cores"], os.cpu_count())
        self.assertEqual(self.doc["host"]["kernel"], os.uname().release)
        s = self.doc["settings"]
        self.assertEqual((s["bytes"], s["repeat"], s["sizes"], s["paths"]), (BYTES, 2, SIZES, PATHS))
        self.assertEqual(s["window"], 64 * 1024 * 1024)  # the default
        self.assertEqual((s["sender_cpu"], s["receiver_cpu"]), (-1, -1))  # not pinned
        self.assertEqual(s["congestion"], "")  # the system's
        with open("/proc/sys/net/ipv4/tcp_congestion_control", encoding="utf-8") as f:
            self.assertEqual(self.doc["host"]["tcp_congestion"], f.read().strip())

    def test_table_has_a_row_per_record(self):
        rows = [line.split() for line in self.proc.stdout.splitlines()]
        for p in self.ran:
            for size in ("4K", "1000", "1M"):
                self.assertTrue(any(row[:3] == ["loopback", p, size] for row in rows),
                                f"{p} {size} missing from:\n{self.proc.stdout}")

    def test_table_names_the_raw_loop_of_each_pagewire_row(self):
        rows = [line.split() for line in self.proc.stdout.splitlines()]
        for p in self.ran:
            for row in (r for r in rows if r[:2] == ["loopback", p]):
                if RAW[p] == p:
                    self.assertTrue(row[-1].endswith("x"), row)
                else:
                    self.assertEqual(row[-1], RAW[p], row)

    def test_svg_is_well_formed_with_both_panels_and_a_legend(self):
        root = ET.parse(self.svg_file).getroot()
        texts = [t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text")]
        for p in self.ran:
            self.assertIn(p, texts)
        self.assertIn("GB/s", texts)
        self.assertIn("CPU s per GB", texts)
        self.assertTrue(any("throughput" in t for t in texts))
        bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find(
            "{http://www.w3.org/2000/svg}title") is not None]
        self.assertEqual(len(bars), 2 * len(self.ran) * len(SIZES))  # two panels


class SpliceReceiver(unittest.TestCase):
    def test_splice_receiver_counts_every_byte(self):
        out = os.path.join(tempfile.mkdtemp(dir=tmpdir()), "splice.json")
        proc = lib.run_zcbench(BINARY, "--bytes", "4M", "--sizes", "64K", "--repeat", "1",
                               "--paths", ",".join(PATHS), "--transport", "loopback", "--recv",
                               "splice", "--json", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        skipped = {s["path"] for s in doc["skipped"]}
        self.assertLessEqual(skipped, MAY_SKIP)
        self.assertEqual(len(doc["records"]), len(PATHS) - len(skipped))
        for r in doc["records"]:
            self.assertEqual(r["recv"], "splice")
            self.assertEqual(r["bytes_received"], 4 * 1024 * 1024)


class SmallWindow(unittest.TestCase):
    def test_a_window_smaller_than_the_stream_repeats_and_every_byte_arrives(self):
        # A 4K window: every 64K message spans 16 windows, and 1000-byte messages wrap it.
        # send_zc sends the pieces before a message's last with MSG_MORE; it once waited for
        # each such piece's NOTIF, which the kernel holds back ~200 ms (over 90 s here, past
        # the timeout below).
        work = tempfile.mkdtemp(dir=tmpdir())
        out = os.path.join(work, "window.json")
        total = 2 * 1024 * 1024 + 5
        paths = ["send_zc", "sendmsg", "pw_gather", "pw_splice_pipe", "pw_tls_aes128gcm",
                 "pw_gzip1"]
        proc = lib.run_zcbench(BINARY, f"--bytes={total}", "--sizes", "64K,1000", "--repeat",
                               "1", "--window", "4K", "--paths", ",".join(paths), "--transport",
                               "loopback", "--json", out, "--tmpdir", work, timeout=60)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        self.assertEqual(doc["settings"]["window"], 4096)
        skipped = {s["path"] for s in doc["skipped"]}
        self.assertLessEqual(skipped, MAY_SKIP)
        ran = [p for p in paths if p not in skipped]
        self.assertEqual(sorted((r["path"], r["message_size"]) for r in doc["records"]),
                         sorted((p, s) for p in ran for s in (65536, 1000)))
        for r in doc["records"]:
            self.assertEqual((r["bytes_sent"], r["bytes_received"]), (total, total), r["path"])


class DefaultSizes(unittest.TestCase):
    def test_default_sizes_above_bytes_are_left_out(self):
        out = os.path.join(tempfile.mkdtemp(dir=tmpdir()), "sizes.json")
        proc = lib.run_zcbench(BINARY, "--bytes", "64K", "--repeat", "1", "--paths", "copy",
                               "--transport", "loopback", "--json", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        self.assertEqual(sorted(r["message_size"] for r in doc["records"]), [4096, 65536])


class Watchdog(unittest.TestCase):
    def test_a_stalled_receiver_times_the_trial_out_on_every_kind_of_path(self):
        # The receiver reads nothing: only the --timeout watchdog (shutting the sockets down)
        # ends each trial, blocking and io_uring paths alike.
        work = tempfile.mkdtemp(dir=tmpdir())
        out = os.path.join(work, "stall.json")
        paths = ["copy", "splice", "send_zc", "pw_splice_pipe", "pw_send_zc", "pw_gather",
                 "tls_raw_aes128gcm", "pw_tls_aes128gcm", "pw_gzip1", "pw_zstd1"]
        proc = lib.run_zcbench(BINARY, "--bytes", "16M", "--window", "1M", "--source",
                               "random", "--sizes", "64K", "--repeat", "1", "--paths",
                               ",".join(paths), "--transport", "loopback", "--timeout", "1",
                               "--test-stall-receiver", "--json", out, "--tmpdir", work,
                               timeout=60)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        skipped = {s["path"] for s in doc["skipped"]}
        self.assertLessEqual(skipped, MAY_SKIP)
        self.assertEqual(doc["records"], [])
        self.assertEqual(sorted(e["path"] for e in doc["errors"]),
                         sorted(p for p in paths if p not in skipped))
        for p in paths:
            if p not in skipped:
                self.assertIn(f"loopback {p} 64K failed: trial timed out after 1 s",
                              proc.stderr)
        self.assertEqual(os.listdir(work), ["stall.json"])


class Congestion(unittest.TestCase):
    def test_the_sending_socket_uses_the_congestion_control_asked_for(self):
        # A stalled trial keeps its connection open until --timeout; `ss` shows each TCP
        # socket's congestion control meanwhile. reno is built into every kernel and no
        # system's default.
        work = tempfile.mkdtemp(dir=tmpdir())
        out = os.path.join(work, "cc.json")
        zcb = subprocess.Popen([BINARY, "--congestion", "reno", "--bytes", "64M", "--sizes",
                                "64K", "--repeat", "1", "--paths", "sendfile", "--transport",
                                "loopback", "--timeout", "3", "--test-stall-receiver", "--json",
                                out, "--tmpdir", work], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        seen = ""
        deadline = time.monotonic() + 2.5
        while "reno" not in seen and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = subprocess.run(["ss", "-tinH", "state", "established"], capture_output=True,
                                  text=True, check=False).stdout
        _, err = zcb.communicate(timeout=60)
        self.assertEqual(zcb.returncode, 1, err)  # the stalled trial times out
        self.assertIn("reno", seen)
        with open(out, encoding="utf-8") as f:
            self.assertEqual(json.load(f)["settings"]["congestion"], "reno")


class ReceiverCpu(unittest.TestCase):
    def test_the_receiver_thread_clock_is_readable_at_the_senders_last_sample(self):
        # The sender reads the receiver thread's CPU clock after send(); the receiver thread
        # once could exit before that (TLS, gzip, zstd paths), and the read failed (EINVAL).
        strace = shutil.which("strace")
        if strace is None:
            self.skipTest("no strace")
        log = os.path.join(tempfile.mkdtemp(dir=tmpdir()), "strace.log")
        proc = subprocess.run(
            [strace, "-f", "-e", "trace=clock_gettime", "-o", log, BINARY, "--bytes", "1M",
             "--sizes", "64K,1000", "--repeat", "3", "--transport", "loopback", "--paths",
             "tls_raw_aes128gcm,pw_tls_aes128gcm,pw_tls_chacha20,pw_gzip1,pw_zstd1"],
            capture_output=True, text=True, timeout=120, check=False)
        if not os.path.exists(log) or "ptrace" in proc.stderr:
            self.skipTest(f"strace cannot trace here: {proc.stderr.strip()[:200]}")
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(log, encoding="utf-8") as f:
            calls = [line for line in f if "clock_gettime" in line]
        self.assertTrue(calls)
        self.assertEqual([c for c in calls if "EINVAL" in c], [])


class Pinned(unittest.TestCase):
    def test_pinned_threads_run_where_asked_and_every_byte_arrives(self):
        out = os.path.join(tempfile.mkdtemp(dir=tmpdir()), "pinned.json")
        cpu = min(os.sched_getaffinity(0))
        proc = lib.run_zcbench(BINARY, "--bytes", "2M", "--sizes", "64K", "--repeat", "1",
                               "--paths", "sendfile,pw_splice_pipe", "--transport", "loopback",
                               "--pin", f"{cpu},{cpu}", "--json", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        self.assertEqual((doc["settings"]["sender_cpu"], doc["settings"]["receiver_cpu"]),
                         (cpu, cpu))
        self.assertEqual(len(doc["records"]), 2)
        for r in doc["records"]:
            self.assertEqual(r["bytes_received"], 2 * 1024 * 1024)

    def test_a_cpu_the_machine_lacks_fails_the_trial_with_a_clear_error(self):
        missing = max(os.sched_getaffinity(0)) + 1
        proc = lib.run_zcbench(BINARY, "--bytes", "1M", "--sizes", "64K", "--repeat", "1",
                               "--paths", "sendfile", "--transport", "loopback",
                               "--pin", f"{missing},{missing}")
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn(f"pin to CPU {missing}", proc.stderr)


# Paths that transform the stream, with their raw loops; every one runs here.
FILTER_RAW = {"tls_raw_aes128gcm": "tls_raw_aes128gcm", "tls_raw_aes256gcm": "tls_raw_aes256gcm",
              "tls_raw_chacha20": "tls_raw_chacha20", "gzip_raw1": "gzip_raw1",
              "gzip_raw6": "gzip_raw6", "zstd_raw1": "zstd_raw1", "zstd_raw3": "zstd_raw3",
              "pw_tls_aes128gcm": "tls_raw_aes128gcm", "pw_tls_aes256gcm": "tls_raw_aes256gcm",
              "pw_tls_chacha20": "tls_raw_chacha20", "pw_gzip1": "gzip_raw1",
              "pw_gzip6": "gzip_raw6", "pw_zstd1": "zstd_raw1", "pw_zstd3": "zstd_raw3"}
# 1 MiB + 7: the last message of every size is short.
FILTER_BYTES = 1024 * 1024 + 7
FILTER_SIZES = [65536, 1000]


def is_tls(path):
    return "tls" in path


def run_filters(*extra):
    work = tempfile.mkdtemp(dir=tmpdir())
    out = os.path.join(work, "filters.json")
    proc = lib.run_zcbench(BINARY, f"--bytes={FILTER_BYTES}", "--sizes", "64K,1000", "--repeat",
                           "1", "--transport", "loopback", "--paths", ",".join(FILTER_RAW),
                           "--json", out, "--tmpdir", work, *extra, timeout=120)
    with open(out, encoding="utf-8") as f:
        return proc, work, json.load(f)


class TransformedPaths(unittest.TestCase):
    """TLS, gzip and zstd: pagewire's stacks and their raw loops, the receiver decoding."""

    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_FILE, encoding="utf-8") as f:
            cls.schema = json.load(f)
        cls.proc, cls.work, cls.doc = run_filters()

    def test_run_exits_zero_matches_the_schema_and_leaves_nothing_behind(self):
        self.assertEqual(self.proc.returncode, 0, self.proc.stderr)
        self.assertEqual(lib.schema_errors(self.doc, self.schema), [])
        self.assertEqual(os.listdir(self.work), ["filters.json"])
        self.assertEqual((self.doc["skipped"], self.doc["errors"]), ([], []))

    def test_every_path_and_size_has_a_record(self):
        got = sorted((r["path"], r["message_size"]) for r in self.doc["records"])
        self.assertEqual(got, sorted((p, s) for p in FILTER_RAW for s in FILTER_SIZES))

    def test_receiver_decodes_exactly_the_application_bytes_asked(self):
        for r in self.doc["records"]:
            self.assertEqual((r["bytes_sent"], r["bytes_received"]),
                             (FILTER_BYTES, FILTER_BYTES), r["path"])
            for t in r["trials"]:
                self.assertEqual((t["bytes_sent"], t["bytes_received"]),
                                 (FILTER_BYTES, FILTER_BYTES), r["path"])
                self.assertEqual(t["bytes_wire"], r["bytes_wire"], r["path"])

    def test_tls_wire_exceeds_application_bytes_by_record_overhead(self):
        for r in self.doc["records"]:
            if is_tls(r["path"]):
                self.assertGreater(r["bytes_wire"], FILTER_BYTES, r["path"])
                self.assertLess(r["bytes_wire"], FILTER_BYTES * 1.1, r["path"])

    def test_compression_of_text_puts_fewer_bytes_on_the_wire(self):
        for r in self.doc["records"]:
            if not is_tls(r["path"]):
                self.assertEqual(r["source"], "text", r["path"])
                self.assertLess(r["bytes_wire"], FILTER_BYTES // 2, r["path"])
            else:
                self.assertEqual(r["source"], "random", r["path"])
        self.assertEqual(self.doc["settings"]["source"], "auto")

    def test_decoding_receivers_report_copy_and_ratios_name_the_raw_loop(self):
        for r in self.doc["records"]:
            self.assertEqual(r["recv"], "copy")
            self.assertEqual(r["raw"], FILTER_RAW[r["path"]])
            self.assertIsNotNone(r["ratio_to_raw"], r["path"])
            self.assertGreater(r["gb_per_s"], 0)

    def test_table_shows_wire_bytes_per_application_byte(self):
        header = self.proc.stdout.splitlines()[1].split()
        self.assertIn("wire/B", header)
        col = header.index("wire/B") - 4  # "snd CPU s/GB" and "rcv CPU s/GB": 3 words each
        for line in self.proc.stdout.splitlines()[2:]:
            row = line.split()
            if len(row) > 2 and row[1] == "pw_gzip6":
                self.assertLess(float(row[col]), 0.5, line)


class TransformedPathsOnRandomBytes(unittest.TestCase):
    def test_source_random_makes_compression_gain_nothing(self):
        proc = lib.run_zcbench(BINARY, "--bytes", "1M", "--sizes", "64K", "--repeat", "1",
                               "--transport", "loopback", "--paths", "gzip_raw1,pw_zstd1",
                               "--source", "random", "--json",
                               os.path.join(tempfile.mkdtemp(dir=tmpdir()), "r.json"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        rows = [line.split() for line in proc.stdout.splitlines()]
        self.assertTrue(any(r[:2] == ["loopback", "gzip_raw1"] for r in rows), proc.stdout)
        out = proc.args[-1]
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        self.assertEqual(doc["settings"]["source"], "random")
        for r in doc["records"]:
            self.assertEqual(r["source"], "random")
            self.assertEqual(r["bytes_received"], 1024 * 1024)
            self.assertGreater(r["bytes_wire"], 1024 * 1024 * 0.99, r["path"])


def netns_names():
    try:
        return {n for n in os.listdir("/run/netns") if n.startswith("zcbench-")}
    except OSError:
        return set()


def ip(*args):
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)


class Veth(unittest.TestCase):
    def test_veth_runs_or_is_skipped_with_a_note_and_leaves_no_namespace(self):
        before = netns_names()
        out = os.path.join(tempfile.mkdtemp(dir=tmpdir()), "veth.json")
        proc = lib.run_zcbench(BINARY, "--bytes", "4M", "--sizes", "64K", "--repeat", "1",
                               "--paths", "copy,splice", "--transport", "veth", "--json", out)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        with open(out, encoding="utf-8") as f:
            doc = json.load(f)
        if doc["records"]:
            self.assertEqual({r["transport"] for r in doc["records"]}, {"veth"})
            for r in doc["records"]:
                self.assertEqual(r["bytes_received"], 4 * 1024 * 1024)
        else:
            self.assertEqual([(s["path"], s["transport"]) for s in doc["skipped"]], [("*", "veth")])
            self.assertIn("zcbench: veth skipped: ", proc.stderr)
        self.assertLessEqual(netns_names(), before)  # none of its own left (stale ones go)

    def test_a_namespace_left_by_a_killed_run_is_removed_and_one_in_use_kept(self):
        dead, held = (f"zcbench-test{os.getpid()}-dead", f"zcbench-test{os.getpid()}-held")
        add = ip("netns", "add", dead)
        if add.returncode != 0:
            self.skipTest(f"cannot create network namespaces here: {add.stderr.strip()}")
        try:
            self.assertEqual(ip("netns", "add", held).returncode, 0)
            fd = os.open(f"/run/netns/{held}", os.O_RDONLY | os.O_CLOEXEC)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # what a live run holds on its namespaces
                proc = lib.run_zcbench(BINARY, "--bytes", "1M", "--sizes", "64K", "--repeat",
                                       "1", "--paths", "copy", "--transport", "veth")
            finally:
                os.close(fd)
            self.assertEqual(proc.returncode, 0, proc.stderr)
            self.assertIn(f"removing network namespace {dead} left by an earlier run",
                          proc.stderr)
            self.assertNotIn(dead, netns_names())
            self.assertIn(held, netns_names())
        finally:
            for name in (dead, held):
                ip("netns", "del", name)


class Interrupt(unittest.TestCase):
    def interrupt_mid_run(self, extra_args, signal_it):
        """Starts a long run, waits for its source file, calls signal_it(proc), and checks that
        it ended by the first signal it got with its source file and namespaces removed."""
        work = tempfile.mkdtemp(dir=tmpdir())
        before = netns_names()
        proc = subprocess.Popen(
            [BINARY, "--bytes", "64M", "--sizes", "4K", "--paths", "copy", "--repeat", "1000",
             "--transport", "veth,loopback", "--tmpdir", work] + extra_args,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for _ in range(200):  # bounded: 200 x 50 ms for the source file to exist
                if any(os.listdir(os.path.join(work, d)) for d in os.listdir(work)):
                    break
                time.sleep(0.05)
            time.sleep(0.5)
            first = signal_it(proc)
            proc.wait(timeout=20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertEqual(proc.returncode, -first, proc.stderr.read())
        self.assertEqual(os.listdir(work), [])
        self.assertLessEqual(netns_names(), before)

    def test_sigint_mid_run_removes_the_temporary_source(self):
        def sigint(proc):
            proc.send_signal(signal.SIGINT)
            return signal.SIGINT
        self.interrupt_mid_run([], sigint)

    def test_a_second_sigterm_during_cleanup_does_not_cut_it_short(self):
        # --test-slow-cleanup: the handler sleeps 1 s before cleaning up; the signals sent
        # meanwhile (timeout(1) and process-group kills send more than one) must do nothing.
        def sigterm_then_more(proc):
            proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
                if proc.poll() is None:
                    proc.send_signal(sig)
            return signal.SIGTERM
        self.interrupt_mid_run(["--test-slow-cleanup"], sigterm_then_more)


class StaleSource(unittest.TestCase):
    def test_a_source_left_by_a_killed_run_is_removed_and_one_in_use_kept(self):
        work = tempfile.mkdtemp(dir=tmpdir())
        old = time.time() - 3600

        def fake_run_dir(name, mtime, files=("source.bin",)):
            path = os.path.join(work, name)
            os.mkdir(path)
            for file in files:
                with open(os.path.join(path, file), "wb") as f:
                    f.write(b"x" * 4096)
            os.utime(path, (mtime, mtime))
            return path

        tls_files = ("key.pem", "cert.pem")
        dead = fake_run_dir("zcbench-Dead01", old)        # nobody holds it, an hour old
        dead_tls = fake_run_dir("zcbench-tls-Dead02", old, tls_files)  # TLS key, ditto
        held = fake_run_dir("zcbench-Held01", old)        # a live run's lock
        held_tls = fake_run_dir("zcbench-tls-Held02", old, tls_files)
        young = fake_run_dir("zcbench-Young1", time.time())  # just made: maybe not locked yet
        young_tls = fake_run_dir("zcbench-tls-Young2", time.time(), tls_files)
        other = fake_run_dir("zcbench-other-name", old)   # not a name zcbench makes
        other_tls = fake_run_dir("zcbench-tls-other-name", old, tls_files)
        fds = [os.open(held, os.O_RDONLY), os.open(held_tls, os.O_RDONLY)]
        try:
            for fd in fds:
                fcntl.flock(fd, fcntl.LOCK_EX)
            proc = lib.run_zcbench(BINARY, "--bytes", "1M", "--sizes", "64K", "--repeat", "1",
                                   "--paths", "sendfile", "--transport", "loopback",
                                   "--tmpdir", work)
        finally:
            for fd in fds:
                os.close(fd)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        for gone in (dead, dead_tls):
            self.assertFalse(os.path.exists(gone), gone)
            self.assertIn(f"removed {gone} left by an earlier run", proc.stderr)
        for kept in (held, young, other):
            self.assertTrue(os.path.exists(os.path.join(kept, "source.bin")), kept)
        for kept in (held_tls, young_tls, other_tls):
            self.assertTrue(os.path.exists(os.path.join(kept, "key.pem")), kept)
        self.assertEqual(sorted(os.listdir(work)), sorted(
            os.path.basename(p) for p in (held, young, other, held_tls, young_tls, other_tls)))


if __name__ == "__main__":
    lib.main("zcbench_report_test")
