"""calling.detect on a real call: the far end (sipp) streams audio the test generates (a long greeting and
a beep, a short "hello?", a fax CNG tone) or presses keys (RFC 4733 pcaps); results arrive as
calling.call.detect webhooks (calling-events.md §7)."""
import math
import time

from test_calls import dial, sipp_done, wait_hook
from test_record import tone, write_ulaw_wav


def words(count, f0=150.0, on_s=0.4, off_s=0.3, amp=3000):
    """Voiced, speech-like audio: a buzz with harmonics in `count` words of on_s seconds, off_s apart."""
    out = []
    for w in range(count):
        f = f0 + 15 * (w % 3)
        for i in range(int(8000 * on_s)):
            t = i / 8000
            buzz = sum(math.sin(2 * math.pi * f * k * t) / k for k in range(1, 8))
            out.append(int(amp * buzz * (0.6 + 0.4 * math.sin(2 * math.pi * 5 * t))))
        out += [0] * int(8000 * off_s)
    return out


def silence(seconds):
    return [0] * int(8000 * seconds)


def detect_events(hooks, call_id, until_finished=1, timeout=15):
    deadline = time.time() + timeout
    while True:
        evs = [hooks.parse(e) for e in hooks.events]
        evs = [e for e in evs if e.get("event_type") == "calling.call.detect" and e["params"]["call_id"] == call_id]
        done = sum(e["params"]["detect"]["params"]["event"] == "finished" for e in evs) >= until_finished
        if done or time.time() >= deadline:
            return evs
        time.sleep(0.05)


def outcomes(evs, control_id=None):
    return [(e["params"]["detect"]["type"], e["params"]["detect"]["params"]["event"],
             e["params"]["detect"]["params"].get("beep", False))
            for e in evs if control_id is None or e["params"]["control_id"] == control_id]


def start_call(start_dialtone, sipp, hooks, scenario="uas_stream_wav.xml"):
    far = sipp(scenario)
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    return far, d, call_id


def detect(d, call_id, control_id, kind, params, hooks, **extra):
    body = {"control_id": control_id, "detect": {"type": kind, "params": params},
            "status_url": hooks.url("/detect"), **extra}
    return d.post({"command": "calling.detect", "id": call_id, "params": body})


