#!/usr/bin/env python3
"""Writes bench/results/summary.md from one `make bench` run's outputs.

Usage: summarize.py RESULTS_DIR
Reads RESULTS_DIR/zcbench*.json (zcbench --json), RESULTS_DIR/server_compare.md
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


def zcbench_section(paths):
    out = []
    if not paths:
        return ["## Zero-copy transmit paths (zcbench)", "", "zcbench did not run.", ""]
    for path in paths:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        s, h = doc["settings"], doc["host"]
        out += [f"## Zero-copy transmit paths (zcbench, `{os.path.basename(path)}`)", "",
                f"{s['bytes']} bytes per trial, median of {s['repeat']}, recv={s['recv']}; "
                f"kernel {h['kernel']}, {h['cores']} cores, {h['date']}. "
                "CPU is seconds per GB (10^9 bytes); copied/B is user-space bytes copied per "
                "byte sent.", ""]
        header = ("| transport | size | path | GB/s | sender CPU s/GB | receiver CPU s/GB | "
                  "syscalls/GB | copied/B | x copy | x raw (raw loop) |")
        out += [header, "|" + "---|" * 10]
        misses = []
        for r in doc["records"]:
            raw_note = "" if r["raw"] == r["path"] else f" ({r['raw']})"
            out.append(f"| {r['transport']} | {size_label(r['message_size'])} | {r['path']} | "
                       f"{fmt(r['gb_per_s'])} | {fmt(r['sender_cpu_s_per_gb'], 3)} | "
                       f"{fmt(r['receiver_cpu_s_per_gb'], 3)} | {r['syscalls_per_gb']:.0f} | "
                       f"{fmt(r['copied_per_byte'])} | {fmt(r['ratio_to_copy'])}x | "
                       f"{fmt(r['ratio_to_raw'])}x{raw_note} |")
            if (r["path"].startswith("pw_") and r["raw"] != r["path"]
                    and r["ratio_to_raw"] is not None and r["ratio_to_raw"] < RATIO_TARGET):
                misses.append(f"{r['path']} at {size_label(r['message_size'])} over "
                              f"{r['transport']}: {r['ratio_to_raw']:.2f}x {r['raw']}")
        out.append("")
        copies = {(r["path"], r["transport"], r["message_size"]): r["copied_per_byte"]
                  for r in doc["records"]}
        splice = [v for (p, _, _), v in copies.items() if p == "pw_splice_pipe"]
        base = [v for (p, _, _), v in copies.items() if p == "copy"]
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
    title = "## Static file server: pagewire vs nginx vs the Asio baseline (wrk, loopback)"
    if not os.path.exists(path):
        return [title, "", "The server comparison did not run.", ""]
    with open(path, encoding="utf-8") as f:
        return [title, "", f.read().strip(), ""]


def filters_section(results):
    title = "## Filter stacks: TLS, gzip, zstd (filters_bench, loopback)"
    path = os.path.join(results, "filters_bench.txt")
    if not os.path.exists(path):
        return [title, "", "filters_bench did not run.", ""]
    with open(path, encoding="utf-8") as f:
        rows = [line.split() for line in f if line.strip()]
    out = [title, "", "GB is 10^9 application bytes; wire/app is bytes on the wire per "
           "application byte; copied/byte counts user-space copies on both ends.", ""]
    header = ["path", "GB/s", "sender CPU s/GB", "receiver CPU s/GB", "wire/app", "copied/byte"]
    out += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    speed = os.path.join(results, "openssl_speed.txt")
    if os.path.exists(speed):
        with open(speed, encoding="utf-8") as f:
            fields = f.read().split()
        if fields:
            limit = float(fields[-1].rstrip("k")) * 1000 / 1e9
            out += ["", f"- `openssl speed -evp aes-128-gcm -bytes 16384`: {limit:.2f} GB/s "
                    "on one core (the cipher's limit)."]
            for r in rows[1:]:
                if r[0] == "pw_tls_aes128gcm":
                    out.append(f"- pw_tls_aes128gcm / openssl speed = {float(r[1]) / limit:.2f}x "
                               "(target 0.7x).")
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


def main(results):
    lines = ["# pagewire benchmark summary", "",
             "Produced by `make bench` (bench/run.sh) in one run on this machine.", ""]
    lines += zcbench_section(sorted(glob.glob(os.path.join(results, "zcbench*.json"))))
    lines += filters_section(results)
    lines += server_section(os.path.join(results, "server_compare.md"))
    lines += gbench_section(glob.glob(os.path.join(results, "*_bench.json")))
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
