#!/usr/bin/env bash
# CPU flame graphs of the server under the benchmark loads (issue 13: profiles first).
#
#   cargo build --release -p dialtone && cargo install inferno
#   bash bench/profile.sh [out_dir]        # default docs/perf
#
# For each load, bench/dial_load.py (or stream_load.py) runs the release server; once its calls are
# up, `perf record -g` samples the server process for 10 s at 499 Hz, and inferno folds the stacks
# into an SVG. Needs perf (Debian `linux-perf`) and permission to profile (root, or
# kernel.perf_event_paranoid <= 1).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-docs/perf}"
mkdir -p "$out"
command -v perf >/dev/null || { echo "perf is not installed (apt install linux-perf)"; exit 1; }
command -v inferno-flamegraph >/dev/null || { echo "inferno is not installed (cargo install inferno)"; exit 1; }

profile() {  # name, seconds to wait for the calls, load command...
  local name=$1 wait=$2
  shift 2
  "$@" > "/tmp/profile-$name.txt" 2>&1 &
  local load=$!
  sleep "$wait"
  local pid
  pid=$(pgrep -n -f "target/release/dialtone serve")
  perf record -F 499 -g -p "$pid" -o "/tmp/perf-$name.data" -- sleep 10 > /dev/null 2>&1
  wait "$load" || true
  perf script -i "/tmp/perf-$name.data" 2> /dev/null | inferno-collapse-perf > "/tmp/perf-$name.folded"
  inferno-flamegraph --title "dialtone: $name" < "/tmp/perf-$name.folded" > "$out/$name.svg"
  echo "$out/$name.svg ($(wc -l < "/tmp/perf-$name.folded") stacks)"
}

profile playing-500 10 python3 bench/dial_load.py --calls 500 --rate 200 --play --hold 20
profile listening-500 12 python3 bench/dial_load.py --calls 500 --rate 200 --listen --hold 20
profile setup-1000-per-s 1 python3 bench/dial_load.py --calls 2000 --rate 1000 --hold 10
profile streams-100 12 python3 bench/stream_load.py --calls 100 --hold 20 --streamed-only
