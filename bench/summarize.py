#!/usr/bin/env python3
"""Summarises hyperfine JSON exports of the startup benchmark (bench/run.sh).

Each --pair is "LABEL=FILE", FILE being one `hyperfine --export-json` run of
two commands: wrun first, wasmtime second. Prints the means, standard
deviations and the ratio wrun/wasmtime, and writes the same text to --out.
The ratio never affects the exit status: a slow result is a figure, not an
error.
"""

import argparse
import json
import math
import sys

GOAL = 0.5  # through the daemon, wrun's wall time should be at most half wasmtime's


def ms(seconds):
    return f"{seconds * 1000:.2f} ms"


def pair_lines(label, path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    results = data["results"]
    if len(results) != 2:
        raise SystemExit(f"{path}: expected 2 results, found {len(results)}")
    wrun, wasmtime = results
    lines = [f"{label}  ({path})"]
    for name, r in (("wrun", wrun), ("wasmtime", wasmtime)):
        lines.append(f"  {name:<9} {r['command']}")
        lines.append(
            f"  {'':<9} mean {ms(r['mean'])} ± {ms(r['stddev'] or 0.0)}"
            f"  (median {ms(r['median'])}, min {ms(r['min'])}, max {ms(r['max'])},"
            f" {len(r['times'])} runs)"
        )
    ratio = wrun["mean"] / wasmtime["mean"]
    # Propagated standard deviation of the ratio of two independent means.
    rel = math.hypot(
        (wrun["stddev"] or 0.0) / wrun["mean"],
        (wasmtime["stddev"] or 0.0) / wasmtime["mean"],
    )
    verdict = "meets" if ratio <= GOAL else "misses"
    lines.append(
        f"  ratio wrun/wasmtime: {ratio:.2f}x ± {ratio * rel:.2f}"
        f"  ({verdict} the goal of <= {GOAL:.1f}x)"
    )
    return lines, ratio


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", required=True, help="summary file to write")
    ap.add_argument("--meta", action="append", default=[], help="KEY=VALUE header line")
    ap.add_argument("--pair", action="append", default=[], help="LABEL=hyperfine JSON")
    args = ap.parse_args()

    lines = ["wrun startup benchmark: `wrun run --rm` vs `wasmtime run`, busybox `true`, wrun through its daemon", ""]
    for m in args.meta:
        key, _, value = m.partition("=")
        lines.append(f"{key + ':':<24}{value}")
    ratios = []
    for p in args.pair:
        label, _, path = p.partition("=")
        lines.append("")
        pl, ratio = pair_lines(label, path)
        lines.extend(pl)
        ratios.append((label, ratio))
    lines.append("")
    lines.append(
        f"ratios (wrun/wasmtime, mean wall time; goal <= {GOAL:.1f}x, the daemon keeping the engine and code warm): "
        + ", ".join(f"{label} {r:.2f}x" for label, r in ratios)
    )
    text = "\n".join(lines) + "\n"
    with open(args.out, "w", encoding="utf-8") as f:
        f.write(text)
    sys.stdout.write("\n" + text)
    sys.stdout.write(f"\nwritten: {args.out}\n")


if __name__ == "__main__":
    main()
