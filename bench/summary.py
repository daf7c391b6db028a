#!/usr/bin/env python3
"""One table of every benchmark figure that has a goal, and a plot of them.

Reads what the benchmarks of `make bench` wrote to bench/results/ (each
keeps its own report; this reads them, it measures nothing), prints one
table of figure, measured value, goal and verdict, and writes it to
bench/results/summary.txt and, as a chart, to bench/results/summary.svg.

In the chart each figure is a bar of how far it is from its goal, on a log
scale: the measured value over the goal, or the goal over the value when
less is better, so that a bar right of the line meets its goal. A benchmark
that has not been run shows as "not run". The exit status is 0 whatever the
verdicts: a missed goal is a figure, not an error.
"""

import math
import os
import re
import sys
from dataclasses import dataclass
from html import escape

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


@dataclass
class Row:
    bench: str
    figure: str
    value: float
    unit: str
    op: str  # "<=", "<", ">=" or "=="
    goal: float

    @property
    def met(self):
        v, g = self.value, self.goal
        return {"<=": v <= g, "<": v < g, ">=": v >= g, "==": v == g}[self.op]

    @property
    def score(self):
        """How far the figure is from its goal: above 1 meets it."""
        v, g = self.value, self.goal
        if self.op == "==":
            return 1.0 if v == g else 0.5
        if v <= 0 or g <= 0:
            return 1.0 if self.met else 0.5
        return v / g if self.op == ">=" else g / v

    def shown(self, x):
        if self.unit == "x":
            return f"{x:.2f}x"
        if abs(x) >= 100 or x == int(x):
            return f"{x:,.0f} {self.unit}".strip()
        return f"{x:.3g} {self.unit}".strip()


def read(name):
    try:
        with open(os.path.join(RESULTS, name), encoding="utf-8") as f:
            return f.read()
    except OSError:
        return None


def num(pattern, text, group=1):
    m = re.search(pattern, text, re.MULTILINE)
    return float(m.group(group).replace(",", "")) if m else None


def startup():
    text = read("startup.txt")
    if text is None:
        return None
    rows = []
    m = re.search(r"^ratios \(.*?goal <= ([\d.]+)x.*?\): (.*)$", text, re.MULTILINE)
    if m:
        goal = float(m.group(1))
        for label, r in re.findall(r"([\w ]+?) ([\d.]+)x", m.group(2)):
            rows.append(Row("startup", f"run --rm true / wasmtime run, {label.strip()}", float(r), "x", "<=", goal))
    return rows


def daemon():
    text = read("daemon.txt")
    if text is None:
        return None
    rows = []
    for clients, goal in (("1 client", 1000), ("64 clients", 3300)):
        v = num(rf"^\s+{clients}:\s+([\d.]+)", text)
        if v is not None:
            rows.append(Row("daemon", f"containers/s, {clients}", v, "/s", ">=", goal))
    per = num(r"per container: ([\d.]+) MB", text)
    if per is not None:
        rows.append(Row("daemon", "RSS per idle container", per, "MB", "<", 1.0))
    ran = num(r"^density: (\d+) containers running", text)
    asked = num(r"\((\d+) asked;", text)
    if ran is not None:
        rows.append(Row("daemon", "idle containers in one daemon", ran, "", ">=", asked or ran))
    return rows


def registry():
    text = read("registry.txt")
    if text is None:
        return None
    goal = num(r"Goal: wrun <= ([\d.]+)x", text) or 1.0
    v = num(r"ratio wrun/skopeo: ([\d.]+)x", text)
    return [Row("registry", "cold pull / skopeo copy", v, "x", "<=", goal)] if v is not None else []


def ratio_lines(bench, text):
    """Lines such as `LABEL:   1.09x  (goal >= 1.0x: met)`."""
    rows = []
    for label, v, op, goal in re.findall(
        r"^\s*(?:ratio [\d/]+, req/s \()?(.+?)\)?:\s+([\d.]+)x\s+\(goal (>=|<=) ([\d.]+)x", text, re.MULTILINE
    ):
        rows.append(Row(bench, label.strip(), float(v), "x", op, float(goal)))
    return rows


def http():
    text = read("http.txt")
    return None if text is None else ratio_lines("http", text)


def fairness():
    text = read("fairness.txt")
    if text is None:
        return None
    m = re.search(r"^wrun .*?p50 .*?\(([\d.]+)x\), p99 .*?\(([\d.]+)x\).*goal <= ([\d.]+)x", text, re.MULTILINE)
    if not m:
        return []
    goal = float(m.group(3))
    rows = [
        Row("fairness", "server p50 beside spinners / alone", float(m.group(1)), "x", "<=", goal),
        Row("fairness", "server p99 beside spinners / alone", float(m.group(2)), "x", "<=", goal),
    ]
    return rows


def shim():
    text = read("shim.txt")
    if text is None:
        return None
    rows = []
    m = re.search(r"ratio ([\d.]+) \(goal <= ([\d.]+)\)", text)
    if m:
        rows.append(Row("shim", "ctr run --rm: shim / runc", float(m.group(1)), "x", "<=", float(m.group(2))))
    m = re.search(r"one pod of two containers: ([\d.]+) MB \(goal < ([\d.]+) MB", text)
    if m:
        rows.append(Row("shim", "shim RSS per pod", float(m.group(1)), "MB", "<", float(m.group(2))))
    return rows


