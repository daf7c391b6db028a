#!/usr/bin/env bash
# HTTP serving benchmark: wrk against the same "kubia" server run four ways,
# all on 127.0.0.1:
#   1. kubia (the wasi:sockets guest) in a wrun container, published with -p;
#   2. the seed's Node.js kubia (app.js, which listens on port 8080), its original;
#   3. kubia-http (the wasi:http/incoming-handler component) in a wrun container;
#   4. the same kubia-http.wasm under `wasmtime serve`.
# Ratios of requests per second: 1/2, goal >= 1.5 (a published port takes
# the guest straight to its listener: no copy through the daemon); 3/4, goal
# >= 1.0. runwasi is reported at about 0.1x `wasmtime serve`.
#
# Usually run through `make bench` (which builds target/release/wrun first);
# works from any directory. Installs wrk (apt) and wasmtime-cli 48 (cargo,
# into bench/.tools/) when missing. KUBIA_APP_JS names app.js (default:
# shared/seed/app.js beside the repository); node's case is skipped when it
# or node is missing. BENCH_HTTP_ONLY=peers runs cases 2 and 4 alone (no
# wrun). wrk's outputs and a summary go to bench/results/. Exits non-zero
# only when something fails, never because a ratio is below the goal. See
# bench/README.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
bench="$repo/bench"
tools="$bench/.tools"
results="$bench/results"

WASMTIME_MAJOR=48
WRUN="$repo/target/release/wrun"
WASMTIME="$tools/bin/wasmtime"
KUBIA_APP_JS="${KUBIA_APP_JS:-$repo/../shared/seed/app.js}"
ONLY="${BENCH_HTTP_ONLY:-all}"
WRK=(wrk -t2 -c50 -d10s --latency)
# Untimed, before each measurement: node's JIT warms up, every side's caches fill.
WRK_WARMUP=(wrk -t2 -c50 -d2s)
NODE_PORT=8080 # fixed in app.js
FIRST_PORT=18081
RUNWASI_VS_WASMTIME=0.1

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

case "$ONLY" in
  all | peers) ;;
  *) die "BENCH_HTTP_ONLY must be unset, 'all' or 'peers' (not '$ONLY')" ;;
esac

# --- 1. tools, guests, images -------------------------------------------------

apt_tool wrk
for t in curl python3; do
  command -v "$t" >/dev/null 2>&1 || die "$t is needed (apt-get install $t)"
done

# The same pinned wasmtime as bench/run.sh.
pinned_wasmtime "$tools" "$WASMTIME_MAJOR"

if [ "$ONLY" = all ] && [ ! -x "$WRUN" ]; then
  say "building wrun (release)"
  cargo build --release -p wrun
fi
if [ ! -f samples/kubia/kubia.wasm ] || [ ! -f samples/kubia-http/kubia-http.wasm ]; then
  say "building the sample guests"
  bash samples/build.sh
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wrun-bench-http.XXXXXX")"
pids=()
containers=()
cleanup() {
  local pid name
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ "$ONLY" = all ]; then
    for name in "${containers[@]}"; do
      "$WRUN" rm -f "$name" >/dev/null 2>&1 || true
    done
    # Stops this root's daemon, started by the first wrun command below.
    "$WRUN" daemon stop >/dev/null 2>&1 || true
  fi
  remove_scratch "$scratch"
}
trap cleanup EXIT

fresh_state "$scratch"
# Diagnostics would cost time on one side only.
unset WRUN_LOG RUST_LOG WASMTIME_LOG WRUN_HOST

if [ "$ONLY" = all ]; then
  say "building kubia and kubia-http into a fresh state root"
  # kubia is built FROM busybox.
  "$WRUN" build -q -t busybox samples/busybox >/dev/null
  "$WRUN" build -q -t kubia samples/kubia >/dev/null
  "$WRUN" build -q -t kubia-http samples/kubia-http >/dev/null
fi

# --- 2. helpers ---------------------------------------------------------------

