#!/usr/bin/env python3
# SPDX-License-Identifier: MIT OR Apache-2.0
"""Plot bench/run.sh's results.csv as an SVG: throughput (msgs/s and MB/s,
log scales) against message size (log scale), one line per library/server.

usage: plot.py RESULTS.csv OUT.svg
Standard library only."""

import csv
import math
import sys
from xml.sax.saxutils import escape

SERIES = [  # (server, lib, label, colour, dash)
    ("corosync", "c", "C libcpg + corosync", "#1f5fa8", ""),
    ("corosync", "ours", "ours + corosync", "#d1495b", ""),
    ("cpgd", "c", "C libcpg + cpgd", "#1f5fa8", "6,4"),
    ("cpgd", "ours", "ours + cpgd", "#d1495b", "6,4"),
]
MARKER = {"c": "circle", "ours": "square"}

W, H = 980, 470
PANEL_W, PANEL_H = 400, 320
TOP = 90
LEFTS = [80, 80 + PANEL_W + 90]


def human(n):
    for div, suf in ((1_000_000, "M"), (1000, "k")):
        if n >= div:
            v = n / div
            return (f"{v:g}" if v >= 10 or v == int(v) else f"{v:.1f}".rstrip("0").rstrip(".")) + suf
    return f"{n:g}"


def load(path):
    data = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["test"] != "mcast" or r["status"] != "ok":
                continue
            data.setdefault((r["server"], r["lib"]), []).append(
                (int(r["size"]), float(r["msgs_per_s"]), float(r["MB_per_s"])))
    for v in data.values():
        v.sort()
    return data


def panel(out, left, data, idx, title, ylabel, sizes):
    vals = [p[idx] for pts in data.values() for p in pts if p[idx] > 0]
    if not vals or not sizes:
        return
    ylo = math.floor(math.log10(min(vals)))
    yhi = math.ceil(math.log10(max(vals)))
    if yhi == ylo:
        yhi += 1
    xlo = math.log10(min(sizes)) - 0.15
    xhi = math.log10(max(sizes)) + 0.15

    def X(size):
        return left + (math.log10(size) - xlo) / (xhi - xlo) * PANEL_W

    def Y(v):
        return TOP + PANEL_H - (math.log10(v) - ylo) / (yhi - ylo) * PANEL_H

    out.append(f'<rect x="{left}" y="{TOP}" width="{PANEL_W}" height="{PANEL_H}" fill="#fff" stroke="#888"/>')
    out.append(f'<text x="{left + PANEL_W / 2}" y="{TOP - 12}" text-anchor="middle" font-size="15" '
               f'font-weight="bold">{escape(title)}</text>')
    # y grid: decades (labelled) and 2, 5 (minor)
    for d in range(ylo, yhi + 1):
        for m in (1, 2, 5):
            v = m * 10 ** d
            if v < 10 ** ylo or v > 10 ** yhi:
                continue
            y = Y(v)
            if m == 1:
                out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + PANEL_W}" y2="{y:.1f}" stroke="#ccc"/>')
                out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12">'
                           f'{human(v)}</text>')
            else:
                out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{left + PANEL_W}" y2="{y:.1f}" stroke="#eee"/>')
                out.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="9" '
                           f'fill="#888">{human(v)}</text>')
    # x ticks at the measured sizes
    for s in sizes:
        x = X(s)
        out.append(f'<line x1="{x:.1f}" y1="{TOP}" x2="{x:.1f}" y2="{TOP + PANEL_H}" stroke="#eee"/>')
        out.append(f'<text x="{x:.1f}" y="{TOP + PANEL_H + 16}" text-anchor="middle" font-size="12">'
                   f'{human(s)}</text>')
    out.append(f'<text x="{left + PANEL_W / 2}" y="{TOP + PANEL_H + 38}" text-anchor="middle" font-size="13">'
               f'message size (bytes, log scale)</text>')
    cy = TOP + PANEL_H / 2
    out.append(f'<text x="{left - 58}" y="{cy}" text-anchor="middle" font-size="13" '
               f'transform="rotate(-90 {left - 58} {cy})">{escape(ylabel)}</text>')
    for server, lib, _label, colour, dash in SERIES:
        pts = [(X(p[0]), Y(p[idx])) for p in data.get((server, lib), []) if p[idx] > 0]
        if not pts:
            continue
        d = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        da = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2"{da}/>')
        for x, y in pts:
            if MARKER[lib] == "circle":
                out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>')
            else:
                out.append(f'<rect x="{x - 3.5:.1f}" y="{y - 3.5:.1f}" width="7" height="7" fill="#fff" '
                           f'stroke="{colour}" stroke-width="1.5"/>')


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data = load(sys.argv[1])
    sizes = sorted({p[0] for pts in data.values() for p in pts})
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
           f'font-family="sans-serif">',
           f'<rect width="{W}" height="{H}" fill="#fafafa"/>',
           f'<text x="{W / 2}" y="24" text-anchor="middle" font-size="17" font-weight="bold">'
           f'libcpg throughput: cpg_mcast_joined, one sender, agreed order (median of runs)</text>']
    # legend
    present = [s for s in SERIES if (s[0], s[1]) in data]
    lx = 80
    for server, lib, label, colour, dash in present:
        da = f' stroke-dasharray="{dash}"' if dash else ""
        out.append(f'<line x1="{lx}" y1="48" x2="{lx + 30}" y2="48" stroke="{colour}" stroke-width="2"{da}/>')
        if MARKER[lib] == "circle":
            out.append(f'<circle cx="{lx + 15}" cy="48" r="3.5" fill="{colour}"/>')
        else:
            out.append(f'<rect x="{lx + 11.5}" y="44.5" width="7" height="7" fill="#fff" stroke="{colour}" '
                       f'stroke-width="1.5"/>')
        out.append(f'<text x="{lx + 36}" y="52" font-size="13">{escape(label)}</text>')
        lx += 46 + 7.2 * len(label)
    panel(out, LEFTS[0], data, 1, "messages per second", "msgs/s (log scale)", sizes)
    panel(out, LEFTS[1], data, 2, "megabytes per second", "MB/s (log scale)", sizes)
    out.append("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
