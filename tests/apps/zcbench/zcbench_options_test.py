"""zcbench's command line: a bad option gives one line on stderr and exit status 2,
before anything runs; --help and --list-paths print and exit 0.

Usage: zcbench_options_test.py ZCBENCH_BINARY"""

import sys
import unittest

import zcbench_testlib as lib

BINARY = sys.argv[1]


class BadOptions(unittest.TestCase):
    def check_rejected(self, args, mentions):
        proc = lib.run_zcbench(BINARY, *args, timeout=10)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertEqual(proc.stdout, "")
        lines = proc.stderr.splitlines()
        self.assertEqual(len(lines), 1, proc.stderr)
        self.assertTrue(lines[0].startswith("zcbench: "), lines[0])
        self.assertIn(mentions, lines[0])

    def test_unknown_option(self):
        self.check_rejected(["--frobnicate"], "--frobnicate")

    def test_bytes_not_a_count(self):
        self.check_rejected(["--bytes", "12Q"], "--bytes")
        self.check_rejected(["--bytes=0"], "--bytes")
        self.check_rejected(["--bytes", "-5"], "--bytes")
        self.check_rejected(["--bytes", "99999999999G"], "--bytes")

    def test_sizes_malformed_or_too_large(self):
        self.check_rejected(["--sizes", "4K,,1M"], "--sizes")
        self.check_rejected(["--sizes", "2G"], "--sizes")

    def test_sizes_larger_than_bytes(self):
        self.check_rejected(["--bytes", "1M", "--sizes", "64K,16M"], "--sizes")
        self.check_rejected(["--sizes=16M", "--bytes=1M"], "--sizes")
        # The default sizes above --bytes are left out; with none left it is an error.
        self.check_rejected(["--bytes", "1000"], "--bytes")

    def test_timeout_out_of_range(self):
        for bad in ("0", "-1", "1.5", "2x", "86401"):
            self.check_rejected(["--timeout", bad], "--timeout")

    def test_unwritable_outputs_are_found_before_anything_runs(self):
        run = ["--bytes", "64K", "--sizes", "64K", "--paths", "copy", "--transport", "loopback",
               "--repeat", "1"]
        missing = "/nonexistent-zcbench-dir/out"
        self.check_rejected(run + ["--json", missing + ".json"], "--json")
        self.check_rejected(run + ["--svg", missing + ".svg"], "--svg")

    def test_unknown_path(self):
        self.check_rejected(["--paths", "copy,teleport"], "teleport")

    def test_unknown_transport(self):
        self.check_rejected(["--transport", "infiniband"], "infiniband")

    def test_unknown_receiver(self):
        self.check_rejected(["--recv", "mmap"], "mmap")

    def test_unknown_source(self):
        self.check_rejected(["--source", "lorem"], "--source")

    def test_repeat_out_of_range(self):
        self.check_rejected(["--repeat", "0"], "--repeat")
        self.check_rejected(["--repeat", "3x"], "--repeat")

    def test_window_not_whole_pages_or_too_large(self):
        self.check_rejected(["--window", "1000"], "--window")
        self.check_rejected(["--window", "2G"], "--window")
        self.check_rejected(["--window", "0"], "--window")

    def test_pin_needs_two_cpu_numbers(self):
        for bad in ("1", "a,b", "-1,0", "0,", "0,1,2", "0,99999"):
            self.check_rejected(["--pin", bad], "--pin")

    def test_congestion_control_the_kernel_lacks(self):
        self.check_rejected(["--congestion", "no-such-algorithm"], "tcp_available_congestion_control")
        self.check_rejected(["--congestion="], "--congestion")

    def test_option_missing_its_value(self):
        self.check_rejected(["--json"], "--json")
        self.check_rejected(["--bytes"], "--bytes")


class Informational(unittest.TestCase):
    def test_help_prints_usage_and_exits_zero(self):
        proc = lib.run_zcbench(BINARY, "--help", timeout=10)
        self.assertEqual(proc.returncode, 0)
        for word in ("--bytes", "--sizes", "--paths", "--transport", "--recv", "--repeat",
                     "--window", "--timeout", "--pin", "--json", "--svg"):
            self.assertIn(word, proc.stdout)

    def test_list_paths_names_every_raw_loop(self):
        proc = lib.run_zcbench(BINARY, "--list-paths", timeout=10)
        self.assertEqual(proc.returncode, 0)
        names = [line.split()[0] for line in proc.stdout.splitlines()]
        self.assertEqual(names[:3], ["copy", "sendfile", "splice"])

    def test_list_paths_pairs_every_filter_path_with_its_raw_loop(self):
        proc = lib.run_zcbench(BINARY, "--list-paths", timeout=10)
        raw_of = {f[0]: f[1].removeprefix("raw=") for f in map(str.split, proc.stdout.splitlines())}
        for pw, raw in (("pw_tls_aes128gcm", "tls_raw_aes128gcm"),
                        ("pw_tls_aes256gcm", "tls_raw_aes256gcm"),
                        ("pw_tls_chacha20", "tls_raw_chacha20"), ("pw_gzip1", "gzip_raw1"),
                        ("pw_gzip6", "gzip_raw6"), ("pw_zstd1", "zstd_raw1"),
                        ("pw_zstd3", "zstd_raw3")):
            self.assertEqual(raw_of[pw], raw)
            self.assertEqual(raw_of[raw], raw)


if __name__ == "__main__":
    lib.main("zcbench_options_test")
