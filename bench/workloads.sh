#!/usr/bin/env bash
# Workload benchmarks on one cluster, with the release binary, all on
# 127.0.0.1:
#  1. a ReplicationController (samples/kubia/kubia-rc.yaml) scaled through
#     its /scale subresource from 0 to 100 pods and from 0 to 1,000, timed
#     to the last pod Ready, and back to 0, timed to the last pod gone
#     (runtime/examples/cluster_bench.rs, `scale`, does the measuring);
#  2. requests per second through a LoadBalancer Service (`kubectl expose
#     rc kubia --type=LoadBalancer`) in front of 1 and of 3 kubia pods,
#     against `wrun run -d -p` straight to one kubia container and against
#     the seed's node app.js, with wrk as bench/http.sh runs it;
#  3. failed requests, with wrk opening a connection per request
#     (`-H 'Connection: close'`) for the whole change, while the RC is
#     scaled 3 -> 10 -> 1 and while a Deployment rolls from kubia to
#     kubia-http (`kubectl set image`), as tests/all/workloads.rs does.
# Each measurement runs BENCH_WORKLOADS_RUNS times (default 3); the
# summary gives the median and every run.
#
# Usually run through `make bench`; works from any directory once
# `cargo build --release -p wrun --bins --examples` has run. Needs kubectl,
# wrk, curl and python3 (it installs nothing). KUBIA_APP_JS names app.js as
# for bench/http.sh; node's case is skipped when it, node or port 8080 is
# missing. BENCH_WORKLOADS_SCALES sets the pod counts of part 1 (default
# "100 1000"). Results go to bench/results/workloads.json (every figure),
# bench/results/workloads.txt (the summary) and bench/results/workloads-wrk/
# (wrk's outputs). Exits non-zero only when something fails, never because
# a figure misses its goal. See bench/README.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
results="$repo/bench/results"
raw="$results/workloads-wrk"
WRUN="$repo/target/release/wrun"
BENCH="$repo/target/release/examples/cluster_bench"
RUNS="${BENCH_WORKLOADS_RUNS:-3}"
read -r -a SCALES <<<"${BENCH_WORKLOADS_SCALES:-100 1000}"
KUBIA_APP_JS="${KUBIA_APP_JS:-$repo/../shared/seed/app.js}"
# Part 2: bench/http.sh's wrk, and its untimed warm-up before each run.
WRK=(wrk -t2 -c50 -d10s --latency)
WRK_WARMUP=(wrk -t2 -c50 -d2s)
# Part 3: tests/all/workloads.rs's wrk, a new connection per request. It
# runs until the change is over and is then stopped with SIGINT (wrk
# prints its report then); -d is only a cap.
WRK_CLOSE=(wrk -t1 -c8 -d600s --timeout 30s -H 'Connection: close')
NODE_PORT=8080 # fixed in app.js
FIRST_PORT=18081
RC=kubia
LB=kubia-lb
DEPLOY=roll
# A guard against hangs while waiting for a state, in tenths of a second.
WAIT_TENTHS=1200

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

for t in kubectl wrk curl python3; do
  command -v "$t" >/dev/null 2>&1 || die "$t is needed (apt-get install $t)"
done
case "$RUNS" in
  '' | *[!0-9]* | 0) die "BENCH_WORKLOADS_RUNS must be a positive number (not '$RUNS')" ;;
esac
if [ ! -x "$WRUN" ] || [ ! -x "$BENCH" ]; then
  say "building wrun and cluster_bench (release)"
  cargo build --release -p wrun --bins --examples
fi
if [ ! -f samples/kubia/kubia.wasm ] || [ ! -f samples/kubia-http/kubia-http.wasm ]; then
  say "building the sample guests"
  bash samples/build.sh
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wrun-bench-workloads.XXXXXX")"
unset WRUN_LOG RUST_LOG WRUN_HOST WRUN_NO_START
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  if [ -S "$scratch/root/wrun.sock" ]; then
    WRUN_ROOT="$scratch/root" "$WRUN" rm -f bench-direct >/dev/null 2>&1 || true
    WRUN_ROOT="$scratch/root" "$WRUN" daemon stop >/dev/null 2>&1 || true
  fi
  remove_scratch "$scratch"
}
trap cleanup EXIT
# kubectl and wrun find nothing of the user's: no ~/.kube, no state root.
export HOME="$scratch/home"
export WRUN_ROOT="$scratch/root"
export KUBECONFIG="$scratch/kubeconfig"
mkdir -p "$HOME"
kc() { kubectl --cache-dir "$scratch/kube-cache" "$@"; }

