# shellcheck shell=bash
# Shared by the bench scripts: messages, root and tool installation, and
# hyperfine's command line (call hyperfine_cmd after setting WARMUP and RUNS).

say() { printf '==> %s\n' "$*" >&2; }
die() {
  printf 'bench: %s\n' "$*" >&2
  exit 1
}

# as_root CMD...: runs CMD as root (directly, or through sudo).
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

# apt_tool NAME: installs Debian's NAME (apt) when its command is missing.
apt_tool() {
  if ! command -v "$1" >/dev/null 2>&1; then
    say "installing $1 (apt)"
    as_root apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -o DPkg::Lock::Timeout=600 "$1"
  fi
  command -v "$1" >/dev/null 2>&1 || die "$1 is not on PATH after installing it"
}

# pinned_wasmtime TOOLS MAJOR: installs wasmtime-cli MAJOR.x into TOOLS/bin
# unless it is there already.
pinned_wasmtime() {
  local tools="$1" major="$2"
  if ! "$tools/bin/wasmtime" --version 2>/dev/null | grep -Eq "^wasmtime(-cli)? $major\."; then
    say "installing wasmtime-cli $major into bench/.tools (this takes a while)"
    cargo install --locked wasmtime-cli --version "^$major" --root "$tools"
    "$tools/bin/wasmtime" --version 2>/dev/null | grep -Eq "^wasmtime(-cli)? $major\." ||
      die "bench/.tools/bin/wasmtime does not report version $major.x"
  fi
}

# hyperfine_cmd: sets the array `hf` to the hyperfine command line, and
# `shell_mode` to how commands are run. -N (--shell=none) runs them
# directly, without a shell in between, where this hyperfine supports it.
hyperfine_cmd() {
  hf=(hyperfine --warmup "$WARMUP" --runs "$RUNS")
  if hyperfine --help 2>&1 | grep -Eq -- '(^|[[:space:]])-N(,|[[:space:]]|$)'; then
    hf+=(-N)
    shell_mode="none (-N)"
  else
    shell_mode="default shell (this hyperfine has no -N)"
  fi
}

# remove_scratch DIR: deletes a benchmark's scratch tree. A guest may leave
# read-only directories behind, so the tree is made writable first.
remove_scratch() {
  chmod -R u+w "$1" 2>/dev/null || true
  rm -rf "$1"
}

# fresh_state DIR: exports a fresh wrun state root and a fresh home for
# wasmtime's compile cache under DIR (wasmtime's default cache config puts it
# under $XDG_CACHE_HOME/wasmtime; wrun keeps its own under the state root and
# does not read XDG_CACHE_HOME).
fresh_state() {
  export WRUN_ROOT="$1/wrun-root"
  export XDG_CACHE_HOME="$1/xdg-cache"
  mkdir -p "$WRUN_ROOT" "$XDG_CACHE_HOME"
}

# wait_ready NAME URL [PID]: polls URL for up to 10 s until it answers with
# kubia's body; fails if it does not (or if PID exits first).
wait_ready() {
  local name="$1" url="$2" pid="${3:-}" body
  for _ in $(seq 100); do
    if body="$(curl -sf --max-time 1 "$url")"; then
      case "$body" in
        "you've hit "*) return 0 ;;
        *) die "$name answered '$body' at $url" ;;
      esac
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    sleep 0.1
  done
  return 1
}
