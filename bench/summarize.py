#!/usr/bin/env python3
"""Writes bench/results/summary.md from one `make bench` run's outputs.

Usage: summarize.py RESULTS_DIR
Reads RESULTS_DIR/zcbench*.json (zcbench --json: transmit paths, and the paths that
transform the stream: TLS, gzip, zstd), RESULTS_DIR/openssl_speed.txt ('CIPHER NNNk'
lines), RESULTS_DIR/server_compare.md
(bench/server_compare.sh) and RESULTS_DIR/*_bench.json (Google Benchmark), whichever
exist, and prints the Markdown summary to stdout. A section whose input is missing says
so instead of leaving an empty table.
"""

import glob
import json
import os
import sys

RATIO_TARGET = 0.95


def fmt(x, digits=2):
    return "n/a" if x is None else f"{x:.{digits}f}"


def size_label(n):
    for unit, div in (("M", 1 << 20), ("K", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def congestion_label(settings, host):
    """The trials' TCP congestion control, and the system's default when they chose another."""
    system = host.get("tcp_congestion", "?")
    chosen = settings.get("congestion")
    if not chosen:
        return f"{system} (the system default)"
    return chosen if chosen == system else f"{chosen} (chosen; the system default is {system})"


def ratio(x):
    return "n/a" if x is None else f"{x:.2f}x"


def wire_per_byte(r):
    return r.get("bytes_wire", r["bytes"]) / r["bytes"] if r["bytes"] else None


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def headline_section(docs):
    """The acceptance figures in one place: copies, and every pagewire path vs its raw loop."""
    out = ["## Headline: copies and pagewire vs its raw loops", ""]
    records = [r for doc in docs for r in doc["records"]]
    if not records:
        return out + ["zcbench did not run.", ""]
    copies = [("copy", "copy baseline"), ("pw_splice_pipe", "pagewire splice_pipe")]
    out += ["| path | copied/B (min) | copied/B (max) | records |", "|---|---|---|---|"]
    for name, label in copies:
        vals = [r["copied_per_byte"] for r in records if r["path"] == name]
        out.append(f"| {label} | {fmt(min(vals)) if vals else 'n/a'} | "
                   f"{fmt(max(vals)) if vals else 'n/a'} | {len(vals)} |")
    out += ["", "Every pagewire path against its raw loop (the median over rounds of the path's "
            "GB/s over the raw loop's in the same round, the two run back to back; "
            f"target >= {RATIO_TARGET}x), "
            "per transport and message size:", ""]
    groups = {}
    for r in records:
        if r["path"].startswith("pw_") and r["raw"] != r["path"]:
            groups.setdefault((r["path"], r["raw"]), []).append(r)
    out += ["| pagewire path | raw loop | cells | min x raw | median x raw | max x raw | "
            "cells below target |", "|---|---|---|---|---|---|---|"]
    for (path, raw), rs in groups.items():
        ratios = sorted(r["ratio_to_raw"] for r in rs if r["ratio_to_raw"] is not None)
        below = [f"{r['transport']} {size_label(r['message_size'])}" for r in rs
                 if r["ratio_to_raw"] is not None and r["ratio_to_raw"] < RATIO_TARGET]
        if ratios:
            mid = len(ratios) // 2
            med = ratios[mid] if len(ratios) % 2 else (ratios[mid - 1] + ratios[mid]) / 2
            out.append(f"| {path} | {raw} | {len(ratios)} | {fmt(ratios[0])}x | {fmt(med)}x | "
                       f"{fmt(ratios[-1])}x | {', '.join(below) or 'none'} |")
        else:
            out.append(f"| {path} | {raw} | 0 | n/a | n/a | n/a | raw loop did not run |")
    return out + [""]


def paired(r, raw):
    """A path's trial over its raw loop's trial of the same round: zcbench runs a raw loop
    next to the paths compared with it, so the two of a pair ran back to back (ratio_to_raw is
    the median of these), and their spread tells a steady shortfall from scheduling noise."""
    raw_gbps = {t.get("round", i): t["gb_per_s"] for i, t in enumerate(raw.get("trials", []))}
    pairs = []
    for i, a in enumerate(r.get("trials", [])):
        b = raw_gbps.get(a.get("round", i), 0)
        if b > 0:
            pairs.append(a["gb_per_s"] / b)
    if not pairs:
        return ""
    met = sum(1 for x in pairs if x >= RATIO_TARGET)
    return (f"; trial pairs {min(pairs):.2f}-{max(pairs):.2f}x, {met} of {len(pairs)} at "
            f"{RATIO_TARGET}x or more")


def zcbench_section(paths):
    out = []
    if not paths:
        return ["## Zero-copy transmit paths (zcbench)", "", "zcbench did not run.", ""]
    for path in paths:
        doc = load(path)
        s, h = doc["settings"], doc["host"]
        snd, rcv = s.get("sender_cpu", -1), s.get("receiver_cpu", -1)
        pin = ("threads unpinned" if snd < 0 else
               f"sender and receiver threads pinned to CPU {snd}" if snd == rcv else
               f"sender thread on CPU {snd}, receiver on CPU {rcv}")
        out += [f"## zcbench, `{os.path.basename(path)}`", "",
                f"{s['bytes']} bytes per trial, median of {s['repeat']}, recv={s['recv']}, "
                f"{pin}, "
                f"window {size_label(s.get('window', 64 << 20))}, "
                f"TCP congestion control {congestion_label(s, h)}, "
                f"source={s.get('source', 'random')} (auto: text-like bytes for the compressing "
                "paths, pseudo-random for the rest; decoding receivers recv into a buffer); "
                f"kernel {h['kernel']}, {h['cores']} cores, {h['date']}. "
                "x copy and x raw: medians over rounds of the path's GB/s over the other's "
                "in the same round. "
                "CPU is seconds per GB (10^9 bytes); copied/B is user-space bytes copied per "
                "byte sent.", ""]
        header = ("| transport | size | path | source | GB/s | sender CPU s/GB | "
                  "receiver CPU s/GB | syscalls/GB | copied/B | wire/B | x copy | x raw (raw loop) |")
        out += [header, "|" + "---|" * 12]
        misses = []
        by_cell = {(r["path"], r["transport"], r["message_size"]): r for r in doc["records"]}
        for r in doc["records"]:
            raw_note = "" if r["raw"] == r["path"] else f" ({r['raw']})"
            out.append(f"| {r['transport']} | {size_label(r['message_size'])} | {r['path']} | "
                       f"{r.get('source', 'random')} | "
                       f"{fmt(r['gb_per_s'])} | {fmt(r['sender_cpu_s_per_gb'], 3)} | "
                       f"{fmt(r['receiver_cpu_s_per_gb'], 3)} | {r['syscalls_per_gb']:.0f} | "
                       f"{fmt(r['copied_per_byte'])} | {fmt(wire_per_byte(r), 3)} | "
                       f"{ratio(r['ratio_to_copy'])} | {ratio(r['ratio_to_raw'])}{raw_note} |")
            if (r["path"].startswith("pw_") and r["raw"] != r["path"]
                    and r["ratio_to_raw"] is not None and r["ratio_to_raw"] < RATIO_TARGET):
                # The receiver's calls per GB (recv or splice) tell the scheduling state each
                # trial ran in (apps/zcbench/README.md): with both threads on one core, tens
                # of KB per call when the sender runs ahead, ~10 KB when the two take turns.
                raw = by_cell.get((r["raw"], r["transport"], r["message_size"]))
                calls = ("" if raw is None else
                         f" (receiver calls/GB {r['receiver_syscalls_per_gb'] / 1e3:.0f}k "
                         f"vs {raw['receiver_syscalls_per_gb'] / 1e3:.0f}k{paired(r, raw)})")
                misses.append(f"{r['path']} at {size_label(r['message_size'])} over "
                              f"{r['transport']}: {r['ratio_to_raw']:.2f}x {r['raw']}{calls}")
        out.append("")
        splice = [r["copied_per_byte"] for r in doc["records"] if r["path"] == "pw_splice_pipe"]
        base = [r["copied_per_byte"] for r in doc["records"] if r["path"] == "copy"]
        if splice and base:
            out.append(f"- splice_pipe copied/B: max {max(splice):.2f}; copy baseline: "
                       f"min {min(base):.2f}.")
        if misses:
            out.append(f"- Below {RATIO_TARGET}x of the raw loop: " + "; ".join(misses) + ".")
        elif any(r["path"].startswith("pw_") for r in doc["records"]):
            out.append(f"- Every pagewire path is at or above {RATIO_TARGET}x of its raw loop.")
        if doc.get("skipped"):
            out.append("- Skipped: " + "; ".join(str(x) for x in doc["skipped"]) + ".")
        if doc.get("errors"):
            out.append("- Errors: " + "; ".join(str(x) for x in doc["errors"]) + ".")
        out.append("")
    return out


def server_section(path):
    title = ("## Static file server: pagewire vs nginx vs the Asio baseline "
             "(wrk and discard_load, loopback)")
    if not os.path.exists(path):
        return [title, "", "The server comparison did not run.", ""]
    with open(path, encoding="utf-8") as f:
        return [title, "", f.read().strip(), ""]


TLS_CIPHER = {"aes128gcm": "aes-128-gcm", "aes256gcm": "aes-256-gcm",
              "chacha20": "chacha20-poly1305"}


def openssl_speeds(results):
    """{cipher: GB/s} from openssl_speed.txt lines 'CIPHER 1234.56k' (k = 1000 bytes/s)."""
    speeds = {}
    path = os.path.join(results, "openssl_speed.txt")
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in f:
                fields = line.split()
                if len(fields) == 2 and fields[1].endswith("k"):
                    speeds[fields[0]] = float(fields[1][:-1]) * 1000 / 1e9
    return speeds


def filters_section(results):
    title = "## TLS against the cipher's limit (zcbench filter paths vs openssl speed)"
    paths = sorted(glob.glob(os.path.join(results, "zcbench_filters*.json")))
    speeds = openssl_speeds(results)
    if not paths:
        return [title, "", "zcbench's filter paths did not run.", ""]
    docs = [load(p) for p in paths]
    if not speeds:
        return [title, "", "openssl speed did not run.", ""]
    out = [title, "", "GB/s of application bytes over loopback, decoded by an OpenSSL client in "
           "the receiving thread; openssl speed is one core encrypting 16 KiB blocks with "
           "nothing else to do (`openssl speed -evp CIPHER -bytes 16384`), user CPU only.", "",
           "`x openssl speed (sender user CPU)` is the issue's measure: the cipher's s/GB over "
           "the sending thread's user CPU s/GB, the part of the sender that encrypts and frames "
           "records (the system part, sending on the socket, is the plain path's too). "
           "`GB per sender CPU-s` (1 / user+system sender CPU s/GB) is what the sending side "
           "would do with a core to itself. Both ends share the cores of this machine (one core "
           "when zcbench pins them, see each run's settings; the receiver decrypts too), so the "
           "GB/s column cannot reach one core's cipher speed. "
           "Rows come from the window zcbench ran with (`settings.window`).", "",
           "| path | size | window | GB/s | sender user CPU s/GB | x openssl speed (sender user "
           "CPU) | GB per sender CPU-s | x openssl speed (sender CPU) | openssl speed GB/s | "
           "wire/B |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for doc in docs:
        window = size_label(doc["settings"].get("window", 64 << 20))
        for r in doc["records"]:
            suffix = r["path"].rsplit("_", 1)[-1]
            if "tls" not in r["path"] or TLS_CIPHER.get(suffix) not in speeds:
                continue
            limit = speeds[TLS_CIPHER[suffix]]
            per_cpu = 1 / r["sender_cpu_s_per_gb"] if r["sender_cpu_s_per_gb"] > 0 else None
            user = r.get("sender_user_cpu_s_per_gb", 0)
            per_user = 1 / user if user > 0 else None
            out.append(f"| {r['path']} | {size_label(r['message_size'])} | {window} | "
                       f"{fmt(r['gb_per_s'])} | {fmt(user)} | "
                       f"{ratio(per_user / limit if per_user else None)} | {fmt(per_cpu)} | "
                       f"{ratio(per_cpu / limit if per_cpu else None)} | {fmt(limit)} | "
                       f"{fmt(wire_per_byte(r), 4)} |")
    return out + [""]


def gbench_section(paths):
    out = ["## Microbenchmarks (Google Benchmark, release build)", ""]
    if not paths:
        return out + ["No Google Benchmark results.", ""]
    out += ["| suite | benchmark | time | unit | counters |", "|---|---|---|---|---|"]
    nop = {}
    for path in sorted(paths):
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        suite = os.path.basename(path).removesuffix(".json")
        for b in doc.get("benchmarks", []):
            if b.get("run_type") == "aggregate" and b.get("aggregate_name") != "median":
                continue
            name = b["name"]
            if b.get("error_occurred"):  # SkipWithError: say why instead of a 0
                out.append(f"| {suite} | {name} | skipped: {b.get('error_message', '')} | | |")
                continue
            counters = {k: v for k, v in b.items() if k not in {
                "name", "family_index", "per_family_instance_index", "run_name", "run_type",
                "repetitions", "repetition_index", "threads", "iterations", "real_time",
                "cpu_time", "time_unit", "aggregate_name", "aggregate_unit", "label",
                "error_occurred", "error_message"} and isinstance(v, (int, float))}
            extra = ", ".join(f"{k}={v:.4g}" for k, v in counters.items())
            out.append(f"| {suite} | {name} | {b['real_time']:.1f} | {b['time_unit']} | {extra} |")
            for key in ("BM_RawLiburingNop", "BM_PagewireNop"):
                if name.split("_median")[0] == key:
                    nop[key] = b["real_time"]
    out.append("")
    if len(nop) == 2:
        out.append(f"- NOP round trip: pagewire {nop['BM_PagewireNop']:.0f} ns vs raw liburing "
                   f"{nop['BM_RawLiburingNop']:.0f} ns = "
                   f"{nop['BM_PagewireNop'] / nop['BM_RawLiburingNop']:.2f}x (target 1.25x).")
        out.append("")
    return out


def minutes(seconds):
    return f"{seconds // 60}m{seconds % 60:02d}s"


def timing_lines(path):
    """bench/run.sh's phases ("NAME SECONDS" lines, "total" last), against the 15-minute budget."""
    if not os.path.exists(path):
        return ["Time: not recorded for this run.", ""]
    phases, total = [], None
    with open(path, encoding="utf-8") as f:
        for line in f:
            name, _, seconds = line.strip().rpartition(" ")
            if not name or not seconds.isdigit():
                continue
            if name == "total":
                total = int(seconds)
            else:
                phases.append(f"{name} {minutes(int(seconds))}")
    head = (f"Time: {minutes(total)} in all (budget 15m00s, build included)" if total is not None
            else "Time: the run did not finish")
    return [head + ": " + "; ".join(phases) + ".", ""]


def main(results):
    lines = ["# pagewire benchmark summary", "",
             "Produced by `make bench` (bench/run.sh) in one run on this machine.", ""]
    loadavg = os.path.join(results, "loadavg.txt")
    if os.path.exists(loadavg):
        with open(loadavg, encoding="utf-8") as f:
            lines += ["Load average (1, 5, 15 min) at " +
                      "; ".join(line.strip() for line in f if line.strip()) +
                      ": other work on the machine shares its cores and skews every figure.", ""]
    else:
        lines += ["Load average: not recorded for this run.", ""]
    lines += timing_lines(os.path.join(results, "timing.txt"))
    zc = sorted(glob.glob(os.path.join(results, "zcbench*.json")))
    lines += headline_section([load(p) for p in zc])
    lines += zcbench_section(zc)
    lines += filters_section(results)
    lines += server_section(os.path.join(results, "server_compare.md"))
    lines += gbench_section(glob.glob(os.path.join(results, "*_bench.json")))
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