# --- helpers ---------------------------------------------------------------------

# forget PID: drops PID (which has exited) from those cleanup kills.
forget() {
  local p keep=()
  for p in "${pids[@]}"; do
    [ "$p" = "$1" ] || keep+=("$p")
  done
  pids=("${keep[@]}")
}

in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# free_port: sets `port` to the next port from FIRST_PORT up that nothing
# listens on (and that no earlier call returned).
next_port="$FIRST_PORT"
free_port() {
  while in_use "$next_port"; do next_port=$((next_port + 1)); done
  port="$next_port"
  next_port=$((next_port + 1))
}

# wait_for WHAT CMD...: runs CMD every tenth of a second until it succeeds.
wait_for() {
  local what="$1" i
  shift
  for ((i = 0; i < WAIT_TENTHS; i++)); do
    if "$@"; then return 0; fi
    sleep 0.1
  done
  die "timed out waiting for $what"
}

# answers URL: URL answers with kubia's body.
answers() {
  local body
  body="$(curl -sf --max-time 1 "$1")" || return 1
  case "$body" in
    "you've hit "*) return 0 ;;
    *) die "$1 answered '$body'" ;;
  esac
}

# settled LABEL N [KIND/NAME] [SVC]: N pods labelled LABEL and not one more
# (the ones scaled away are gone, not just terminating); KIND/NAME reports
# N replicas, all ready; SVC's endpoints list N ready addresses.
settled() {
  local label="$1" n="$2" owner="${3:-}" svc="${4:-}" got
  got="$(kc get pods -l "$label" -o name | wc -l)"
  [ "$got" -eq "$n" ] || return 1
  if [ -n "$owner" ]; then
    got="$(kc get "$owner" -o 'jsonpath={.status.replicas}/{.status.readyReplicas}')"
    [ "$got" = "$n/$n" ] || return 1
  fi
  if [ -n "$svc" ]; then
    got="$(kc get endpoints "$svc" -o 'jsonpath={.subsets[*].addresses[*].ip}' | wc -w)"
    [ "$got" -eq "$n" ] || return 1
  fi
}

# scale_rc N: the RC at N pods, all ready and behind the LoadBalancer.
scale_rc() {
  kc scale rc "$RC" --replicas="$1" >/dev/null
  wait_for "rc/$RC at $1 ready pods" settled "app=$RC" "$1" "rc/$RC" "$LB"
}

# measure CASE ROUND URL: bench/http.sh's warm-up, then its wrk; the
# output goes to $raw/CASE-ROUND.txt.
measure() {
  say "$1 (run $2 of $RUNS): ${WRK[*]} $3"
  "${WRK_WARMUP[@]}" "$3" >/dev/null
  "${WRK[@]}" "$3" >"$raw/$1-$2.txt"
}

# under_load CASE ROUND URL CHANGE...: starts WRK_CLOSE against URL, runs
# CHANGE (which returns once the change is over), stops wrk half a second
# later; wrk's output goes to $raw/CASE-ROUND.txt, the change's duration
# (ms) to $raw/CASE-ROUND.ms.
under_load() {
  local case="$1" round="$2" url="$3" wrk_pid t0 t1
  shift 3
  say "$case (run $round of $RUNS), under ${WRK_CLOSE[*]} $url"
  "${WRK_CLOSE[@]}" "$url" >"$raw/$case-$round.txt" 2>&1 &
  wrk_pid=$!
  pids+=("$wrk_pid")
  sleep 0.5
  t0="$(date +%s%N)"
  "$@"
  t1="$(date +%s%N)"
  echo $(((t1 - t0) / 1000000)) >"$raw/$case-$round.ms"
  sleep 0.5
  kill -INT "$wrk_pid"
  wait "$wrk_pid" || die "wrk failed: $(cat "$raw/$case-$round.txt")"
  forget "$wrk_pid"
}

rc_3_10_1() {
  kc scale rc "$RC" --replicas=10 >/dev/null
  wait_for "rc/$RC at 10" settled "app=$RC" 10 "rc/$RC" "$LB"
  kc scale rc "$RC" --replicas=1 >/dev/null
  wait_for "rc/$RC at 1" settled "app=$RC" 1 "rc/$RC" "$LB"
}