def test_detect_long_greeting_then_beep_is_machine_ready_with_beep(start_dialtone, sipp, hooks, tmp_path):
    # ≈4.2 s greeting (6 words), 0.3 s pause, 0.5 s 1 kHz beep, silence.
    write_ulaw_wav(tmp_path / "stream.wav", words(6) + silence(0.3) + tone(1000, 0.5) + silence(3))
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    t0 = time.time()
    r = detect(d, call_id, "amd-1", "machine", {}, hooks)
    assert r.status_code == 200, r.text
    assert r.json()["control_id"] == "amd-1"
    evs = detect_events(hooks, call_id)
    assert outcomes(evs) == [("machine", "MACHINE", False), ("machine", "READY", True),
                             ("machine", "finished", False)], outcomes(evs)
    p = evs[0]["params"]
    assert p["control_id"] == "amd-1" and p["node_id"] and p["call_id"] == call_id, p
    assert set(evs[0]) >= {"event_type", "event_channel", "timestamp", "project_id", "space_id"}
    # MACHINE once 1.25 s of voice was heard (1.5 s after the ACK the greeting starts), READY at the
    # beep ≈ 1.5 + 4.5 + 0.15 s in.
    assert 5.0 <= evs[1]["timestamp"] - t0 <= 8.5, evs[1]["timestamp"] - t0
    assert all(hooks.signature_ok(e) for e in hooks.events)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_detect_short_hello_then_silence_is_human(start_dialtone, sipp, hooks, tmp_path):
    write_ulaw_wav(tmp_path / "stream.wav", words(1, on_s=0.5) + silence(4))
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = detect(d, call_id, "amd-h", "machine", {"end_silence_timeout": 1.0}, hooks)
    assert r.status_code == 200, r.text
    evs = detect_events(hooks, call_id)
    assert outcomes(evs) == [("machine", "HUMAN", False), ("machine", "finished", False)], outcomes(evs)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_detect_fax_cng_by_a_fax_detect_and_by_a_machine_detect(start_dialtone, sipp, hooks, tmp_path):
    cng = tone(1100, 0.5) + silence(3)
    write_ulaw_wav(tmp_path / "stream.wav", cng + cng)
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = detect(d, call_id, "fax-1", "fax", {"tone": "cng"}, hooks)
    assert r.status_code == 200, r.text
    # A machine detect (SWML detect_machine with detectors "amd,fax") reports the fax tone too.
    r = detect(d, call_id, "amd-f", "machine", {}, hooks)
    assert r.status_code == 200, r.text
    evs = detect_events(hooks, call_id, until_finished=2)
    assert outcomes(evs, "fax-1") == [("fax", "CNG", False), ("fax", "finished", False)], outcomes(evs)
    assert outcomes(evs, "amd-f") == [("fax", "CNG", False), ("machine", "finished", False)], outcomes(evs)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_detect_digits_each_matching_key_then_stop(start_dialtone, sipp, hooks):
    far, d, call_id = start_call(start_dialtone, sipp, hooks, "uas_dtmf.xml")
    r = detect(d, call_id, "dig", "digit", {"digits": "13#"}, hooks, timeout=60)
    assert r.status_code == 200, r.text
    deadline = time.time() + 10
    while time.time() < deadline and len(outcomes(detect_events(hooks, call_id, timeout=0))) < 3:
        time.sleep(0.1)
    time.sleep(0.5)
    assert outcomes(detect_events(hooks, call_id, timeout=0)) == [
        ("digit", "1", False), ("digit", "3", False), ("digit", "#", False)]
    r = d.post({"command": "calling.detect.stop", "id": call_id, "params": {"control_id": "dig"}})
    assert r.status_code == 200, r.text
    evs = detect_events(hooks, call_id)
    assert outcomes(evs)[-1] == ("digit", "finished", False), outcomes(evs)
    r = d.post({"command": "calling.detect.stop", "id": call_id, "params": {"control_id": "dig"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "does_not_exist", r.text
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_detect_timeout_duplicate_and_unknown_control_id(start_dialtone, sipp, hooks):
    far, d, call_id = start_call(start_dialtone, sipp, hooks, "uas.xml")
    t0 = time.time()
    r = detect(d, call_id, "amd-t", "machine", {"initial_timeout": 20}, hooks, timeout=1.5)
    assert r.status_code == 200, r.text
    r = detect(d, call_id, "amd-t", "fax", {}, hooks)
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "value_not_unique", r.text
    r = detect(d, call_id, "bad", "voice", {}, hooks)
    assert r.status_code in (400, 422), r.text
    evs = detect_events(hooks, call_id)
    elapsed = time.time() - t0
    # Silence until the timeout: UNKNOWN, then finished.
    assert outcomes(evs) == [("machine", "UNKNOWN", False), ("machine", "finished", False)], outcomes(evs)
    assert 1.2 <= elapsed <= 4, elapsed
    # The finished detect's control_id is free again; an unknown one cannot be stopped.
    r = d.post({"command": "calling.detect.stop", "id": call_id, "params": {"control_id": "amd-t"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "does_not_exist", r.text
    r = d.post({"command": "calling.detect.stop", "id": call_id, "params": {"control_id": "nope"}})
    assert r.status_code == 422, r.text
    r = detect(d, call_id, "amd-t", "fax", {}, hooks, timeout=0.5)
    assert r.status_code == 200, r.text
    evs = detect_events(hooks, call_id, until_finished=2)
    assert outcomes(evs)[2:] == [("fax", "finished", False)], outcomes(evs)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_detect_digits_in_band_without_a_collect(start_dialtone, sipp, hooks, tmp_path):
    # In-band detection is switched on for the digit detect alone (no collect runs).
    from test_collect import write_ulaw_dtmf_wav
    write_ulaw_dtmf_wav(tmp_path / "inband_dtmf.wav", "123#")
    far, d, call_id = start_call(start_dialtone, sipp, hooks, "uas_dtmf_inband.xml")
    r = detect(d, call_id, "dig-ib", "digit", {}, hooks, timeout=4)
    assert r.status_code == 200, r.text
    evs = detect_events(hooks, call_id)
    assert [o[1] for o in outcomes(evs)] == ["1", "2", "3", "#", "finished"], outcomes(evs)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_detect_and_denoise_need_an_answered_call(start_dialtone, sipp, hooks):
    far = sipp("uas_cancel.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=30)["id"]
    wait_hook(hooks, call_id, "ringing", timeout=5)
    for command, params in [("calling.detect", {"control_id": "x", "detect": {"type": "machine"}}),
                            ("calling.detect.stop", {"control_id": "x"}),
                            ("calling.denoise", {}), ("calling.denoise.stop", {})]:
        r = d.post({"command": command, "id": call_id, "params": params})
        assert r.status_code == 422 and r.json()["errors"][0]["code"] == "invalid_state", (command, r.text)
    d.sdk().calling.end(call_id)
    sipp_done(far, timeout=10)


def flite(text, tmp_path):
    """8 kHz samples of `text` spoken by flite."""
    import struct
    import subprocess
    import wave
    out = tmp_path / "flite.wav"
    subprocess.run(["flite", "-t", text, "-o", str(out)], check=True, timeout=30)
    w = wave.open(str(out))
    assert w.getframerate() == 8000 and w.getsampwidth() == 2
    frames = w.readframes(w.getnframes())
    return list(struct.unpack("<%dh" % (len(frames) // 2), frames))


def test_detect_flite_voicemail_greeting_then_beep_is_machine(start_dialtone, sipp, hooks, tmp_path):
    # Real synthesized speech (≈7 s) instead of the buzz words.
    speech = flite("Hi, you have reached the voicemail of Alex. I cannot take your call right now, "
                   "please leave a message after the tone.", tmp_path)
    write_ulaw_wav(tmp_path / "stream.wav", speech + silence(0.3) + tone(1000, 0.5) + silence(3))
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = detect(d, call_id, "amd-v", "machine", {}, hooks)
    assert r.status_code == 200, r.text
    evs = detect_events(hooks, call_id, timeout=20)
    assert outcomes(evs) == [("machine", "MACHINE", False), ("machine", "READY", True),
                             ("machine", "finished", False)], outcomes(evs)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_detect_flite_hello_is_human(start_dialtone, sipp, hooks, tmp_path):
    write_ulaw_wav(tmp_path / "stream.wav", flite("Hello?", tmp_path) + silence(4))
    far, d, call_id = start_call(start_dialtone, sipp, hooks)
    r = detect(d, call_id, "amd-hv", "machine", {}, hooks)
    assert r.status_code == 200, r.text
    evs = detect_events(hooks, call_id)
    assert outcomes(evs) == [("machine", "HUMAN", False), ("machine", "finished", False)], outcomes(evs)
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
