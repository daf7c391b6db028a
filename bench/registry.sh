#!/usr/bin/env bash
# Registry benchmark: `wrun pull` / `wrun push` against `skopeo copy`, both
# talking plain HTTP to docker-registry 2.8 on 127.0.0.1, with a multi-layer
# image of about 20 MB of varied files.
#
# Usually run through `make bench` (which builds target/release/wrun first);
# works from any directory. Needs docker-registry, skopeo, hyperfine, curl and
# python3 (apt). Raw hyperfine JSON and a text summary go to bench/results/.
# Exits non-zero only when something fails, never because a ratio is above
# the goal. See bench/README.md.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo="$PWD"
results="$repo/bench/results"
WRUN="$repo/target/release/wrun"
WARMUP=1
RUNS=10
GOAL=1.0

# shellcheck source=bench/lib.sh
source "$repo/bench/lib.sh"

for t in docker-registry skopeo hyperfine curl python3; do
  command -v "$t" >/dev/null 2>&1 || die "$t is needed (apt-get install $t)"
done
[ -x "$WRUN" ] || die "$WRUN is missing: run \`make release\` (or \`make bench\`)"

scratch="$(mktemp -d "${TMPDIR:-/tmp}/wrun-bench-registry.XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  remove_scratch "$scratch"
}
trap cleanup EXIT
# skopeo keeps a blob-info cache and reads credentials under $HOME: keep both
# private to this run. Diagnostics would cost time on one side only.
export HOME="$scratch/home"
mkdir -p "$HOME"
unset WRUN_LOG RUST_LOG WRUN_INSECURE_REGISTRIES DOCKER_CONFIG WRUN_ROOT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_registry NAME PORT: a docker-registry on 127.0.0.1:PORT with its
# storage under $scratch/NAME/data; its PID goes to $pids (killed on exit).
start_registry() {
  local dir="$scratch/$1" port="$2" pid
  mkdir -p "$dir"
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
EOF
  docker-registry serve "$dir/config.yml" </dev/null >"$dir/log" 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 300); do
    curl -sf "http://127.0.0.1:$port/v2/" >/dev/null && return
    kill -0 "$pid" 2>/dev/null || die "docker-registry exited: $(cat "$dir/log")"
    sleep 0.1
  done
  die "docker-registry did not start on 127.0.0.1:$port"
}

# --- 1. registries and the image (untimed) ------------------------------------

# `src` serves every pull and the "already exists" pushes; `cold` is wiped
# before each cold push, so every blob is uploaded and none can be mounted.
src_port="$(free_port)"
start_registry src "$src_port"
src_pid="${pids[-1]}"
cold_port="$(free_port)"
start_registry cold "$cold_port"
SRC="127.0.0.1:$src_port"
COLD="127.0.0.1:$cold_port"
say "docker-registry on $SRC (pulls) and $COLD (cold pushes)"

# Five COPY layers of about 4 MB each: per layer 12 files of random bytes
# (incompressible) and 8 of distinct text (compressible), so each layer has
# different content and digest.
ctx="$scratch/context"
mkdir -p "$ctx"
{
  echo "FROM scratch"
  for l in 1 2 3 4 5; do echo "COPY layer$l /data/layer$l"; done
  echo 'ENTRYPOINT ["/data/layer1/none.wasm"]'
} >"$ctx/Dockerfile"
for l in 1 2 3 4 5; do
  d="$ctx/layer$l"
  mkdir -p "$d/bin" "$d/text"
  for f in $(seq 12); do head -c $((170 * 1024)) /dev/urandom >"$d/bin/blob$f.bin"; done
  for f in $(seq 8); do
    seq -f "layer $l file $f line %g: the quick brown fox jumps over the lazy dog" 1 3500 >"$d/text/notes$f.txt"
  done
done
ctx_bytes="$(du -sb "$ctx" | cut -f1)"