# in_use PORT: something accepts connections on 127.0.0.1:PORT.
in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: sets `port` to the next port from FIRST_PORT up that nothing
# listens on (and that no earlier call returned).
next_port="$FIRST_PORT"
free_port() {
  while in_use "$next_port"; do next_port=$((next_port + 1)); done
  port="$next_port"
  next_port=$((next_port + 1))
}

# stop PID: kills a server this script started and forgets its PID.
stop() {
  local p keep=()
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${pids[@]}"; do
    [ "$p" = "$1" ] || keep+=("$p")
  done
  pids=("${keep[@]}")
}

# measure CASE URL: a warm-up, then wrk; its output goes to
# bench/results/http-CASE.wrk.txt (and to stderr).
measure() {
  say "$1: warming up (${WRK_WARMUP[*]})"
  "${WRK_WARMUP[@]}" "$2" >/dev/null
  say "$1: ${WRK[*]} $2"
  "${WRK[@]}" "$2" | tee "$results/http-$1.wrk.txt" >&2
}

# wrun_case CASE NAME IMAGE: runs IMAGE detached as container NAME, its port
# 8080 published on a free port of 127.0.0.1, measures it, removes it.
wrun_case() {
  local url
  free_port
  url="http://127.0.0.1:$port/"
  say "$1: wrun run -d --name $2 -p 127.0.0.1:$port:8080 $3"
  containers+=("$2")
  "$WRUN" run -d --name "$2" -p "127.0.0.1:$port:8080" "$3" >/dev/null
  wait_ready "$2" "$url" ||
    die "container $2 did not answer at $url within 10 s; its logs:"$'\n'"$("$WRUN" logs "$2" 2>&1 | tail -n 20)"
  measure "$1" "$url"
  "$WRUN" rm -f "$2" >/dev/null
}

skipped=()

# --- 3. measure: one server at a time ---------------------------------------

mkdir -p "$results"
rm -f "$results"/http-*.wrk.txt
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

if [ "$ONLY" = all ]; then
  wrun_case wrun-kubia bench-kubia kubia
else
  skipped+=("1 (wrun kubia): BENCH_HTTP_ONLY=$ONLY")
fi

if [ ! -f "$KUBIA_APP_JS" ]; then
  say "skipping node: $KUBIA_APP_JS not found (set KUBIA_APP_JS to the seed's app.js)"
  skipped+=("2 (node kubia): no app.js at $KUBIA_APP_JS")
elif ! command -v node >/dev/null 2>&1; then
  say "skipping node: node is not installed"
  skipped+=("2 (node kubia): node is not installed")
else
  in_use "$NODE_PORT" &&
    die "127.0.0.1:$NODE_PORT is taken: app.js listens on port $NODE_PORT (fixed); free it first"
  url="http://127.0.0.1:$NODE_PORT/"
  say "node: node $KUBIA_APP_JS"
  node "$KUBIA_APP_JS" </dev/null >"$scratch/node.log" 2>&1 &
  pids+=("$!")
  wait_ready node "$url" "$!" ||
    die "node did not answer at $url within 10 s:"$'\n'"$(tail -n 20 "$scratch/node.log")"
  measure node-kubia "$url"
  stop "${pids[-1]}"
fi

if [ "$ONLY" = all ]; then
  wrun_case wrun-kubia-http bench-kubia-http kubia-http
else
  skipped+=("3 (wrun kubia-http): BENCH_HTTP_ONLY=$ONLY")
fi

# `-S cli`: the guest reads HOSTNAME through wasi:cli/environment, which the
# bare wasi:http/proxy world does not include.
free_port
url="http://127.0.0.1:$port/"
say "wasmtime: wasmtime serve -S cli --addr 127.0.0.1:$port samples/kubia-http/kubia-http.wasm"
"$WASMTIME" serve -S cli --addr "127.0.0.1:$port" --env HOSTNAME=bench-kubia-http \
  samples/kubia-http/kubia-http.wasm </dev/null >"$scratch/wasmtime.log" 2>&1 &
