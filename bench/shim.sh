#!/usr/bin/env bash
# The containerd shim against runc, in the same run, through a private
# containerd 1.6 (Debian's, from `make target/tools/containerd`):
#  - `ctr run --rm` of busybox `echo hi`: wrun's busybox through
#    containerd-shim-wrun-v1, against runc running Debian's static busybox
#    (busybox-static), both from a rootfs directory (`--rootfs`), so that
#    both take the same path through containerd (hyperfine); wrun's image
#    through the native snapshotter is timed too, which adds containerd's
#    copy of the rootfs;
#  - tasks per second through the shim's task API, with 1 and 8 clients
#    (shim/examples/task_load.rs, after runwasi's stress test: one shim,
#    each client creating, starting, waiting for and deleting one task
#    after another), for wrun's shim and runc's in the same run; runwasi
#    publishes 330/s;
#  - the RSS of one shim holding a pod of two running containers (grouped
#    by the CRI sandbox-id annotation); runwasi: 22.7 MB per container;
#    and the memory a node spends per pod: the shims' PSS (which shares
#    the binary's code pages among them) over ten such pods.
#
# Needs root (containerd). Usually run through `make bench`; results go to
# bench/results/shim.txt. Exits non-zero only when something fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
results="$repo/bench/results"
tools="$repo/bench/.tools"
WRUN="$repo/target/release/wrun"
SHIM="$repo/target/release/containerd-shim-wrun-v1"
RUNS="${BENCH_SHIM_RUNS:-30}"
TASKS="${BENCH_SHIM_TASKS:-200}"
RUNWASI_TASKS_PER_SEC=330
RUNWASI_MB_PER_CONTAINER=22.7

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

[ "$(id -u)" -eq 0 ] || die "the shim benchmark runs containerd: run it as root"
apt_tool hyperfine
LOAD="$repo/target/release/examples/task_load"
if [ ! -x "$WRUN" ] || [ ! -x "$SHIM" ] || [ ! -x "$LOAD" ]; then
  say "building wrun, the shim and its load generator (release)"
  cargo build --release -p wrun -p wrun-shim
  cargo build --release -p wrun-shim --example task_load
fi
[ -x target/tools/containerd/usr/bin/containerd ] || make target/tools/containerd
ctrd="$repo/target/tools/containerd"
if [ ! -x "$tools/busybox-static/bin/busybox" ]; then
  say "fetching Debian's busybox-static for runc"
  mkdir -p "$tools/debs" && (cd "$tools/debs" && apt-get download busybox-static)
  rm -rf "$tools/busybox-static.x" && dpkg-deb -x "$tools"/debs/busybox-static_*.deb "$tools/busybox-static.x"
  mkdir -p "$tools/busybox-static/bin"
  install -m 0755 "$tools/busybox-static.x/bin/busybox" "$tools/busybox-static/bin/busybox"
  rm -rf "$tools/busybox-static.x"
fi
say "building the sample guests"
bash samples/build.sh

scratch="$(mktemp -d /tmp/wrun-bench-shim.XXXXXX)"
sock="$scratch/c.sock"
containerd_pid=""
shims() {
  # The shims this containerd started: their command line names its socket.
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q "containerd-shim-wrun-v1.*$sock" && basename "$p"
  done
  true
}
cleanup() {
  local p socket
  for p in $(shims); do
    # Its socket file outlives a killed shim: remove it too.
    socket="$({ tr '\0' '\n' <"/proc/$p/cmdline"; } 2>/dev/null | grep -A1 -x -- -socket | tail -n 1 || true)"
    kill -9 "$p" 2>/dev/null || true
    case "$socket" in unix:///run/containerd/s/*) rm -f "${socket#unix://}" ;; esac
  done
  if [ -n "$containerd_pid" ]; then
    kill "$containerd_pid" 2>/dev/null || true
    wait "$containerd_pid" 2>/dev/null || true
  fi
  { grep -o " $scratch[^ ]*" /proc/self/mounts || true; } | sort -r | while read -r m; do umount -l "$m" || true; done
  WRUN_ROOT="$scratch/wrun" "$WRUN" daemon stop >/dev/null 2>&1 || true
  remove_scratch "$scratch"
}
trap cleanup EXIT

