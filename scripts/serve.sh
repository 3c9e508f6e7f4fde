#!/usr/bin/env bash
# Builds and runs `dialtone serve` with the embedded defaults (SQLite and recordings in
# ./dialtone-data, credentials generated and printed on first start). Extra arguments go to serve.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-lib.sh
ensure_build_deps
ensure_venv scripts/requirements-schema.txt
ensure_schema
cargo build --release -p dialtone
exec ./target/release/dialtone serve "$@"
