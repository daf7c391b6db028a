#!/usr/bin/env bash
# Daemon benchmarks:
#  - container throughput: create, start, wait and remove containers running
#    busybox `true` through the Docker API, with 1, 8 and 64 clients at once,
#    in containers per second;
#  - density: 10,000 containers running `sleep 3600` (BENCH_DENSITY); the daemon's RSS
#    divided by their number (and the growth over an idle daemon, per
#    container). The instance pool holds 4,096: the rest are allocated on
#    demand.
# The peer figures are runwasi's published ones (its containerd wasmtime
# shim cannot run on this machine without containerd and a Kubernetes node):
# 330 tasks/s, and about 23 MB per container.
#
# Usually run through `make bench`; works from any directory once
# `cargo build --release -p wrun --bins --examples` has run. Results go to
# bench/results/daemon.txt. Exits non-zero only when something fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
results="$repo/bench/results"
WRUN="$repo/target/release/wrun"
LOAD="$repo/target/release/examples/wrun_load"
DENSITY="${BENCH_DENSITY:-10000}"
RUNWASI_TASKS_PER_SEC=330
RUNWASI_MB_PER_CONTAINER=23

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

if [ ! -x "$WRUN" ] || [ ! -x "$LOAD" ]; then
  say "building wrun and the load generator (release)"
  cargo build --release -p wrun --bins --examples
fi
say "building the sample guests"
bash samples/build.sh

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wrun-bench.XXXXXX")"
export WRUN_ROOT="$scratch/root"
unset WRUN_LOG RUST_LOG WRUN_HOST
# Density is bounded by the kernel's vm.max_map_count: each guest takes a
# few memory mappings (its linear memory, stack and tables, split by guard
# pages). Debian keeps the old default of 65,530, under which about 9,000
# guests fit; Ubuntu 24.04, Fedora 39 and Arch ship 1,048,576. As root, the
# run uses that value (BENCH_MAX_MAP_COUNT; 0 leaves the machine as it is)
# and puts the old one back when it ends.
MAX_MAP_COUNT="${BENCH_MAX_MAP_COUNT:-1048576}"
map_count_file=/proc/sys/vm/max_map_count
old_map_count=""
cleanup() {
  # Stops this root's daemon (and with it every container it runs).
  "$WRUN" daemon stop >/dev/null 2>&1 || true
  if [ -n "$old_map_count" ]; then
    echo "$old_map_count" >"$map_count_file" || say "could not restore vm.max_map_count=$old_map_count"
  fi
  remove_scratch "$scratch"
}
trap cleanup EXIT

"$WRUN" build -q -t busybox samples/busybox >/dev/null
# The first run starts the daemon and compiles the guest once.
"$WRUN" run --rm busybox true
address="unix://$WRUN_ROOT/wrun.sock"
pid="$(tr -d '[:space:]' <"$WRUN_ROOT/daemon.lock")"
[ -n "$pid" ] && [ -d "/proc/$pid" ] || die "no daemon process (pid '$pid')"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$pid/status"; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
declare -A rate
for clients in 1 8 64; do
  total=$((clients < 8 ? 300 : 1000))
  say "throughput: $clients client(s), $total containers"
  line="$("$LOAD" "$address" throughput busybox "$clients" "$total")"
  echo "$line" >&2
  rate[$clients]="$(sed -n 's/.*per_second=\([0-9.]*\).*/\1/p' <<<"$line")"
done

rss_idle="$(rss_kb)"
maps_idle="$(wc -l <"/proc/$pid/maps")"
map_count_note=""
if [ -r "$map_count_file" ]; then
  current="$(cat "$map_count_file")"
  if [ "$MAX_MAP_COUNT" -gt "$current" ] && [ "$(id -u)" = 0 ] && [ -w "$map_count_file" ]; then
    old_map_count="$current"
    echo "$MAX_MAP_COUNT" >"$map_count_file"
    map_count_note="vm.max_map_count $current raised to $MAX_MAP_COUNT for this run, restored after"
  else
    map_count_note="vm.max_map_count $current"
  fi
  say "density: $map_count_note"
fi
say "density: starting $DENSITY containers running sleep 3600"
line="$("$LOAD" "$address" density busybox "$DENSITY")"
echo "$line" >&2
running="$("$WRUN" ps -q | wc -l)"
[ "$running" -gt 0 ] || die "no container is running"
# Past a limit the daemon refuses a start clearly (the kernel's
# vm.max_map_count, say): report how far it got, and why.
refused=""
if [ "$running" -lt "$DENSITY" ]; then
  exited="$("$WRUN" ps -aq --filter status=exited)"
  first="${exited%%$'\n'*}"
  [ -z "$first" ] || refused="$("$WRUN" inspect --format '{{.State.Error}}' "$first")"
fi
sleep 1
rss_full="$(rss_kb)"
maps_full="$(wc -l <"/proc/$pid/maps")"
load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

mkdir -p "$results"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
python3 - "$results/daemon.txt" "$refused" "$map_count_note" <<PY
import sys
r1, r8, r64 = ${rate[1]}, ${rate[8]}, ${rate[64]}
idle, full, n, asked = ${rss_idle}, ${rss_full}, ${running}, ${DENSITY}
refused, map_note = sys.argv[2], sys.argv[3]
maps_idle, maps_full = ${maps_idle}, ${maps_full}
peer_rate, peer_mb = ${RUNWASI_TASKS_PER_SEC}, ${RUNWASI_MB_PER_CONTAINER}
per = full / 1024 / n
growth = (full - idle) / 1024 / n
lines = [
    "wrun daemon benchmark",
    "",
    f"commit:                 ${commit}",
    f"host:                   $(uname -srm), $(nproc) CPUs",
    f"load average:           ${load_before} before, ${load_after} after",
    "",
    "container throughput (create, start, wait, remove; busybox true), containers/s:",
    f"  1 client:   {r1:8.1f}   ratio to runwasi's published {peer_rate}/s: {r1/peer_rate:5.2f}x",
    f"  8 clients:  {r8:8.1f}   ratio: {r8/peer_rate:5.2f}x",
    f"  64 clients: {r64:8.1f}   ratio: {r64/peer_rate:5.2f}x   (goal >= 10x)",
    "",
    f"density: {n} containers running sleep 3600"
    + ("" if n >= asked else f" ({asked} asked; the rest refused: {refused or 'no reason recorded'})"),
    f"  {map_note or 'vm.max_map_count unknown'}; the daemon's memory mappings: {maps_idle} idle, {maps_full} with {n} running ({(maps_full - maps_idle) / n:.1f} per container)",
    f"  daemon RSS idle {idle/1024:.1f} MB, with {n} running {full/1024:.1f} MB",
    f"  per container: {per:.3f} MB (RSS / {n}); growth over idle: {growth:.3f} MB",
    f"  ratio to runwasi's published ~{peer_mb} MB per container: {per/peer_mb:.4f}x (goal: under 1 MB)",
]
text = "\n".join(lines) + "\n"
open(sys.argv[1], "w").write(text)
sys.stdout.write("\n" + text + f"\nwritten: {sys.argv[1]}\n")
PY
