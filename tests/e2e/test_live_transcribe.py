"""Live transcription (docs/ai.md "Live transcription"): `calling.live_transcribe` on a real call, through Whisper
(faster-whisper tiny.en as dialtone's free-form recogniser). The far end (sipp) says one sentence in flite speech,
dialtone plays another to it; both legs come to the webhook as utterances as they are recognised — the far end's as
`remote-caller`, dialtone's own as `local-caller` — and `stop` sends the model's summary of the transcript (the
scripted OpenAI-compatible server) and the `stopped` state. SWML `live_transcribe` starts the same way."""
import time

from llm_server import ScriptedModel
from test_calls import dial, sipp_done, wait_hook
from test_speech import write_speech_wav
from test_transcribe import WHISPER, words

REMOTE = "the delivery date is next tuesday"


def live_events(hooks, path, kind, n, timeout):
    deadline = time.time() + timeout
    got = []
    while time.time() < deadline:
        got = [e for e in hooks.on(path) if e["params"].get("kind") == kind]
        if len(got) >= n:
            return got
        time.sleep(0.1)
    return got


def test_rest_live_transcribe_hears_both_legs_and_summarizes(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, REMOTE, tail_s=8.0)
    model = ScriptedModel([{"text": "The caller asked about a delivery on Tuesday."}])
    try:
        far = sipp("uas_stream_wav.xml")
        d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER, "DIALTONE_AI_BASE_URL": model.base_url})
        call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
        wait_hook(hooks, call_id, "answered")
        # Nothing runs yet: stop and summarize are refused.
        for action in ["stop", {"summarize": {}}]:
            r = d.post({"command": "calling.live_transcribe", "id": call_id, "params": {"action": action}})
            assert r.status_code == 422, r.text
        r = d.post({"command": "calling.live_transcribe", "id": call_id, "params": {"action": {"start": {
            "lang": "en-US", "direction": ["remote-caller", "local-caller"], "webhook": hooks.url("/live"),
            "live_events": True, "ai_summary": True, "ai_summary_prompt": "Summarize briefly."}}}})
        assert r.status_code == 200, r.text
        # dialtone's own words, while the far end's stream is still to come (1.5 s after the answer).
        r = d.post({"command": "calling.play", "id": call_id, "params": {
            "control_id": "p1", "play": [{"type": "tts", "params": {"text": "Your order ships tomorrow morning."}}]}})
        assert r.status_code == 200, r.text
        finals = live_events(hooks, "/live", "utterance", 2, 30)
        finals = [e for e in finals if e["params"]["final"]]
        by_leg = {}
        for e in finals:
            assert e["event_type"] == "calling.call.live_transcribe" and e["params"]["call_id"] == call_id, e
            assert e["params"]["lang"] == "en-US"
            by_leg.setdefault(e["params"]["direction"], []).extend(words(e["params"]["text"]))
        print("heard:", by_leg)
        local, remote = by_leg.get("local-caller", []), by_leg.get("remote-caller", [])
        assert {"order", "tomorrow", "morning"} <= set(local), local
        assert {"delivery", "tuesday"} <= set(remote), remote

        r = d.post({"command": "calling.live_transcribe", "id": call_id, "params": {"action": "stop"}})
        assert r.status_code == 200, r.text
        summary = live_events(hooks, "/live", "summary", 1, 15)
        assert summary and summary[0]["params"]["summary"] == "The caller asked about a delivery on Tuesday.", summary
        asked = model.requests[0]["body"]["messages"]
        assert asked[0] == {"role": "system", "content": "Summarize briefly."}, asked
        assert "remote-caller:" in asked[1]["content"] and "local-caller:" in asked[1]["content"], asked
        states = [e["params"]["state"] for e in hooks.on("/live") if e["params"].get("kind") == "state"]
        assert states == ["started", "stopped"], states
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        model.stop()


def test_swml_live_transcribe_starts_and_the_call_end_stops_it(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, REMOTE, tail_s=3.0)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone({"DIALTONE_ASR_COMMAND": WHISPER})
    swml = {"version": "1.0.0", "sections": {"main": [
        {"live_transcribe": {"action": {"start": {"lang": "en-US", "direction": ["remote-caller"],
                                                  "webhook": hooks.url("/live"), "live_events": True}}}},
        {"play": {"url": "silence:7"}},
        {"hangup": {}}]}}
    r = d.post({"command": "dial", "params": {"from": "+15551110000", "to": far.uri("service"), "swml": swml}})
    assert r.status_code == 200, r.text
    finals = [e for e in live_events(hooks, "/live", "utterance", 1, 30) if e["params"]["final"]]
    assert finals and {"delivery", "tuesday"} <= set(words(finals[0]["params"]["text"])), finals
    assert all(e["params"]["direction"] == "remote-caller" for e in finals)
    deadline = time.time() + 20
    while time.time() < deadline and not [e for e in hooks.on("/live") if e["params"].get("state") == "stopped"]:
        time.sleep(0.2)
    states = [e["params"]["state"] for e in hooks.on("/live") if e["params"].get("kind") == "state"]
    assert states == ["started", "stopped"], states
    sipp_done(far)
