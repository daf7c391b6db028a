#!/usr/bin/env bash
# Builds the sample guests and lays out their Docker build contexts:
#   kubia/kubia.wasm                  (wasm32-wasip2 component)
#   kubia-http/kubia-http.wasm        (wasm32-wasip2 wasi:http proxy component)
#   probes/probes.wasm                (wasm32-wasip2: the escape suite's guest)
#   busybox/wasip2/, busybox/wasip1/  (bin/busybox + one symlink per applet, etc/, tmp/)
# Works from any directory; honours CARGO_TARGET_DIR (default: samples/target).
set -euo pipefail

# Applets symlinked into bin/. Keep in sync with src/applets/mod.rs (a unit
# test checks it). The network applets need wasi:sockets, so wasip2 only.
COMMON_APPLETS=(sh echo cat ls env hostname pwd mkdir rm sleep true false ps touch printf head tail wc grep cut sort uniq tee date uname id whoami tar top)
NET_APPLETS=(wget nc)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
target_dir="${CARGO_TARGET_DIR:-$here/target}"
case "$target_dir" in
  /*) ;;
  *) target_dir="$PWD/$target_dir" ;;
esac
export CARGO_TARGET_DIR="$target_dir"
manifest="$here/Cargo.toml"

# A fresh Rust has no wasm targets: add the missing ones first (rustup
# leaves installed ones alone, without the network).
if command -v rustup >/dev/null; then
  installed="$(rustup target list --installed)"
  for t in wasm32-wasip1 wasm32-wasip2; do
    grep -qx "$t" <<<"$installed" || rustup target add "$t"
  done
fi

cargo build --quiet --release --manifest-path "$manifest" --target wasm32-wasip2 -p busybox -p kubia -p kubia-http -p probes
cargo build --quiet --release --manifest-path "$manifest" --target wasm32-wasip1 -p busybox

install -m 0755 "$target_dir/wasm32-wasip2/release/kubia.wasm" "$here/kubia/kubia.wasm"
install -m 0755 "$target_dir/wasm32-wasip2/release/probes.wasm" "$here/probes/probes.wasm"
# A cdylib: cargo names it after the crate, with an underscore.
install -m 0755 "$target_dir/wasm32-wasip2/release/kubia_http.wasm" "$here/kubia-http/kubia-http.wasm"

# layout TARGET APPLET...: recreates busybox/TARGET/ as an image root.
layout() {
  local target="$1"
  shift
  local root="$here/busybox/$target"
  rm -rf "$root"
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  : >"$root/tmp/.keep"
  # The accounts `id`, `whoami` and `ps` name: root only, as in busybox.
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  install -m 0755 "$target_dir/wasm32-$target/release/busybox.wasm" "$root/bin/busybox"
  local applet
  for applet in "$@"; do
    ln -s busybox "$root/bin/$applet"
  done
}

layout wasip2 "${COMMON_APPLETS[@]}" "${NET_APPLETS[@]}"
layout wasip1 "${COMMON_APPLETS[@]}"

echo "built: $here/kubia/kubia.wasm, $here/kubia-http/kubia-http.wasm, $here/probes/probes.wasm, $here/busybox/wasip2/, $here/busybox/wasip1/"
