# Shared set-up for scripts/serve.sh and scripts/test.sh: installs what is missing, nothing else.
# Debian 12 with the Rust toolchain is the reference machine.

export DEBIAN_FRONTEND=noninteractive
have() { command -v "$1" >/dev/null 2>&1; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    as_root apt-get update -qq
    as_root apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Build dependencies of the server itself.
ensure_build_deps() {
  apt_install pkg-config python3-venv flite1-dev libopus-dev libmp3lame-dev libspandsp-dev ghostscript libtiff-tools
  # The embedded speech recogniser: pocketsphinx's libraries and its US English model, loaded
  # at run time (the -dev packages are not needed and do not install on every Debian 12 image).
  apt_install libpocketsphinx3 libsphinxbase3 pocketsphinx-en-us
}

# A private Python environment for the SWML schema (shipped in signalwire-sdk) and the tests.
VENV="${DIALTONE_VENV:-$PWD/.venv}"
ensure_venv() {
  if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
  fi
  if ! "$VENV/bin/python" -c "import signalwire" >/dev/null 2>&1 || [ -n "${1:-}" ]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "${1:-tests/e2e/requirements.txt}"
  fi
}

# The SWML JSON Schema is SignalWire's (MIT); dialtone embeds it at build time without vendoring it.
ensure_schema() {
  if [ -z "${DIALTONE_SWML_SCHEMA:-}" ]; then
    local schema
    schema=$("$VENV/bin/python" -c "import importlib.util,os;s=importlib.util.find_spec('signalwire');print(os.path.join(os.path.dirname(s.origin),'schema.json'))" 2>/dev/null || true)
    if [ -n "$schema" ] && [ -f "$schema" ]; then
      export DIALTONE_SWML_SCHEMA="$schema"
    fi
  fi
}