# set_image IMAGE: the Deployment rolled to IMAGE, its old pods gone.
set_image() {
  local images
  kc set image "deployment/$DEPLOY" "web=$1" >/dev/null
  kc rollout status "deployment/$DEPLOY" --timeout=300s >/dev/null
  wait_for "deployment/$DEPLOY at 3 pods of $1" settled "app=$DEPLOY" 3 "deployment/$DEPLOY" "$DEPLOY"
  images="$(kc get pods -l "app=$DEPLOY" -o 'jsonpath={.items[*].spec.containers[*].image}')"
  [ "$images" = "$1 $1 $1" ] || die "deployment/$DEPLOY rolled to $1, but its pods run: $images"
}

# --- the cluster -------------------------------------------------------------------

mkdir -p "$results"
rm -rf "$raw"
mkdir -p "$raw"
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

say "a cluster with the kubia and kubia-http images"
# kubia is built FROM busybox.
"$WRUN" build -q -t busybox samples/busybox >/dev/null
"$WRUN" build -q -t kubia samples/kubia >/dev/null
"$WRUN" build -q -t kubia-http samples/kubia-http >/dev/null
"$WRUN" cluster start >/dev/null

# --- 1. scaling ----------------------------------------------------------------------

say "scaling rc/$RC 0 -> N -> 0 for N in ${SCALES[*]}, $RUNS times each"
"$BENCH" scale "$KUBECONFIG" samples/kubia/kubia-rc.yaml "$RUNS" "${SCALES[@]}" >"$scratch/scale.json"

# --- 2. LoadBalancer vs -p ---------------------------------------------------------------

free_port
lb_port="$port"
free_port
direct_port="$port"
say "kubectl expose rc $RC --type=LoadBalancer --name $LB --port=$lb_port --target-port=8080"
kc expose rc "$RC" --type=LoadBalancer --name "$LB" --port="$lb_port" --target-port=8080 >/dev/null
say "wrun run -d --name bench-direct -p 127.0.0.1:$direct_port:8080 kubia"
"$WRUN" run -d --name bench-direct -p "127.0.0.1:$direct_port:8080" kubia >/dev/null
wait_for "bench-direct to answer" answers "http://127.0.0.1:$direct_port/"

node_skipped=""
if [ ! -f "$KUBIA_APP_JS" ]; then
  node_skipped="no app.js at $KUBIA_APP_JS (set KUBIA_APP_JS)"
elif ! command -v node >/dev/null 2>&1; then
  node_skipped="node is not installed"
elif in_use "$NODE_PORT"; then
  node_skipped="127.0.0.1:$NODE_PORT (app.js's fixed port) is taken"
else
  say "node $KUBIA_APP_JS (port $NODE_PORT)"
  node "$KUBIA_APP_JS" </dev/null >"$scratch/node.log" 2>&1 &
  node_pid=$!
  pids+=("$node_pid")
  wait_for "node to answer" answers "http://127.0.0.1:$NODE_PORT/"
fi
[ -z "$node_skipped" ] || say "skipping node: $node_skipped"

# Round by round, so that a noisy minute touches every case alike.
for round in $(seq "$RUNS"); do
  scale_rc 1
  wait_for "$LB to answer" answers "http://127.0.0.1:$lb_port/"
  measure lb-1 "$round" "http://127.0.0.1:$lb_port/"
  scale_rc 3
  measure lb-3 "$round" "http://127.0.0.1:$lb_port/"
  measure direct "$round" "http://127.0.0.1:$direct_port/"
  if [ -z "$node_skipped" ]; then
    measure node "$round" "http://127.0.0.1:$NODE_PORT/"
  fi
done
"$WRUN" rm -f bench-direct >/dev/null
if [ -z "$node_skipped" ]; then
  kill "$node_pid"
  wait "$node_pid" 2>/dev/null || true
  forget "$node_pid"
fi

# --- 3. failed requests while scaling and rolling ------------------------------------------

for round in $(seq "$RUNS"); do
  scale_rc 3
  under_load scale-3-10-1 "$round" "http://127.0.0.1:$lb_port/" rc_3_10_1
done

say "deployment/$DEPLOY: 3 kubia pods behind a LoadBalancer"
kc apply -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: $DEPLOY
spec:
  replicas: 3
  strategy:
    type: RollingUpdate
  selector:
    matchLabels:
      app: $DEPLOY
  template:
    metadata:
      labels:
        app: $DEPLOY
    spec:
      containers:
      - name: web
        image: kubia
        ports:
        - containerPort: 8080
