#!/usr/bin/env bash
# The dashboard's benchmark, with the release binary, all on 127.0.0.1:
# a cluster with a ReplicationController of kubia scaled to PODS pods
# (default 1,000), then bench/dashboard.mjs in headless Chromium measures
#  1. the time to first paint of the workloads view (its first page of 100
#     pods, with the count of all of them; goal < 300 ms), by the page's
#     clock from the navigation's start, and
#  2. the delay from a change in the API (the RC's replicas patched) to the
#     change on the page (goal < 100 ms).
# No peer is measured: Headlamp and the Kubernetes Dashboard need a real
# cluster and a container runtime to run in, which this machine lacks.
#
# Usually run through `make bench`; needs chromium (apt), node and
# tests/browser's playwright-core (`make tests/browser/node_modules`).
# BENCH_DASHBOARD_PODS, BENCH_DASHBOARD_RUNS (default 5) and
# BENCH_DASHBOARD_ROUNDS (default 20) change the sizes. Results go to
# bench/results/dashboard.json and bench/results/dashboard.txt.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
results="$repo/bench/results"
WRUN="$repo/target/release/wrun"
PODS="${BENCH_DASHBOARD_PODS:-1000}"
RUNS="${BENCH_DASHBOARD_RUNS:-5}"
ROUNDS="${BENCH_DASHBOARD_ROUNDS:-20}"

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

for t in kubectl node python3; do
  command -v "$t" >/dev/null 2>&1 || die "$t is needed"
done
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || die "chromium is needed (apt-get install chromium)"
[ -d tests/browser/node_modules/playwright-core ] || make tests/browser/node_modules
if [ ! -x "$WRUN" ]; then
  say "building wrun (release)"
  cargo build --release -p wrun --bins
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wrun-bench-dashboard.XXXXXX")"
unset WRUN_LOG RUST_LOG WRUN_HOST WRUN_NO_START
cleanup() {
  if [ -S "$scratch/root/wrun.sock" ]; then
    WRUN_ROOT="$scratch/root" "$WRUN" daemon stop >/dev/null 2>&1 || true
  fi
  remove_scratch "$scratch"
}
trap cleanup EXIT
export HOME="$scratch/home"
export WRUN_ROOT="$scratch/root"
export KUBECONFIG="$scratch/kubeconfig"
mkdir -p "$HOME" "$results"
kc() { kubectl --cache-dir "$scratch/kube-cache" "$@"; }

say "a cluster with $PODS kubia pods"
# kubia is built FROM busybox.
"$WRUN" build -q -t busybox samples/busybox >/dev/null
"$WRUN" build -q -t kubia samples/kubia >/dev/null
"$WRUN" cluster start >/dev/null
kc create -f samples/kubia/kubia-rc.yaml >/dev/null
kc scale rc kubia --replicas="$PODS" >/dev/null
for ((i = 0; i < 1200; i++)); do
  ready="$(kc get rc kubia -o 'jsonpath={.status.readyReplicas}')"
  [ "${ready:-0}" = "$PODS" ] && break
  sleep 0.1
done
[ "${ready:-0}" = "$PODS" ] || die "the RC did not reach $PODS ready pods (it has ${ready:-0})"

say "the dashboard in headless Chromium: first paint ($RUNS runs), change delay ($ROUNDS rounds)"
url="$("$WRUN" dashboard --url)"
node bench/dashboard.mjs "$url" "$PODS" "$RUNS" "$ROUNDS" >"$results/dashboard.json"

python3 - "$results/dashboard.json" "$PODS" <<'EOF' | tee "$results/dashboard.txt"
import json, sys
d = json.load(open(sys.argv[1]))
pods = sys.argv[2]
fp, cd = d["first_paint_ms"], d["change_delay_ms"]
def goal(ok): return "met" if ok else "NOT met"
print(f"wrun dashboard benchmark (headless Chromium, 127.0.0.1; bench/dashboard.sh)")
print(f"1. first paint of the workloads view with {pods} pods (the first 100 listed):")
print(f"   p50 {fp['p50']} ms, min {fp['min']}, max {fp['max']}  (runs: {d['first_paint_runs']})")
dr = d["first_paint_driver_ms"]
print(f"   as the test driver sees it (with its protocol round trips): p50 {dr['p50']} ms, max {dr['max']}")
print(f"   goal < 300 ms: {goal(fp['p50'] < 300)}")
print(f"2. delay from a PATCH of the RC's replicas to the page showing it ({cd['n']} rounds):")
print(f"   p50 {cd['p50']} ms, p90 {cd['p90']}, max {cd['max']}")
print(f"   goal < 100 ms: {goal(cd['p50'] < 100)}")
EOF
