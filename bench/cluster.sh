#!/usr/bin/env bash
# Cluster benchmarks, with the release binary, all on 127.0.0.1:
#  - `wrun cluster start` on a fresh state root to a node a client sees
#    Ready, with the daemon's own start and with a daemon already running;
#    beside minikube's published time-to-k8s figures (not run here);
#  - pods of the kubia image from their create to Ready, one at a time and
#    many at once: client side (create sent -> Ready seen in a watch) and
#    server side (Ready's lastTransitionTime - creationTimestamp, whole
#    seconds in Kubernetes' format);
#  - listing 1,000 pods as a Table (a raw request, and `kubectl get pods`);
#  - one change's fan-out to 50 watchers.
# runtime/examples/cluster_bench.rs does the measuring.
#
# Usually run through `make bench`; works from any directory once
# `cargo build --release -p wrun --bins --examples` has run. Needs kubectl
# and python3. Results go to bench/results/cluster.json (every figure) and
# bench/results/cluster.txt (the summary). Exits non-zero only when
# something fails, never because a figure misses its goal.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
results="$repo/bench/results"
WRUN="$repo/target/release/wrun"
BENCH="$repo/target/release/examples/cluster_bench"
START_RUNS="${BENCH_CLUSTER_START_RUNS:-20}"
PODS="${BENCH_CLUSTER_PODS:-100}"
TOTAL="${BENCH_CLUSTER_TOTAL:-1000}"
WATCHERS=50
ROUNDS=50

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

for t in kubectl python3; do
  command -v "$t" >/dev/null 2>&1 || die "$t is needed (apt-get install $t)"
done
if [ ! -x "$WRUN" ] || [ ! -x "$BENCH" ]; then
  say "building wrun and cluster_bench (release)"
  cargo build --release -p wrun --bins --examples
fi
if [ ! -f samples/kubia/kubia.wasm ]; then
  say "building the sample guests"
  bash samples/build.sh