# The runc rootfs: Debian's static busybox alone.
rootfs="$scratch/runc-rootfs"
mkdir -p "$rootfs/bin" "$rootfs/proc" "$rootfs/dev" "$rootfs/sys"
cp "$tools/busybox-static/bin/busybox" "$rootfs/bin/busybox"

cat >"$scratch/config.toml" <<EOF
version = 2
root = "$scratch/root"
state = "$scratch/state"
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$scratch/opt"
EOF
export PATH="$repo/target/release:$ctrd/usr/bin:$ctrd/usr/sbin:$PATH"
WRUN_SHIM_CACHE_DIR="$scratch/cache" containerd --config "$scratch/config.toml" >"$scratch/containerd.log" 2>&1 &
containerd_pid=$!
ctr() { command ctr --address "$sock" --namespace bench "$@"; }
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.05; done
ctr version >/dev/null || die "containerd did not start: $(tail -5 "$scratch/containerd.log")"

WRUN_ROOT="$scratch/wrun" "$WRUN" build -q -t busybox samples/busybox >/dev/null
WRUN_ROOT="$scratch/wrun" "$WRUN" save -o "$scratch/busybox.tar" busybox
ctr images import --snapshotter native "$scratch/busybox.tar" >/dev/null
# The same image as a rootfs directory, for `--rootfs`: its layers, in order.
python3 - "$scratch/busybox.tar" "$scratch/wrun-rootfs" <<'PY'
import io, json, sys, tarfile
archive = tarfile.open(sys.argv[1])
def blob(digest):
    return archive.extractfile("blobs/" + digest.replace(":", "/")).read()
index = json.loads(archive.extractfile("index.json").read())
manifest = json.loads(blob(index["manifests"][0]["digest"]))
for layer in manifest["layers"]:
    tarfile.open(fileobj=io.BytesIO(blob(layer["digest"]))).extractall(sys.argv[2], filter="tar")
PY
image=docker.io/library/busybox:latest
# Warm: the first run compiles the guest into the shim's cache.
[ "$(ctr run --rm --snapshotter native --runtime io.containerd.wrun.v1 "$image" warm echo hi)" = hi ] ||
  die "the shim did not run busybox"
[ "$(ctr run --rm --rootfs --runtime io.containerd.wrun.v1 "$scratch/wrun-rootfs" warm-dir echo hi)" = hi ] ||
  die "the shim did not run busybox from a rootfs directory"
[ "$(ctr run --rm --rootfs --runtime io.containerd.runc.v2 "$rootfs" warm-runc /bin/busybox echo hi)" = hi ] ||
  die "runc did not run busybox-static"

say "ctr run --rm echo: wrun shim against runc ($RUNS runs each)"
a="$(command -v ctr) --address $sock --namespace bench"
# Each run needs a fresh container ID: the shell makes one.
hyperfine --warmup 3 --runs "$RUNS" --export-json "$scratch/run.json" \
  -n wrun-shim "$a run --rm --rootfs --runtime io.containerd.wrun.v1 $scratch/wrun-rootfs w-\$(date +%s%N) echo hi" \
  -n runc "$a run --rm --rootfs --runtime io.containerd.runc.v2 $rootfs r-\$(date +%s%N) /bin/busybox echo hi" \
  -n wrun-shim-image "$a run --rm --snapshotter native --runtime io.containerd.wrun.v1 $image i-\$(date +%s%N) echo hi" >&2
