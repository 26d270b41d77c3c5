#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Summarise bench/run.sh's runs.csv: medians per point, printed as Markdown
tables (throughput, zero-copy, latency), and written as results.csv.

usage: report.py [--meta META.txt] [--csv RESULTS.csv] RUNS.csv
Standard library only."""

import argparse
import csv
import statistics
import sys

SERVERS = ["corosync", "cpgd"]  # column order
LIBS = ["c", "ours"]
LIB_NAME = {"c": "C", "ours": "ours"}


def load(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def fnum(s):
    return float(s) if s not in (None, "") else None


def summarise(rows):
    """{(server, lib, test, size): dict} with medians (or status FAIL)."""
    groups = {}
    for r in rows:
        key = (r["server"], r["lib"], r["test"], int(r["size"]))
        groups.setdefault(key, []).append(r)
    out = {}
    for key, rs in groups.items():
        ok = [r for r in rs if r["status"] == "ok"]
        failed = len(rs) - len(ok)
        res = {"runs": len(ok), "failed": failed}
        if failed or not ok:
            res["status"] = "FAIL"
        else:
            res["status"] = "ok"
        if ok:
            if key[2] == "latency":
                res["p50_us"] = statistics.median(fnum(r["p50_us"]) for r in ok)
                res["p99_us"] = statistics.median(fnum(r["p99_us"]) for r in ok)
                res["max_us"] = max(fnum(r["max_us"]) for r in ok)
                res["mean_us"] = statistics.median(fnum(r["mean_us"]) for r in ok)
            else:
                mps = [fnum(r["msgs_per_s"]) for r in ok]
                res["msgs_per_s"] = statistics.median(mps)
                res["MB_per_s"] = statistics.median(fnum(r["MB_per_s"]) for r in ok)
                res["min_msgs_per_s"] = min(mps)
                res["max_msgs_per_s"] = max(mps)
                res["try_again"] = statistics.median(fnum(r["try_again"]) for r in ok)
                for k in ("cpu_us_per_msg", "srv_cpu_us_per_msg"):
                    v = [fnum(r.get(k)) for r in ok if fnum(r.get(k)) is not None]
                    res[k] = statistics.median(v) if v else None
        res["by_run"] = {int(r["run"]): r for r in ok}
        out[key] = res
    return out


def paired(res, server, test, size, field):
    """Median over runs of ours/C, each from two runs made back to back
    (the same repetition), so slow changes in the machine's load cancel.
    None when no repetition has both."""
    c = res.get((server, "c", test, size))
    o = res.get((server, "ours", test, size))
    if not c or not o:
        return None
    ratios = []
    for run, rc in c["by_run"].items():
        ro = o["by_run"].get(run)
        if ro is None:
            continue
        a, b = fnum(ro.get(field)), fnum(rc.get(field))
        if a is not None and b:
            ratios.append(a / b)
    return statistics.median(ratios) if ratios else None


def fmt_ratio(v):
    return "-" if v is None else f"{v:.2f}"


def fmt_int(v):
    return "-" if v is None else f"{v:,.0f}"


def fmt_mb(v):
    if v is None:
        return "-"
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def fmt_cpu(v):
    if v is None:
        return "-"
    return f"{v:.2f}" if v < 10 else (f"{v:.1f}" if v < 100 else f"{v:,.0f}")


def fmt_us(v):
    return "-" if v is None else f"{v:,.0f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}"


def cell(res, key, fmt):
    r = res.get(key)
    if r is None:
        return "-", None
    if r["status"] == "FAIL":
        v = r.get(fmt[1])
        return ("FAIL" if v is None else fmt[0](v) + " (FAIL)"), None
    v = r.get(fmt[1])
    return fmt[0](v), v


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta")
    ap.add_argument("--csv")
    ap.add_argument("runs")
    a = ap.parse_args()
    rows = load(a.runs)
    res = summarise(rows)
    servers = [s for s in SERVERS if any(k[0] == s for k in res)]
    sizes = sorted({k[3] for k in res if k[2] == "mcast"})
    zc_sizes = sorted({k[3] for k in res if k[2] == "zc"})
    lat_sizes = sorted({k[3] for k in res if k[2] == "latency"})
    out = []
    out.append("# libcpg benchmark: corosync's C library vs ours")
    out.append("")
    if a.meta:
        with open(a.meta) as f:
            for line in f:
                out.append("- " + line.rstrip())
        out.append("")

    def sname(s):
        return "corosync" if s == "corosync" else "cpgd"

    # ---- throughput
    out.append("## Throughput (cpg_mcast_joined, CPG_TYPE_AGREED, one sender; medians)")
    out.append("")
    hdr = ["size (B)"]
    for s in servers:
        p = sname(s) + ": "
        hdr += [p + "C msgs/s", p + "ours msgs/s", p + "ours/C", p + "C MB/s", p + "ours MB/s"]
    both = "corosync" in servers and "cpgd" in servers
    if both:
        hdr += ["ours+cpgd / C+corosync"]
    trs = []
    for size in sizes:
        row = [f"{size:,}"]
        for s in servers:
            c_m, c_v = cell(res, (s, "c", "mcast", size), (fmt_int, "msgs_per_s"))
            o_m, o_v = cell(res, (s, "ours", "mcast", size), (fmt_int, "msgs_per_s"))
            c_b, _ = cell(res, (s, "c", "mcast", size), (fmt_mb, "MB_per_s"))
            o_b, _ = cell(res, (s, "ours", "mcast", size), (fmt_mb, "MB_per_s"))
            row += [c_m, o_m, fmt_ratio(paired(res, s, "mcast", size, "msgs_per_s")), c_b, o_b]
        if both:
            _, base = cell(res, ("corosync", "c", "mcast", size), (fmt_int, "msgs_per_s"))
            _, new = cell(res, ("cpgd", "ours", "mcast", size), (fmt_int, "msgs_per_s"))
            row.append(ratio(new, base))
        trs.append(row)
    out.append(table(hdr, trs))
    out.append("")

    # ---- zero copy
    if zc_sizes:
        out.append("## Zero-copy (cpg_zcb_alloc + cpg_zcb_mcast_joined) vs cpg_mcast_joined, msgs/s")
        out.append("")
        hdr = ["server", "size (B)", "C mcast", "C zc", "C zc/mcast", "ours mcast", "ours zc",
               "ours zc/mcast", "zc ours/C"]
        zrs = []
        for s in servers:
            for size in zc_sizes:
                cm, cmv = cell(res, (s, "c", "mcast", size), (fmt_int, "msgs_per_s"))
                cz, czv = cell(res, (s, "c", "zc", size), (fmt_int, "msgs_per_s"))
                om, omv = cell(res, (s, "ours", "mcast", size), (fmt_int, "msgs_per_s"))
                oz, ozv = cell(res, (s, "ours", "zc", size), (fmt_int, "msgs_per_s"))
                zrs.append([sname(s), f"{size:,}", cm, cz, ratio(czv, cmv), om, oz, ratio(ozv, omv),
                            fmt_ratio(paired(res, s, "zc", size, "msgs_per_s"))])
        out.append(table(hdr, zrs))
        out.append("")

    # ---- CPU per message
    out.append("## CPU time per message (same throughput runs; medians), microseconds; "
               "ratio ours/C: lower is better")
    out.append("")
    hdr = ["size (B)"]
    for s in servers:
        p = sname(s) + ": "
        hdr += [p + "C client", p + "ours client", p + "ours/C", p + "server (C runs)", p + "server (ours runs)",
                p + "ours/C"]
    crs = []
    for size in sizes:
        row = [f"{size:,}"]
        for s in servers:
            cc, _ = cell(res, (s, "c", "mcast", size), (fmt_cpu, "cpu_us_per_msg"))
            oc, _ = cell(res, (s, "ours", "mcast", size), (fmt_cpu, "cpu_us_per_msg"))
            cs, _ = cell(res, (s, "c", "mcast", size), (fmt_cpu, "srv_cpu_us_per_msg"))
            os_, _ = cell(res, (s, "ours", "mcast", size), (fmt_cpu, "srv_cpu_us_per_msg"))
            row += [cc, oc, fmt_ratio(paired(res, s, "mcast", size, "cpu_us_per_msg")), cs, os_,
                    fmt_ratio(paired(res, s, "mcast", size, "srv_cpu_us_per_msg"))]
        crs.append(row)
    out.append(table(hdr, crs))
    out.append("")

    # ---- latency
    if lat_sizes:
        out.append("## Round-trip latency (ping-pong between two processes), microseconds; "
                   "ratio ours/C: lower is better")
        out.append("")
        hdr = ["size (B)"]
        for s in servers:
            p = sname(s) + ": "
            hdr += [p + "C p50", p + "ours p50", p + "ours/C", p + "C p99", p + "ours p99", p + "ours/C",
                    p + "C max", p + "ours max"]
        lrs = []
        for size in lat_sizes:
            row = [f"{size:,}"]
            for s in servers:
                vals = {}
                for lib in LIBS:
                    for k in ("p50_us", "p99_us", "max_us"):
                        vals[lib, k] = cell(res, (s, lib, "latency", size), (fmt_us, k))
                row += [vals["c", "p50_us"][0], vals["ours", "p50_us"][0],
                        fmt_ratio(paired(res, s, "latency", size, "p50_us")),
                        vals["c", "p99_us"][0], vals["ours", "p99_us"][0],
                        fmt_ratio(paired(res, s, "latency", size, "p99_us")),
                        vals["c", "max_us"][0], vals["ours", "max_us"][0]]
            lrs.append(row)
        out.append(table(hdr, lrs))
        out.append("")
    out.append("Medians over the runs. Every ours/C is the median of per-repetition ratios (the C and "
               "our run of one repetition ran back to back), which cancels most of the drift of a busy "
               "machine; throughput ours/C > 1: ours is faster. CPU per message: the sending process's "
               "user + system time, and the server's (all threads), divided by the messages. Latency: p50 "
               "and p99 are medians of the runs' values; max is the largest over all runs. FAIL: at least "
               "one run of that point failed (see Problems); '-': not measured.")
    print("\n".join(out))

    if a.csv:
        cols = ["server", "lib", "test", "size", "status", "runs", "failed", "msgs_per_s", "MB_per_s",
                "min_msgs_per_s", "max_msgs_per_s", "try_again", "cpu_us_per_msg", "srv_cpu_us_per_msg",
                "p50_us", "p99_us", "max_us", "mean_us", "paired_ratio_ours_c"]
        with open(a.csv, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(cols)
            for key in sorted(res, key=lambda k: (SERVERS.index(k[0]) if k[0] in SERVERS else 9, k[2], k[3],
                                                  k[1])):
                r = dict(res[key])
                if key[1] == "ours":
                    field = "p50_us" if key[2] == "latency" else "msgs_per_s"
                    r["paired_ratio_ours_c"] = paired(res, key[0], key[2], key[3], field)
                vals = list(key) + [r.get(c) for c in cols[4:]]
                w.writerow(["" if v is None else (f"{v:.2f}" if isinstance(v, float) else v) for v in vals])
    return 0


if __name__ == "__main__":
    sys.exit(main())