IMG="$SRC/bench/img:v1"
SKOPEO_SAME="$SRC/bench/img-skopeo:v1"
COLD_IMG="$COLD/bench/img:v1"
src_root="$scratch/src-root"
src_layout="$scratch/src-layout"
say "building a $((ctx_bytes / 1024 / 1024)) MB, 5-layer image and pushing it"
"$WRUN" --root "$src_root" build -q -t "$IMG" "$ctx" >/dev/null
"$WRUN" --root "$src_root" tag "$IMG" "$COLD_IMG"
"$WRUN" --root "$src_root" push -q "$IMG" >/dev/null
# The same image as an OCI layout, skopeo's source for pushes.
skopeo copy -q --src-tls-verify=false "docker://$IMG" "oci:$src_layout:v1"
skopeo copy -q --dest-tls-verify=false "oci:$src_layout:v1" "docker://$SKOPEO_SAME"
image_bytes="$(du -sb "$src_layout/blobs" | cut -f1)"
layers="$(python3 -c 'import json,sys; i=json.load(open(sys.argv[1]+"/index.json")); d=i["manifests"][0]["digest"].split(":")[1]; m=json.load(open(sys.argv[1]+"/blobs/sha256/"+d)); print(len(m["layers"]))' "$src_layout")"
say "image: $layers layers, $((image_bytes / 1024)) KiB of blobs in the registry"

# --- 2. measure ---------------------------------------------------------------

mkdir -p "$results"
hyperfine_cmd

pull_root="$scratch/pull-root"
pull_layout="$scratch/pull-layout"
cold_data="$scratch/cold/data"
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

say "measuring: cold pull (empty store / empty layout)"
"${hf[@]}" --export-json "$results/registry-pull-cold.json" \
  --prepare "rm -rf $pull_root" --prepare "rm -rf $pull_layout" \
  "$WRUN --root $pull_root pull -q $IMG" \
  "skopeo copy -q --src-tls-verify=false docker://$IMG oci:$pull_layout:v1"

# The same, but wrun's state root already exists (created by `wrun images`):
# this separates creating the root (its database) from the transfer itself.
empty_root="$scratch/empty-root"
"$WRUN" --root "$empty_root" images -q >/dev/null
# That started a daemon for the root: stop it, so that the copies hold no
# live socket and no daemon outlives this run.
"$WRUN" --root "$empty_root" daemon stop >/dev/null 2>&1 || true
say "measuring: cold pull into an initialized, empty state root"
"${hf[@]}" --export-json "$results/registry-pull-cold-initialized.json" \
  --prepare "bash -c 'rm -rf $pull_root && cp -a $empty_root $pull_root'" \
  --prepare "rm -rf $pull_layout" \
  "$WRUN --root $pull_root pull -q $IMG" \
  "skopeo copy -q --src-tls-verify=false docker://$IMG oci:$pull_layout:v1"

say "measuring: warm pull (every layer already present)"
"${hf[@]}" --export-json "$results/registry-pull-warm.json" \
  "$WRUN --root $pull_root pull -q $IMG" \
  "skopeo copy -q --src-tls-verify=false docker://$IMG oci:$pull_layout:v1"

say "measuring: push, every blob already in the repository"
"${hf[@]}" --export-json "$results/registry-push-exists.json" \
  "$WRUN --root $src_root push -q $IMG" \
  "skopeo copy -q --dest-tls-verify=false oci:$src_layout:v1 docker://$SKOPEO_SAME"

say "measuring: cold push (registry storage wiped before each run)"
"${hf[@]}" --export-json "$results/registry-push-cold.json" \
  --prepare "rm -rf $cold_data" \
  "$WRUN --root $src_root push -q $COLD_IMG" \
  "skopeo copy -q --dest-tls-verify=false oci:$src_layout:v1 docker://$COLD_IMG"

load_after="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

