#!/usr/bin/env bash
# Builds and runs `dialtone serve` with the embedded defaults (SQLite and recordings in
# ./dialtone-data, credentials generated and printed on first start). Extra arguments go to serve.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup-lib.sh
ensure_build_deps
ensure_venv scripts/requirements-schema.txt
ensure_schema
ensure_local_model
# The embedded AI model serves when no ai_base_url is configured (docs/ai.md).
if [ -z "${DIALTONE_NO_LOCAL_MODEL:-}" ]; then
  export DIALTONE_AI_LOCAL_COMMAND="${DIALTONE_AI_LOCAL_COMMAND:-$VENV/bin/python $PWD/scripts/ai/local_model.py --port {port}}"
fi
cargo build --release -p dialtone
exec ./target/release/dialtone serve "$@"
