# Shared by the bench scripts; source it after setting WARMUP and RUNS.

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
