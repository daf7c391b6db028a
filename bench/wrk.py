"""wrk's output (run with --latency), read for the bench scripts' summaries.

Imported by the inline Python of bench/http.sh, bench/workloads.sh and
bench/fairness.sh (with bench/ on sys.path).
"""
import re
import sys

UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}


def parse(path):
    """Requests per second, latency percentiles (ms), request count,
    duration (s), non-2xx answers and socket errors of one wrk run; exits
    naming the file when it holds no Requests/sec."""
    text = open(path).read()

    def grab(pattern, cast=float, default=None):
        m = re.search(pattern, text, re.M)
        return cast(m.group(1)) if m else default

    def latency_ms(label):
        m = re.search(rf"^\s*{label}\s+([\d.]+)(us|ms|s|m|h)\s*$", text, re.M)
        return float(m.group(1)) * UNITS[m.group(2)] if m else None

    rps = grab(r"^Requests/sec:\s+([\d.]+)")
    if rps is None:
        sys.exit(f"bench: no Requests/sec in {path}:\n{text}")
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    dur = re.search(r"requests in ([\d.]+)(us|ms|s|m|h)", text)
    return {
        "rps": rps,
        "p50_ms": latency_ms("50%"),
        "p99_ms": latency_ms("99%"),
        "requests": grab(r"^\s*(\d+) requests in", int, 0),
        "seconds": float(dur.group(1)) * UNITS[dur.group(2)] / 1e3 if dur else None,
        "non2xx": grab(r"Non-2xx or 3xx responses: (\d+)", int, 0),
        "socket": dict(zip(("connect", "read", "write", "timeout"), map(int, sock.groups())))
        if sock
        else {"connect": 0, "read": 0, "write": 0, "timeout": 0},
    }
