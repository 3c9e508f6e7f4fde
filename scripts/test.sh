#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit/integration tests (cargo), then the end-to-end
# scenarios against the real binary with real peers (sipp, the official SignalWire SDK).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-lib.sh
ensure_build_deps
# sipp: the far-end peer of the SIP adapter tests; openssl: their TLS test CA; mpg123: decodes
# mp3 recordings in the end-to-end tests (an MP3 decoder nobody on the team wrote); flite: the
# far end's speech in the speech and detection tests; baresip-core: the softphone of the interop
# codec matrix (tests/e2e/test_interop.py).
apt_install sip-tester openssl mpg123 flite baresip-core
ensure_venv tests/e2e/requirements.txt
ensure_schema
ensure_local_model

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
if have cargo-nextest; then
  cargo nextest run --workspace --no-fail-fast
else
  cargo test --workspace --no-fail-fast
fi
echo "== end-to-end"
cargo build -p dialtone
export DIALTONE_BIN="$PWD/target/debug/dialtone"
"$VENV/bin/python" -m pytest tests/e2e -n 2 --dist loadgroup -q -p no:cacheprovider --timeout 120 "$@"