pids+=("$!")
wait_ready "wasmtime serve" "$url" "$!" ||
  die "wasmtime serve did not answer at $url within 10 s:"$'\n'"$(tail -n 20 "$scratch/wasmtime.log")"
measure wasmtime-serve "$url"
stop "${pids[-1]}"

load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

# --- 4. report ------------------------------------------------------------------

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)"
wrun_version="not run (BENCH_HTTP_ONLY=$ONLY)"
[ "$ONLY" = peers ] || wrun_version="$("$WRUN" --version) at $commit"
node_version="$(node --version 2>/dev/null || echo 'not installed')"
wrk_version="$({ wrk -v 2>&1 || true; } | head -n 1)"
# The summary's header, one "label: value" a line.
meta="date:          $(date -u '+%Y-%m-%d %H:%M:%S UTC')
host:          $(uname -srm), $(nproc) CPUs${cpu:+, $cpu}
wrun:          $wrun_version
node:          $node_version
wasmtime:      $("$WASMTIME" --version)
wrk:           $wrk_version; ${WRK[*]} (after an untimed ${WRK_WARMUP[*]})
load average:  $load_before before, $load_after after (1, 5, 15 min)"

PYTHONPATH="$bench" python3 - "$results" "$RUNWASI_VS_WASMTIME" "$meta" "${skipped[@]}" <<'PY'
import os, sys

results, runwasi, meta, skipped = sys.argv[1], float(sys.argv[2]), sys.argv[3], sys.argv[4:]
cases = [
    ("1", "wrun-kubia", "wrun run kubia (wasi:sockets guest), -p 127.0.0.1:P:8080"),
    ("2", "node-kubia", "node app.js (the seed's kubia), 127.0.0.1:8080"),
    ("3", "wrun-kubia-http", "wrun run kubia-http (wasi:http component), -p"),
    ("4", "wasmtime-serve", "wasmtime serve -S cli kubia-http.wasm"),
]
from wrk import parse

data = {}
for num, key, _ in cases:
    path = os.path.join(results, f"http-{key}.wrk.txt")
    if os.path.exists(path):
        data[num] = parse(path)

def ratio(a, b, goal):
    if a not in data or b not in data:
        return "n/a (a case was skipped)"
    r = data[a]["rps"] / data[b]["rps"]
    return f"{r:.2f}x  (goal >= {goal:.1f}x: {'met' if r >= goal else 'NOT met'})"

lines = [
    "wrun HTTP serving benchmark (wrk, 127.0.0.1)",
    "",
    *meta.splitlines(),
    "",
    f"{'case':<4} {'server':<62} {'req/s':>10} {'p99 ms':>8} {'requests':>9} {'errors':>7}",
]
for num, key, label in cases:
    d = data.get(num)
    if d is None:
        lines.append(f"{num:<4} {label:<62} {'skipped':>10}")
        continue
    p99 = f"{d['p99_ms']:.2f}" if d["p99_ms"] is not None else "?"
    errors = d["non2xx"] + sum(d["socket"].values())
    lines.append(
        f"{num:<4} {label:<62} {d['rps']:>10.1f} {p99:>8} {d['requests'] or 0:>9} {errors:>7}"
    )
lines += [
    "",
    "errors: non-2xx responses plus socket errors (connect, read, write, timeout), per wrk.",
    "",
    f"{'ratio 1/2, req/s (wrun kubia / node kubia):':<56}{ratio('1', '2', 1.5)}",
    f"{'ratio 3/4, req/s (wrun kubia-http / wasmtime serve):':<56}{ratio('3', '4', 1.0)}",
    f"runwasi (containerd's wasmtime shim) is reported at about {runwasi}x wasmtime serve"
    + (f", about {runwasi * data['4']['rps']:.0f} req/s here." if "4" in data else "."),
]
if skipped:
    lines += ["", "skipped:"] + [f"  case {s}" for s in skipped]
text = "\n".join(lines) + "\n"
out = os.path.join(results, "http.txt")
open(out, "w").write(text)
sys.stdout.write("\n" + text + f"\nwritten: {out}\n")
PY