EOF
free_port
roll_port="$port"
kc expose deployment "$DEPLOY" --type=LoadBalancer --port="$roll_port" --target-port=8080 >/dev/null
kc rollout status "deployment/$DEPLOY" --timeout=300s >/dev/null
wait_for "deployment/$DEPLOY at 3" settled "app=$DEPLOY" 3 "deployment/$DEPLOY" "$DEPLOY"
wait_for "$DEPLOY to answer" answers "http://127.0.0.1:$roll_port/"
for round in $(seq "$RUNS"); do
  under_load roll-kubia-http "$round" "http://127.0.0.1:$roll_port/" set_image kubia-http
  # Back, untimed and without load, for the next run.
  set_image kubia
done

load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
"$WRUN" daemon stop >/dev/null

# --- report ------------------------------------------------------------------------------

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
if [ -n "$(find runtime/src runtime/Cargo.toml Cargo.lock -newer "$WRUN" -print -quit 2>/dev/null)" ]; then
  commit="$commit; STALE: target/release/wrun is older than runtime/src"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)"
meta="date:          $(date -u '+%Y-%m-%d %H:%M:%S UTC')
host:          $(uname -srm), $(nproc) CPUs${cpu:+, $cpu}
wrun:          $("$WRUN" --version) at $commit
kubectl:       $(kubectl version --client 2>/dev/null | head -n 1)
node:          $(node --version 2>/dev/null || echo 'not installed')
wrk:           $({ wrk -v 2>&1 || true; } | head -n 1)
load average:  $load_before before, $load_after after (1, 5, 15 min)"

PYTHONPATH="$repo/bench" python3 - "$scratch/scale.json" "$raw" "$results" "$RUNS" "$meta" "$node_skipped" <<'PY'
import glob, json, os, statistics, sys

scale_path, raw, results, runs, meta, node_skipped = sys.argv[1:7]
runs = int(runs)
scale = json.load(open(scale_path))
from wrk import parse

def case_runs(case):
    out = []
    for r in range(1, runs + 1):
        path = os.path.join(raw, f"{case}-{r}.txt")
        if os.path.exists(path):
            d = parse(path)
            ms = os.path.join(raw, f"{case}-{r}.ms")
            if os.path.exists(ms):
                d["change_ms"] = int(open(ms).read())
            out.append(d)
    return out

med = lambda v: statistics.median(v) if v else float("nan")
lb = {c: case_runs(c) for c in ("direct", "lb-1", "lb-3", "node")}
load = {c: case_runs(c) for c in ("scale-3-10-1", "roll-kubia-http")}
json.dump({"scale": scale, "http": lb, "under_load": load},
          open(os.path.join(results, "workloads.json"), "w"), indent=2)

def goal(ok):
    return "met" if ok else "NOT met"

lines = [
    "wrun workload benchmark (127.0.0.1 only; bench/workloads.sh, runtime/examples/cluster_bench.rs scale)",
    "",
    *meta.splitlines(),
    f"runs:          {runs} of each measurement; figures are the median (every run in brackets)",
    "",
    f"1. rc/{scale['rc']} (samples/kubia/kubia-rc.yaml) scaled through PATCH .../scale, from the PATCH sent:",
]
GOALS = {100: 1000.0, 1000: 5000.0}
for s in scale["scales"]:
    n = s["count"]
    ups, downs = s["up"]["runs"], s["down"]["runs"]
    def row(label, values):
        vals = [v for v in values if v is not None]
        m = med(vals)
        return f"   {label:<44} {m / 1000:7.2f} s   [{', '.join(f'{v / 1000:.2f}' for v in vals)}]"
    lines += [
        f"   0 -> {n}:",
        row("last pod Ready (pod watch)", [r["all_ready_ms"] for r in ups]),
        row("rc status.readyReplicas = N (rc watch)", [r["rc_ready_ms"] for r in ups]),
        row("  last pod created (ADDED)", [r["added_ms"]["last"] for r in ups]),
        row("  first pod Ready", [r["ready_ms"]["first"] for r in ups]),
        row("  half the pods Ready", [r["ready_ms"]["half"] for r in ups]),
    ]
    cut = [r.get("watch_restarts", 0) for r in ups + downs]
    if any(cut):
        lines.append(f"   (the server ended the client's watches mid-scale and they were resumed: {cut} times, up runs then down runs)")
    if n in GOALS:
        m = med([r["all_ready_ms"] for r in ups])
        lines.append(f"   goal: < {GOALS[n] / 1000:.0f} s: {goal(m < GOALS[n])}")
    lines += [
        f"   {n} -> 0:",
        row("last pod gone (DELETED in the pod watch)", [r["all_gone_ms"] for r in downs]),
        row("rc status.replicas = 0 (rc watch)", [r["rc_zero_ms"] for r in downs]),
        row("  last pod terminating (deletionTimestamp)", [r["terminating_ms"]["last"] for r in downs]),
    ]
