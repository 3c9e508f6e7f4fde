#!/usr/bin/env bash
# Builds restsend/rustpbx (release, default features) for bench/side_by_side.py, outside CI: it
# takes ~25 min on a 2-core machine. Source: RUSTPBX_GIT (a clone URL or local git dir of
# restsend/rustpbx); the tree goes to bench/rustpbx/src (git-ignored), the binary to
# bench/rustpbx/src/target/release/rustpbx.
#
# rustpbx ships no Cargo.lock and rsipstack 0.6.10 changed make_call_id() to two arguments (a
# breaking change inside 0.6.x), so a fresh resolve does not compile: rsipstack is pinned to 0.6.9.
# Verified with rustpbx 4967c05 (0.5.0-rc.1).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="${RUSTPBX_SRC:-$HERE/src}"
if [ ! -d "$SRC/.git" ]; then
    : "${RUSTPBX_GIT:?set RUSTPBX_GIT to a clone source of restsend/rustpbx}"
    git clone -q "$RUSTPBX_GIT" "$SRC"
fi
echo "rustpbx commit: $(git -C "$SRC" rev-parse HEAD) ($(git -C "$SRC" log -1 --format=%cd))" >&2
if [ ! -x "$SRC/target/release/rustpbx" ]; then
    (cd "$SRC" && { [ -f Cargo.lock ] || cargo generate-lockfile; } && cargo update -q -p rsipstack --precise 0.6.9)
    start=$(date +%s)
    (cd "$SRC" && nice -n 15 cargo build --release --bin rustpbx)
    echo "build took $(( $(date +%s) - start )) s" >&2
fi
echo "$SRC/target/release/rustpbx"