read -r shim_ms runc_ms image_ms < <(python3 -c '
import json, sys
r = {x["command"]: x["mean"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
print("%.1f %.1f %.1f" % (r["wrun-shim"], r["runc"], r["wrun-shim-image"]))' "$scratch/run.json")

# Task bundles for the load generator: runc's default spec, with each
# runtime's rootfs directory, shared read-only by every task.
(cd "$scratch" && command runc spec)
python3 - "$scratch" "$rootfs" <<'PY'
import json, sys
scratch, runc_rootfs = sys.argv[1], sys.argv[2]
spec = json.load(open(f"{scratch}/config.json"))
for name, root in (("wrun", f"{scratch}/wrun-rootfs"), ("runc", runc_rootfs)):
    spec["root"] = {"path": root, "readonly": True}
    json.dump(spec, open(f"{scratch}/{name}-spec.json", "w"))
PY
# load RUNTIME CLIENTS: tasks per second through RUNTIME's shim.
load() {
  local work="$scratch/load-$1-$2"
  case "$1" in
  wrun) "$LOAD" "$SHIM" "$sock" "$scratch/wrun-spec.json" "$work" "$TASKS" "$2" -- sleep 3600 -- echo hi ;;
  runc) "$LOAD" "$ctrd/usr/bin/containerd-shim-runc-v2" "$sock" "$scratch/runc-spec.json" "$work" "$TASKS" "$2" \
    -- /bin/busybox sleep 3600 -- /bin/busybox echo hi ;;
  esac
}
say "tasks per second through the task API, 1 and 8 clients ($TASKS tasks each)"
tps1="$(load wrun 1)"
tps8="$(load wrun 8)"
runc1="$(load runc 1)"
runc8="$(load runc 8)"

say "RSS of one shim holding a pod of two containers"
ctr run -d --snapshotter native --runtime io.containerd.wrun.v1 \
  --annotation io.kubernetes.cri.sandbox-id=bench-pod "$image" pod-a sleep 600 >/dev/null
ctr run -d --snapshotter native --runtime io.containerd.wrun.v1 \
  --annotation io.kubernetes.cri.sandbox-id=bench-pod "$image" pod-b sleep 600 >/dev/null
sleep 0.5
pids="$(shims)"
[ "$(echo "$pids" | wc -w)" -eq 1 ] || die "expected one shim for the pod, found: $pids"
rss_kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$pids/status")"
# Nine more pods like it: the node's memory per pod is the shims' PSS,
# each shared page counted once across them.
for i in $(seq 2 10); do
  for c in a b; do
    ctr run -d --snapshotter native --runtime io.containerd.wrun.v1 \
      --annotation io.kubernetes.cri.sandbox-id="bench-pod-$i" "$image" "pod-$i-$c" sleep 600 >/dev/null
  done
done
sleep 0.5
pids="$(shims)"
[ "$(echo "$pids" | wc -w)" -eq 10 ] || die "expected ten shims for ten pods, found: $pids"
pss_kb="$(for p in $pids; do awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup"; done | awk '{s += $1} END {print s / NR}')"

mkdir -p "$results"
{
  echo "# bench/shim.sh, $(date -u +%Y-%m-%dT%H:%MZ), containerd $(command ctr --version | awk '{print $3}')"
  printf 'ctr run --rm echo: wrun shim %s ms, runc %s ms, ratio %s (goal <= 0.5)\n' \
    "$shim_ms" "$runc_ms" "$(python3 -c "print(f'{$shim_ms / $runc_ms:.2f}')")"
  printf 'ctr run --rm echo from the image (native snapshotter copy): wrun shim %s ms\n' "$image_ms"
  printf 'tasks/s through the shim: 1 client %s, 8 clients %s (runwasi publishes %s)\n' \
    "$tps1" "$tps8" "$RUNWASI_TASKS_PER_SEC"
  printf 'tasks/s through runc'"'"'s shim, same harness: 1 client %s, 8 clients %s\n' "$runc1" "$runc8"
  printf 'shim RSS, one pod of two containers: %.1f MB (goal < 10 MB per pod; runwasi %s MB per container)\n' \
    "$(python3 -c "print($rss_kb / 1024)")" "$RUNWASI_MB_PER_CONTAINER"
  printf 'node memory per pod (shim PSS, ten pods of two containers): %.1f MB\n' \
    "$(python3 -c "print($pss_kb / 1024)")"
} | tee "$results/shim.txt"