fi

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wrun-bench-cluster.XXXXXX")"
unset WRUN_LOG RUST_LOG WRUN_HOST WRUN_NO_START
cleanup() {
  # Every daemon this script (or cluster_bench) started, by its root.
  local r
  for r in "$scratch"/start/*/ "$scratch/root/"; do
    if [ -S "$r/wrun.sock" ]; then
      WRUN_ROOT="$r" "$WRUN" daemon stop >/dev/null 2>&1 || true
    fi
  done
  remove_scratch "$scratch"
}
trap cleanup EXIT
# kubectl and wrun find nothing of the user's: no ~/.kube, no state root.
export HOME="$scratch/home"
mkdir -p "$HOME" "$scratch/start"

load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

say "cluster start: $START_RUNS fresh roots with the daemon's start, $START_RUNS with a daemon running"
"$BENCH" start "$WRUN" "$scratch/start" "$START_RUNS" >"$scratch/start.json"

say "a cluster with the kubia image"
export WRUN_ROOT="$scratch/root"
export KUBECONFIG="$scratch/kubeconfig"
# kubia is built FROM busybox.
"$WRUN" build -q -t busybox samples/busybox >/dev/null
"$WRUN" build -q -t kubia samples/kubia >/dev/null
"$WRUN" cluster start >/dev/null
say "pods ($PODS one at a time, $PODS at once), $TOTAL listed, $WATCHERS watchers"
"$BENCH" api "$KUBECONFIG" kubectl "$scratch/kube-cache" "$PODS" "$TOTAL" "$WATCHERS" "$ROUNDS" \
  >"$scratch/api.json"
load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
"$WRUN" daemon stop >/dev/null

mkdir -p "$results"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)"
meta="date:          $(date -u '+%Y-%m-%d %H:%M:%S UTC')
host:          $(uname -srm), $(nproc) CPUs${cpu:+, $cpu}
wrun:          $("$WRUN" --version) at $commit
kubectl:       $(kubectl version --client 2>/dev/null | head -n 1)
load average:  $load_before before, $load_after after (1, 5, 15 min)"

python3 - "$scratch/start.json" "$scratch/api.json" "$results" "$meta" <<'PY'
import json, os, sys

start = json.load(open(sys.argv[1]))
api = json.load(open(sys.argv[2]))
results, meta = sys.argv[3], sys.argv[4]
json.dump({"cluster_start": start, **api}, open(os.path.join(results, "cluster.json"), "w"), indent=2)

# minikube's time-to-k8s benchmark for v1.36.0 (kubernetes/minikube,
# site/content/en/docs/benchmarks/timeToK8s/v1.36.0.md), in seconds.
PUBLISHED = [("minikube v1.36.0", 21.056, 50.812), ("kind v0.29.0", 14.240, 32.977), ("k3d v5.8.3", 12.593, 19.937)]
K3D_APP_RUNNING_S = 3.039
SLO_P99_S = 5.0

def stat(s, unit="ms"):
    return f"p50 {s['p50']:.1f} {unit}, p90 {s['p90']:.1f}, p99 {s['p99']:.1f}, min {s['min']:.1f}, max {s['max']:.1f} (n={s['n']})"

def goal(value, limit):
    return "met" if value < limit else "NOT met"

cold = start["with_daemon_start"]["to_ready"]
warm = start["daemon_running"]["to_ready"]
seq, burst = api["pods_one_at_a_time"], api["pods_at_once"]
late = api["pods_one_at_a_time_beside_total"]
lst, fan = api["list"], api["watch_fan_out"]
lines = [
    "wrun cluster benchmark (127.0.0.1 only; runtime/examples/cluster_bench.rs)",
    "",
    *meta.splitlines(),
    "",
    "1. `wrun cluster start` on a fresh state root, to the node Ready as a client sees it:",
    f"   with the daemon's start:  {stat(cold)}",
    f"   (command exit alone:      {stat(start['with_daemon_start']['to_exit'])})",
    f"   daemon already running:   {stat(warm)}",
    f"   (command exit alone:      {stat(start['daemon_running']['to_exit'])})",
    f"   goal: p50 with the daemon's start < 500 ms: {goal(cold['p50'], 500)}",
    "   published (minikube's time-to-k8s, v1.36.0; not run here): start command / total to a",
    "   running app with DNS:",
]
for name, exec_s, total_s in PUBLISHED:
    lines.append(f"     {name:<18} {exec_s:6.1f} s / {total_s:5.1f} s   ({exec_s * 1000 / cold['p50']:,.0f}x / {total_s * 1000 / cold['p50']:,.0f}x wrun's p50)")
lines += [
    "",
    f"2. pods of the kubia image (port 8080 declared: Ready once bound), create to Ready:",
    f"   {seq['client_ms']['n']} one at a time, client side (POST sent -> Ready in a watch): {stat(seq['client_ms'])}",
    f"     p50 of each tenth of the run, in order: {', '.join(f'{x:.1f}' for x in seq['p50_by_tenth_ms'])} ms",
    f"     server side (Ready lastTransitionTime - creationTimestamp, 1 s resolution): {stat(seq['server_s'], 's')}",
    f"   {burst['client_ms']['n']} at once ({burst['clients']} clients creating back to back), client side: {stat(burst['client_ms'])}",
    f"     creates answered in {stat(burst['create_answered_ms'])}",
    f"     all created {burst['all_created_ms']:.0f} ms and all Ready {burst['all_ready_ms']:.0f} ms after the first create",
    f"     server side: {stat(burst['server_s'], 's')}",
    f"   {late['client_ms']['n']} one at a time beside {lst['rows']} pods, client side: {stat(late['client_ms'])}",
    f"   goal: p99 < 100 ms (one at a time): {goal(seq['client_ms']['p99'], 100)}; at once: {goal(burst['client_ms']['p99'], 100)}; beside {lst['rows']}: {goal(late['client_ms']['p99'], 100)}",
    f"   published: k3d's app running {K3D_APP_RUNNING_S} s (time-to-k8s v1.36.0); Kubernetes' pod startup SLO: p99 <= {SLO_P99_S:.0f} s",
    "",
    f"3. listing {lst['rows']} pods:",
    f"   raw GET as a Table ({lst['table']['bytes']:,} bytes): {stat(lst['table']['ms'])}",
    f"   raw GET as JSON    ({lst['json']['bytes']:,} bytes): {stat(lst['json']['ms'])}",
    f"   `kubectl get pods` (process wall time, discovery cached): {stat(lst['kubectl_get_pods_ms'])}",
    "",
    f"4. one ConfigMap change to {fan['watchers']} watchers, from its PATCH sent ({fan['to_all_ms']['n']} changes):",
    f"   to all {fan['watchers']}:      {stat(fan['to_all_ms'])}",
    f"   to the first:   {stat(fan['to_first_ms'])}",
    f"   PATCH answered: {stat(fan['patch_round_trip_ms'])}",
]
text = "\n".join(lines) + "\n"
out = os.path.join(results, "cluster.txt")
open(out, "w").write(text)
sys.stdout.write("\n" + text + f"\nwritten: {out}, {os.path.join(results, 'cluster.json')}\n")
PY