lines += [
    "   published: none found for 100 pods on kind or k3s; the issue's estimate is 5-30 s (the",
    "   ReplicaSet controller's slow-start batches 1, 2, 4, 8, ..., and client rate limits).",
    "",
    "2. requests/s (wrk -t2 -c50 -d10s --latency after wrk -t2 -c50 -d2s, as bench/http.sh):",
    f"   {'case':<58} {'req/s':>9} {'p99 ms':>8} {'errors':>7}   every run's req/s",
]
LABELS = {
    "direct": "wrun run -d -p 127.0.0.1:P:8080 kubia (one container)",
    "lb-1": "LoadBalancer (kubectl expose rc) -> 1 kubia pod",
    "lb-3": "LoadBalancer (kubectl expose rc) -> 3 kubia pods",
    "node": "node app.js (the seed's kubia), 127.0.0.1:8080",
}
rps = {}
for c, label in LABELS.items():
    rs = lb[c]
    if not rs:
        lines.append(f"   {label:<58} {'skipped: ' + (node_skipped or 'not run'):>9}")
        continue
    rps[c] = med([r["rps"] for r in rs])
    p99 = med([r["p99_ms"] for r in rs if r["p99_ms"] is not None])
    errors = sum(r["non2xx"] + sum(r["socket"].values()) for r in rs)
    each = ", ".join("%.0f" % r["rps"] for r in rs)
    lines.append(f"   {label:<58} {rps[c]:>9.0f} {p99:>8.2f} {errors:>7}   [{each}]")

def ratio(a, b, g):
    if a not in rps or b not in rps:
        return "n/a (a case was skipped)"
    r = rps[a] / rps[b]
    return f"{r:.3f}x  (goal >= {g:.1f}x: {goal(r >= g)})"
lines += [
    "   errors: non-2xx responses plus socket errors, summed over the runs.",
    f"   {'LB (1 pod) / direct:':<26}{ratio('lb-1', 'direct', 0.9)}",
    f"   {'LB (3 pods) / direct:':<26}{ratio('lb-3', 'direct', 0.9)}",
    f"   {'LB (1 pod) / node:':<26}{ratio('lb-1', 'node', 1.0)}",
    f"   {'LB (3 pods) / node:':<26}{ratio('lb-3', 'node', 1.0)}",
    "   (ratios of the medians)",
    "",
    "3. failed requests under wrk -t1 -c8 --timeout 30s -H 'Connection: close' (a new connection",
    "   per request) through a LoadBalancer, for the whole change and half a second either side:",
]
LOAD = {
    "scale-3-10-1": "rc/kubia scaled 3 -> 10 -> 1 (the 9 pods gone)",
    "roll-kubia-http": "deployment kubia -> kubia-http (set image; old pods gone)",
}
total_failed = 0
for c, label in LOAD.items():
    lines.append(f"   {label}:")
    for i, r in enumerate(load[c], 1):
        s = r["socket"]
        failed = r["non2xx"] + sum(s.values())
        total_failed += failed
        lines.append(
            f"     run {i}: {r['requests']:>6} requests in {r['seconds']:.1f} s ({r['rps']:.0f}/s), change {r.get('change_ms', 0) / 1000:.1f} s;"
            f" socket errors connect {s['connect']}, read {s['read']}, write {s['write']}, timeout {s['timeout']}; non-2xx {r['non2xx']}"
        )
lines.append(f"   goal: 0 failed requests: {goal(total_failed == 0)} ({total_failed} in all)")
if node_skipped:
    lines += ["", f"skipped: node app.js: {node_skipped}"]
text = "\n".join(lines) + "\n"
out = os.path.join(results, "workloads.txt")
open(out, "w").write(text)
sys.stdout.write("\n" + text + f"\nwritten: {out}, {os.path.join(results, 'workloads.json')}, {raw}/\n")
PY
