"""Whole-call transcription (`calling.transcribe`, SWML `transcribe`): the far end (sipp) speaks a
sentence the test synthesised with flite; when the transcription ends (its stop, or the call's end)
`calling.transcript.completed` reaches a real webhook server holding the words (calling-events.md
§9.2) — through a Whisper engine process when one is configured, through the embedded pocketsphinx
language model otherwise (docs/streaming.md "Transcription")."""
import os
import sys
import time

from test_calls import dial, sipp_done, wait_hook
from test_speech import write_speech_wav

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WHISPER = f"{sys.executable} {os.path.join(ROOT, 'scripts', 'asr', 'faster_whisper_engine.py')}"


def transcripts(hooks, path, n=1, timeout=60):
    return hooks.wait_on(path, n, timeout=timeout)


def words(text):
    return text.lower().replace(".", "").replace(",", "").split()


def check_shape(ev, call_id):
    assert ev["event_type"] in ("calling.transcript.completed", "calling.transcript.failed"), ev
    assert "event_channel" not in ev, ev
    assert set(ev) == {"event_type", "timestamp", "project_id", "space_id", "params"}, ev
    assert ev["params"]["call_id"] == call_id
    assert set(ev["params"]) <= {"id", "call_id", "segment_id", "text"}, ev


def test_rest_transcribe_through_whisper_when_the_call_ends(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, "the weather in paris is lovely today", tail_s=2.0)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER})
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.transcribe", "id": call_id,
                "params": {"control_id": "t1", "status_url": hooks.url("/transcript")}})
    assert r.status_code == 200, r.text
    assert r.json()["control_id"] == "t1"
    # One per call: a second answers 409; a stop of another id, 422; the call goes on.
    again = d.post({"command": "calling.transcribe", "id": call_id, "params": {"control_id": "t2"}})
    assert again.status_code == 409, again.text
    wrong = d.post({"command": "calling.transcribe.stop", "id": call_id, "params": {"control_id": "t2"}})
    assert wrong.status_code == 422, wrong.text
    # Not a recording of the call's own.
    rec_stop = d.post({"command": "calling.record.stop", "id": call_id, "params": {"control_id": "t1"}})
    assert rec_stop.status_code == 422, rec_stop.text
    time.sleep(5)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
    ev = transcripts(hooks, "/transcript")[0]
    check_shape(ev, call_id)
    assert ev["event_type"] == "calling.transcript.completed", ev
    got = words(ev["params"]["text"])
    assert [w for w in ["weather", "paris", "lovely", "today"] if w in got] == ["weather", "paris", "lovely",
                                                                                 "today"], got


def test_swml_transcribe_and_stop_with_the_embedded_engine(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, "please call me back tomorrow morning", tail_s=2.0)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    swml = {"version": "1.0.0", "sections": {"main": [
        {"transcribe": {"status_url": hooks.url("/transcript")}},
        {"play": {"url": "silence:5"}},
        {"transcribe_stop": {}},
        {"request": {"url": hooks.url("/vars"), "method": "POST",
                     "body": {"start": "${transcribe_result}", "stop": "${transcribe_stop_result}",
                              "id": "${transcribe_control_id}"}}},
        {"transcribe_stop": {}},
        {"request": {"url": hooks.url("/vars2"), "method": "POST", "body": {"stop": "${transcribe_stop_result}"}}},
        {"play": {"url": "silence:1"}},
    ]}}
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5, swml=swml)["id"]
    v = hooks.wait_on("/vars", 1, timeout=20)[0]
    assert v["start"] == "success" and v["stop"] == "success" and v["id"], v
    # Stopped already: a second stop fails the step (the document goes on).
    assert hooks.wait_on("/vars2", 1, timeout=10)[0]["stop"] == "failed"
    ev = transcripts(hooks, "/transcript")[0]
    check_shape(ev, call_id)
    assert ev["event_type"] == "calling.transcript.completed", ev
    got = words(ev["params"].get("text", ""))
    found = [w for w in ["please", "call", "back", "tomorrow", "morning"] if w in got]
    assert len(found) >= 2, got
    sipp_done(far)
