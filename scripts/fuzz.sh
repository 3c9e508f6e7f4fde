#!/usr/bin/env bash
# Runs the cargo-fuzz targets (fuzz/), one at a time, single process.
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]   (default: 60 s, every target)
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`); without them it says
# so and exits 0: the stable smoke test (`cargo nextest run -p fuzzing`, part of the normal
# test suite) is what CI always runs. New inputs go to fuzz/target/corpus/<target> (seeded from
# the checked-in fuzz/corpus/<target>, which is left alone); crashes go to
# fuzz/artifacts/<target>/.
set -euo pipefail
cd "$(dirname "$0")/.."

secs="${1:-60}"
shift || true
if ! cargo +nightly --version >/dev/null 2>&1; then
  echo "fuzz: skipped (no nightly toolchain; the stable smoke test covers the targets)"
  exit 0
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: skipped (cargo-fuzz is not installed: cargo install cargo-fuzz)"
  exit 0
fi
cd fuzz
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo +nightly fuzz list)
fi
CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-1}" cargo +nightly fuzz build --debug-assertions
for t in "${targets[@]}"; do
  work="target/corpus/$t"
  mkdir -p "$work"
  echo "== fuzz $t (${secs}s)"
  cargo +nightly fuzz run --debug-assertions "$t" "$work" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=20 -rss_limit_mb=2048 -print_final_stats=1
done
