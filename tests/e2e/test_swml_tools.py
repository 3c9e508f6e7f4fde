"""`dialtone swml validate` and `dialtone swml run` on real documents."""
import json
import re
import os
import subprocess

import pytest

from conftest import BINARY, EXAMPLES


def run(*args):
    return subprocess.run([BINARY, "swml", *args], capture_output=True, text=True, timeout=60)


def examples():
    if not os.path.isdir(EXAMPLES):
        return []
    return sorted(f for f in os.listdir(EXAMPLES) if f.endswith((".json", ".yaml")))


@pytest.mark.parametrize("name", examples())
def test_every_shared_example_validates(name):
    r = run("validate", os.path.join(EXAMPLES, name))
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout


def test_validate_reports_schema_and_semantic_errors(tmp_path):
    bad_schema = tmp_path / "bad.json"
    bad_schema.write_text(json.dumps({"sections": {"main": [{"no_such_method": {}}]}}))
    r = run("validate", str(bad_schema))
    assert r.returncode == 1 and "schema" in r.stderr
    bad_refs = tmp_path / "refs.yaml"
    bad_refs.write_text("sections:\n  main:\n    - goto: {label: nowhere}\n    - execute: {dest: missing}\n    - play: {url: 'say:${1 +}'}\n")
    r = run("validate", str(bad_refs))
    assert r.returncode == 1
    assert "nowhere" in r.stderr and "missing" in r.stderr and "does not parse" in r.stderr
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("{{{ not yaml [")
    assert run("validate", str(garbage)).returncode == 1


def test_run_traces_a_document_on_virtual_time(tmp_path):
    doc = tmp_path / "flow.yaml"
    doc.write_text(
        "sections:\n  main:\n"
        "    - answer: {}\n"
        "    - set: {n: 0}\n"
        "    - label: again\n"
        "    - set: {n: '${n + 1}'}\n"
        "    - play: {url: 'silence:1'}\n"
        "    - goto: {label: again, when: 'n < 3'}\n"
        "    - play: {url: 'say:done after ${n}'}\n"
    )
    r = run("run", str(doc), "--vars")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[1:] == ["answer", "(max_duration", "14400s)"]
    assert sum("silence:1" in l for l in lines) == 3
    assert any("say:done after 3" in l for l in lines)
    assert any(l.strip().startswith("3.") and "say:done" in l for l in lines), r.stdout
    trace = [l for l in lines if re.match(r"^\s*\d+\.\d{3}s  ", l)]
    assert trace[-1].endswith("hangup (hangup)"), trace
    assert '"n": 3' in r.stdout


def test_run_reports_unimplemented_methods_visibly(tmp_path):
    path = tmp_path / "sms.json"
    path.write_text(json.dumps({"version": "1.0.0", "sections": {"main": [
        {"answer": {}},
        {"send_sms": {"to_number": "+15551230000", "from_number": "+15551110000", "body": "hi"}}]}}))
    r = run("run", str(path))
    assert r.returncode == 0, r.stderr
    assert "not implemented" in r.stdout and "`send_sms`" in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1].endswith("hangup (error)")


def test_run_simulates_the_ai_agent_without_a_model():
    # No model in a simulation: the agent says it cannot answer, the report is still sent, the script goes on.
    path = os.path.join(EXAMPLES, "18-ai-agent.json")
    if not os.path.exists(path):
        pytest.skip("shared examples not present")
    r = run("run", path)
    assert r.returncode == 0, r.stderr
    assert "ai model turn (1 messages, 2 tools)" in r.stdout, r.stdout
    assert "JavaScript" not in r.stdout, "the data_map templates are not SWML expressions"
    assert "request POST https://hooks.example.com/ai/summary" in r.stdout, r.stdout
    assert "finished with result failed" in r.stdout, r.stdout


def test_run_simulates_a_voicemail_recording_with_nobody_speaking():
    path = os.path.join(EXAMPLES, "02-voicemail.json")
    if not os.path.exists(path):
        pytest.skip("shared examples not present")
    r = run("run", path)
    assert r.returncode == 0, r.stderr
    assert "calling.record" in r.stdout and '"format":"mp3"' in r.stdout, r.stdout
    # Silence in a simulation: the recording ends with no_input, so the apology branch plays.
    assert "could not record your message" in r.stdout, r.stdout
    assert r.stdout.strip().splitlines()[-1].endswith("hangup (hangup)")


def test_validate_accepts_the_superset_and_reports_the_sdk_schema_as_a_lint(tmp_path):
    gap = tmp_path / "gap.yaml"
    gap.write_text("sections:\n  main:\n"
                   "    - stream: {url: 'wss://media.example.net/s', an_extra: 1}\n"
                   "    - send_sms: {to_number: '+15551230000', from_number: '+15551239999', body: hi,"
                   " status_callback: 'https://hooks.example.net/sms'}\n")
    r = run("validate", str(gap))
    assert r.returncode == 0, r.stderr
    assert "valid" in r.stdout
    assert "warning: /sections/main/0/stream/an_extra" in r.stderr and "relay_script_method_parameter_undefined" in r.stderr
    assert "schema lint (signalwire-sdk 3.7.5" in r.stderr and "informational" in r.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("sections:\n  main:\n    - play: {url: 'say:a', urls: ['say:b']}\n")
    r = run("validate", str(bad))
    assert r.returncode == 1
    assert "relay_script_method_parameter_conflict" in r.stderr and "/sections/main/0/play" in r.stderr
