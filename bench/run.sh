#!/usr/bin/env bash
# Startup benchmark: `wrun run --rm busybox true`, end to end through the
# daemon (which keeps the engine and the compiled code warm), against the
# same guest under `wasmtime run`, for the WASIp2 component and the WASIp1
# module.
#
# Usually run through `make bench` (which builds target/release/wrun first);
# works from any directory. Installs hyperfine (apt) and wasmtime-cli 48
# (cargo, into bench/.tools/) when missing. Raw hyperfine JSON and a text
# summary go to bench/results/. Exits non-zero only when something fails,
# never because a ratio is above the goal. See bench/README.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
bench="$repo/bench"
tools="$bench/.tools"
results="$bench/results"

WASMTIME_MAJOR=48
WRUN="target/release/wrun"
WARMUP=5
RUNS=50

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

# --- 1. tools ---------------------------------------------------------------

apt_tool hyperfine
pinned_wasmtime "$tools" "$WASMTIME_MAJOR"
# Put the pinned wasmtime first so the commands below read `wasmtime run ...`.
export PATH="$tools/bin:$PATH"

# --- 2. guests, state root, images -------------------------------------------

if [ ! -x "$WRUN" ]; then
  say "building wrun (release)"
  cargo build --release -p wrun
fi

say "building the sample guests"
bash samples/build.sh

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wrun-bench.XXXXXX")"
cleanup() {
  # Stop the daemon the first run started (this root's, by its socket).
  "$WRUN" daemon stop >/dev/null 2>&1 || true
  remove_scratch "$scratch"
}
trap cleanup EXIT

fresh_state "$scratch"
# Diagnostics would cost time on one side only.
unset WRUN_LOG RUST_LOG WASMTIME_LOG

say "building busybox:latest and busybox:wasip1 into a fresh state root"
"$WRUN" build -q -t busybox:latest samples/busybox
"$WRUN" build -q -t busybox:wasip1 --build-arg TARGET=wasip1 samples/busybox

# The four commands, as hyperfine will run them.
P2_WRUN="$WRUN run --rm busybox true"
P2_WASMTIME="wasmtime run samples/busybox/wasip2/bin/busybox true"
P1_WRUN="$WRUN run --rm busybox:wasip1 true"
P1_WASMTIME="wasmtime run samples/busybox/wasip1/bin/busybox true"

# --- 3. warm the compile caches and check the output ------------------------

# entries DIR INCLUDE EXCLUDE: the compiled-code files under DIR (names
# matching INCLUDE but not EXCLUDE), one "path size mtime" line each. Only the
# code itself: wasmtime's entries are bare hashes, next to which its background
# worker keeps .stats files and *.wip-* temporaries (left behind when a process
# exits mid-write); wrun's are *.cwasm, written via .tmp* files.
entries() {
  [ -d "$1" ] || return 0
  find "$1" -type f -name "$2" ! -name "$3" -printf '%P %s %T@\n' | sort
}
count() { if [ -n "$1" ]; then printf '%s\n' "$1" | wc -l; else echo 0; fi; }

# check CMD: runs CMD once (no shell, like hyperfine -N) and insists it
# succeeds and prints nothing.
check() {
  local out
  # shellcheck disable=SC2086 # the commands are plain words, split on purpose
  out="$($1 2>&1)" || die "failed: $1"$'\n'"$out"
  [ -z "$out" ] || die "unexpected output from: $1"$'\n'"$out"
}

wasmtime_cache="$XDG_CACHE_HOME/wasmtime"
wrun_cache="$WRUN_ROOT/cache/compiled"

say "warming the compile caches"
for cmd in "$P2_WRUN" "$P2_WASMTIME" "$P1_WRUN" "$P1_WASMTIME"; do
  check "$cmd"
done
wasmtime_before="$(entries "$wasmtime_cache" '*' '*.*')"
wrun_before="$(entries "$wrun_cache" '*.cwasm' '.*')"
# A second round must be served from the caches: nothing is (re)written.
for cmd in "$P2_WRUN" "$P2_WASMTIME" "$P1_WRUN" "$P1_WASMTIME"; do
  check "$cmd"
done
# same_entries WHO BEFORE AFTER: fails, showing the difference, if they differ.
same_entries() {
  [ "$2" = "$3" ] && return 0
  diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") >&2 || true
  die "$1's compile cache changed after warm-up"
}
same_entries wasmtime "$wasmtime_before" "$(entries "$wasmtime_cache" '*' '*.*')"
same_entries wrun "$wrun_before" "$(entries "$wrun_cache" '*.cwasm' '.*')"
n="$(count "$wasmtime_before")"
if [ "$n" -gt 0 ]; then
  wasmtime_cache_state="enabled (wasmtime's default), warm: $n compiled entries under \$XDG_CACHE_HOME/wasmtime"
else
  wasmtime_cache_state="disabled (wasmtime's default config wrote no cache files): wasmtime compiles on every run"
fi
n="$(count "$wrun_before")"
[ "$n" -gt 0 ] || die "wrun wrote nothing to its compile cache ($wrun_cache)"
wrun_cache_state="enabled, warm: $n compiled entries under \$WRUN_ROOT/cache/compiled"
say "wrun compile cache: $wrun_cache_state"
say "wasmtime compile cache: $wasmtime_cache_state"

# --- 4. measure ---------------------------------------------------------------

mkdir -p "$results"
hyperfine_cmd

# Other work on the machine (a build, say) skews both sides unevenly: wrun
# waits on fsync, wasmtime does not. Record the load so a noisy run shows.
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
say "measuring: WASIp2 component"
"${hf[@]}" --export-json "$results/startup-p2.json" "$P2_WRUN" "$P2_WASMTIME"
say "measuring: WASIp1 module"
"${hf[@]}" --export-json "$results/startup-p1.json" "$P1_WRUN" "$P1_WASMTIME"

load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

# --- 5. report ----------------------------------------------------------------

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)"

python3 "$bench/summarize.py" \
  --out "$results/startup.txt" \
  --meta "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
  --meta "host=$(uname -srm), $(nproc) CPUs${cpu:+, $cpu}" \
  --meta "wrun=$("$WRUN" --version) at $commit" \
  --meta "wasmtime=$(wasmtime --version)" \
  --meta "hyperfine=$(hyperfine --version), --warmup $WARMUP --runs $RUNS, shell: $shell_mode" \
  --meta "load average=$load_before before, $load_after after (1, 5, 15 min)" \
  --meta "wrun compile cache=$wrun_cache_state" \
  --meta "wasmtime compile cache=$wasmtime_cache_state" \
  --pair "WASIp2 component=$results/startup-p2.json" \
  --pair "WASIp1 module=$results/startup-p1.json"