def cluster():
    text = read("cluster.txt")
    if text is None:
        return None
    rows = []
    v = num(r"with the daemon's start:\s+p50 ([\d.]+) ms", text)
    if v is not None:
        rows.append(Row("cluster", "cluster start, p50", v, "ms", "<", 500))
    for pattern, label in (
        (r"one at a time, client side.*?p99 ([\d.]+)", "pod create to Ready, p99, one at a time"),
        (r"at once .*?client side: .*?p99 ([\d.]+)", "pod create to Ready, p99, 100 at once"),
        (r"beside \d+ pods, client side: .*?p99 ([\d.]+)", "pod create to Ready, p99, beside 1,000"),
    ):
        v = num(pattern, text)
        if v is not None:
            rows.append(Row("cluster", label, v, "ms", "<", 100))
    return rows


def workloads():
    text = read("workloads.txt")
    if text is None:
        return None
    rows = []
    for n, goal in (("100", 1), ("1000", 5)):
        v = num(rf"0 -> {n}:\n\s+last pod Ready \(pod watch\)\s+([\d.]+) s", text)
        if v is not None:
            rows.append(Row("workloads", f"scale an RC 0 -> {int(n):,}", v, "s", "<", goal))
    rows += ratio_lines("workloads", text)
    failed = num(r"goal: 0 failed requests: .*?\((\d+) in all\)", text)
    if failed is not None:
        rows.append(Row("workloads", "failed requests while scaling and rolling", failed, "", "==", 0))
    return rows


def dashboard():
    text = read("dashboard.txt")
    if text is None:
        return None
    rows = []
    v = num(r"^1\. first paint.*\n\s+p50 ([\d.]+) ms", text)
    if v is not None:
        rows.append(Row("dashboard", "first paint with 1,000 pods, p50", v, "ms", "<", 300))
    v = num(r"^2\. delay .*\n\s+p50 ([\d.]+) ms", text)
    if v is not None:
        rows.append(Row("dashboard", "change to page, p50", v, "ms", "<", 100))
    return rows


BENCHES = [
    ("startup", "bench/run.sh", startup),
    ("daemon", "bench/daemon.sh", daemon),
    ("registry", "bench/registry.sh", registry),
    ("http", "bench/http.sh", http),
    ("cluster", "bench/cluster.sh", cluster),
    ("workloads", "bench/workloads.sh", workloads),
    ("dashboard", "bench/dashboard.sh", dashboard),
    ("shim", "bench/shim.sh", shim),
    ("fairness", "bench/fairness.sh", fairness),
]


def table(rows, missing):
    width = max([len(r.figure) for r in rows] + [20])
    lines = [
        "wrun benchmark summary: every figure with a goal (bench/summary.py)",
        "",
        f"{'bench':<10} {'figure':<{width}} {'measured':>14}  {'goal':<14} verdict",
    ]
    for r in rows:
        goal = f"{r.op} {r.shown(r.goal)}"
        lines.append(
            f"{r.bench:<10} {r.figure:<{width}} {r.shown(r.value):>14}  {goal:<14} {'met' if r.met else 'NOT met'}"
        )
    met = sum(r.met for r in rows)
    lines += ["", f"{met} of {len(rows)} goals met."]
    if missing:
        lines.append("not run (no report in bench/results/): " + ", ".join(missing))
    return "\n".join(lines) + "\n"


def svg(rows):
    """A horizontal bar per figure: log2 of its score, the goal at 0."""
    label_w, plot_w, row_h, top = 430, 420, 22, 40
    height = top + row_h * len(rows) + 30
    span = max([abs(math.log2(max(r.score, 1e-9))) for r in rows] + [1.0])
    span = min(span, 12.0)
    zero = label_w + plot_w / 2
    scale = (plot_w / 2 - 10) / span
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_w + plot_w + 120}" height="{height}" '
        'font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="10" y="20" font-size="14" font-weight="bold">wrun against its goals '
        "(bar: how far from the goal, log scale; right of the line meets it)</text>",
        f'<line x1="{zero}" y1="{top - 8}" x2="{zero}" y2="{height - 24}" stroke="black"/>',
        f'<text x="{zero}" y="{height - 8}" text-anchor="middle">goal</text>',
    ]
    for i, r in enumerate(rows):
        y = top + i * row_h
        x = math.log2(max(r.score, 1e-9))
        x = max(-span, min(span, x))
        w = abs(x) * scale
        left = zero if x >= 0 else zero - w
        color = "#2e7d32" if r.met else "#c62828"
        out.append(f'<text x="10" y="{y + 15}">{escape(r.bench + ": " + r.figure)}</text>')
        out.append(f'<rect x="{left:.1f}" y="{y + 4}" width="{max(w, 1):.1f}" height="{row_h - 8}" fill="{color}"/>')
        goal = f"{r.op} {r.shown(r.goal)}"
        out.append(
            f'<text x="{label_w + plot_w + 5}" y="{y + 15}">{escape(r.shown(r.value))} ({escape(goal)})</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    rows, missing = [], []
    for name, script, extract in BENCHES:
        got = extract()
        if got is None:
            missing.append(f"{name} ({script})")
        else:
            rows += got
    text = table(rows, missing)
    sys.stdout.write(text)
    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "summary.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    if rows:
        with open(os.path.join(RESULTS, "summary.svg"), "w", encoding="utf-8") as f:
            f.write(svg(rows))
    print(f"written: {os.path.join(RESULTS, 'summary.txt')}, {os.path.join(RESULTS, 'summary.svg')}")


if __name__ == "__main__":
    main()
