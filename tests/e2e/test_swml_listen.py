"""SWML methods that listen to the caller, on real calls: prompt (digits, barge-in, no_input), record
(voicemail style), record_call + stop_record_call, detect_machine, denoise / stop_denoise. The far end is
sipp (RFC 4733 keys from Debian's pcaps, or a WAV the test writes); the script reports its variables
with a `request` to a real HTTP receiver, so every assertion is on what the script itself saw."""
import time

import requests

from audio_check import goertzel_db
from test_calls import FROM, get_call, sipp_done
from test_record import fetch_wav, record_events, tone, write_ulaw_wav


def doc(*steps):
    return {"version": "1.0.0", "sections": {"main": list(steps)}}


def report(hooks, **vars_):
    """A `request` step POSTing the named variables to the receiver's /vars."""
    return {"request": {"url": hooks.url("/vars"), "method": "POST",
                        "body": {k: "${%s}" % v for k, v in vars_.items()}}}


def reported(hooks, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for e in hooks.events:
            if e["path"] == "/vars":
                return hooks.parse(e)
        time.sleep(0.05)
    raise AssertionError(f"the script reported nothing; got {[e['path'] for e in hooks.events]}")


def dial_swml(d, far, swml, hooks):
    leg = d.sdk().calling.dial(from_=FROM, to=far.uri("svc"), swml=swml, status_url=hooks.url(),
                               status_events=["answered", "ended"])
    assert leg["id"], leg
    return leg["id"]


def test_prompt_collects_digits_with_barge_in(start_dialtone, sipp, hooks):
    # The keys 1 2 3 # start 1.5 s after the ACK, while the 6 s prompt still plays.
    far = sipp("uas_dtmf.xml")
    d = start_dialtone()
    t0 = time.time()
    call_id = dial_swml(d, far, doc(
        {"prompt": {"play": ["silence:6"], "max_digits": 6, "terminators": "#", "digit_timeout": 3,
                    "status_url": hooks.url("/collect")}},
        report(hooks, result="prompt_result", value="prompt_value", term="prompt_digit_terminator",
               raw="prompt_value_raw"),
        {"hangup": {}}), hooks)
    got = reported(hooks)
    assert got == {"result": "match_digits", "value": "123", "term": "#", "raw": "123"}, got
    # The digits ended the prompt before its 6 s playback would have.
    assert time.time() - t0 < 6.5
    evs = [hooks.parse(e) for e in hooks.events if e["path"] == "/collect"]
    assert [e["params"]["result"] for e in evs] == [
        {"type": "digit", "params": {"digits": "123", "terminator": "#"}}], evs
    sipp_done(far)
    assert get_call(d, call_id)["status"] == "ended"


def test_prompt_no_input_waits_for_the_playback_then_initial_timeout(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    t0 = time.time()
    dial_swml(d, far, doc(
        {"prompt": {"play": "silence:1.5", "max_digits": 2, "initial_timeout": 1}},
        report(hooks, result="prompt_result", value="prompt_value"),
        {"hangup": {}}), hooks)
    got = reported(hooks)
    took = time.time() - t0
    assert got == {"result": "no_input", "value": ""}, got
    # Timers start when the prompt's audio ends: 1.5 s of playback + 1 s initial_timeout.
    assert 2.4 <= took <= 6, took
    sipp_done(far)


def test_record_voicemail_holds_the_callers_tone(start_dialtone, sipp, hooks, tmp_path):
    write_ulaw_wav(tmp_path / "stream.wav", tone(1000, 2.0) + [0] * 8000 * 6)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    dial_swml(d, far, doc(
        {"record": {"format": "wav", "end_silence_timeout": 1.5, "initial_timeout": 4,
                    "status_url": hooks.url("/rec")}},
        report(hooks, url="record_url", result="record_result"),
        {"hangup": {}}), hooks)
    got = reported(hooks)
    assert got["result"] == "success", got
    assert got["url"].endswith(".wav"), got
    w, samples = fetch_wav(d, got["url"])
    rate = w.getframerate()
    seconds = len(samples) / rate
    # sipp starts its stream 1.5 s after the ACK: silence, the 2 s tone, then end_silence_timeout
    # (1.5 s) of silence ended it.
    assert 3.5 <= seconds <= 7, seconds
    middle = samples[int(2.0 * rate):int(3.0 * rate)]
    assert goertzel_db(list(middle), 1000, rate) > goertzel_db(list(middle), 1500, rate) + 20
    evs = [hooks.parse(e)["params"] for e in hooks.events if e["path"] == "/rec"]
    finished = [e for e in evs if e["state"] == "finished"]
    assert finished and finished[0]["url"] == got["url"], evs
    sipp_done(far)


def test_record_call_runs_in_the_background_until_stop_record_call(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    call_id = dial_swml(d, far, doc(
        {"record_call": {"format": "wav", "status_url": hooks.url("/rec")}},
        {"play": {"url": "silence:2"}},
        {"stop_record_call": {}},
        report(hooks, url="record_call_url", result="record_call_result", id="record_control_id",
               stopped="stop_record_call_result"),
        {"hangup": {}}), hooks)
    got = reported(hooks)
    assert got["result"] == "success" and got["stopped"] == "success" and got["id"], got
    evs = record_events(hooks, call_id, "finished", timeout=10)
    finished = [e["params"] for e in evs if e["params"]["state"] == "finished"]
    assert finished and finished[0]["control_id"] == got["id"], evs
    assert finished[0]["url"] == got["url"], (finished, got)
    assert 1.5 <= finished[0]["duration"] <= 4, finished
    r = requests.get(got["url"], auth=(d.project, d.token), timeout=5)
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    sipp_done(far)


def test_denoise_and_stop_denoise_set_their_result(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    dial_swml(d, far, doc(
        {"denoise": {}},
        {"set": {"on": "${denoise_result}"}},
        {"stop_denoise": {}},
        report(hooks, on="on", off="denoise_result"),
        {"hangup": {}}), hooks)
    assert reported(hooks) == {"on": "on", "off": "off"}
    sipp_done(far)


def test_detect_machine_hears_a_short_hello_as_human(start_dialtone, sipp, hooks, tmp_path):
    import subprocess
    import wave
    subprocess.run(["flite", "-t", "hello?", "-o", str(tmp_path / "hello.wav")], check=True)
    with wave.open(str(tmp_path / "hello.wav")) as w:
        import struct
        raw = w.readframes(w.getnframes())
        speech = list(struct.unpack("<%dh" % (len(raw) // 2), raw))
        rate = w.getframerate()
    if rate != 8000:  # flite writes 8 kHz with its default voice; resample crudely otherwise
        speech = speech[::rate // 8000]
    write_ulaw_wav(tmp_path / "stream.wav", [0] * 4000 + speech + [0] * 8000 * 8)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    dial_swml(d, far, doc(
        {"detect_machine": {"detectors": "amd", "timeout": 10, "status_url": hooks.url("/detect")}},
        report(hooks, result="detect_result", beep="detect_machine_beep", ms="detect_ms"),
        {"hangup": {}}), hooks)
    got = reported(hooks, timeout=20)
    evs0 = [hooks.parse(e)["params"] for e in hooks.events if e["path"] == "/detect"]
    assert got["result"] == "human", (got, evs0)
    assert got["beep"] is False, got
    assert 500 <= int(got["ms"]) <= 10_000, got
    # The webhook leaves through the outbox, so it may land just after the script's report.
    deadline = time.time() + 5
    while True:
        evs = [hooks.parse(e)["params"] for e in hooks.events if e["path"] == "/detect"]
        if any(e["detect"]["params"].get("event") == "HUMAN" for e in evs) or time.time() > deadline:
            break
        time.sleep(0.05)
    assert any(e["detect"]["params"].get("event") == "HUMAN" for e in evs), evs
    sipp_done(far)


def test_prompt_recognises_the_callers_speech_from_its_hints(start_dialtone, sipp, hooks, tmp_path):
    from test_speech import write_speech_wav
    # sipp speaks 1.5 s after the ACK, while the 1 s prompt has already ended.
    write_speech_wav(tmp_path, "billing department", tail_s=3.0)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    dial_swml(d, far, doc(
        {"prompt": {"play": "silence:1", "speech_hints": ["billing department", "technical support"],
                    "initial_timeout": 4, "speech_end_timeout": 1}},
        report(hooks, result="prompt_result", value="prompt_value", conf="prompt_speech_confidence"),
        {"hangup": {}}), hooks)
    got = reported(hooks, timeout=25)
    assert got["result"] == "match_speech" and got["value"] == "billing department", got
    assert 0 < float(got["conf"]) <= 1, got
    sipp_done(far)