# Sanity: the last cold pull gave wrun the pushed image, and the registry that
# served every pull is still the one we started.
kill -0 "$src_pid" 2>/dev/null || die "the source registry died during the run"
want="$("$WRUN" --root "$src_root" image inspect "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')"
got="$("$WRUN" --root "$pull_root" image inspect "$IMG" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["Id"])')"
[ "$want" = "$got" ] || die "pulled image ID $got differs from pushed $want"
# A push into the wiped registry really uploads every layer.
rm -rf "$cold_data"
pushed="$("$WRUN" --root "$src_root" push "$COLD_IMG" | grep -c ': Pushed$' || true)"
[ "$pushed" -eq "$layers" ] || die "a cold push uploaded $pushed of $layers layers"

# --- 3. report ----------------------------------------------------------------

commit="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  commit="$commit (with uncommitted changes)"
fi
cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //' || true)"

python3 - "$results/registry.txt" "$GOAL" \
  "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')" \
  "host=$(uname -srm), $(nproc) CPUs${cpu:+, $cpu}" \
  "wrun=$("$WRUN" --version) at $commit" \
  "skopeo=$(skopeo --version)" \
  "registry=$(docker-registry --version 2>&1 | head -1), plain HTTP on 127.0.0.1" \
  "image=$layers layers, $((ctx_bytes / 1024)) KiB of files, $((image_bytes / 1024)) KiB of blobs (gzip)" \
  "hyperfine=$(hyperfine --version), --warmup $WARMUP --runs $RUNS, shell: $shell_mode" \
  "load average=$load_before before, $load_after after (1, 5, 15 min)" \
  -- \
  "cold pull (empty store vs empty OCI layout)=$results/registry-pull-cold.json" \
  "cold pull, wrun's state root already initialized=$results/registry-pull-cold-initialized.json" \
  "warm pull (every layer already present)=$results/registry-pull-warm.json" \
  "push, every blob already in the repository=$results/registry-push-exists.json" \
  "cold push (empty registry, all blobs uploaded)=$results/registry-push-cold.json" <<'PY'
import json, math, sys

out, goal = sys.argv[1], float(sys.argv[2])
args = sys.argv[3:]
sep = args.index("--")
meta, pairs = args[:sep], args[sep + 1:]

def ms(s):
    return f"{s * 1000:.1f} ms"

lines = ["wrun registry benchmark: `wrun pull`/`wrun push` vs `skopeo copy`", ""]
lines += [f"  {m.split('=', 1)[0]}: {m.split('=', 1)[1]}" for m in meta]
lines += ["", f"Goal: wrun <= {goal:.1f}x skopeo's mean wall time.", ""]
for p in pairs:
    label, path = p.split("=", 1)
    with open(path, encoding="utf-8") as f:
        wrun, skopeo = json.load(f)["results"]
    lines.append(f"{label}  ({path})")
    for name, r in (("wrun", wrun), ("skopeo", skopeo)):
        lines.append(f"  {name:<7} {r['command']}")
        lines.append(
            f"  {'':<7} mean {ms(r['mean'])} ± {ms(r['stddev'] or 0.0)}"
            f"  (median {ms(r['median'])}, min {ms(r['min'])}, max {ms(r['max'])},"
            f" {len(r['times'])} runs; CPU user {ms(r['user'])}, system {ms(r['system'])})"
        )
    ratio = wrun["mean"] / skopeo["mean"]
    rel = math.hypot((wrun["stddev"] or 0.0) / wrun["mean"],
                     (skopeo["stddev"] or 0.0) / skopeo["mean"])
    verdict = "meets" if ratio <= goal else "misses"
    lines.append(f"  ratio wrun/skopeo: {ratio:.2f}x ± {ratio * rel:.2f}"
                 f"  ({verdict} the goal of <= {goal:.1f}x)")
    lines.append("")
text = "\n".join(lines)
print(text)
with open(out, "w", encoding="utf-8") as f:
    f.write(text)
PY
