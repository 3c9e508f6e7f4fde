"""calling.collect for digits on a real call: the far end (sipp) presses keys as RFC 4733 events from the
pcaps Debian's sip-tester ships; results arrive as calling.call.collect webhooks (calling-events.md §6)."""
import time

from test_calls import dial, get_call, sipp_done, wait_hook


def collect_events(hooks, call_id, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        evs = [hooks.parse(e) for e in hooks.events]
        evs = [e for e in evs if e.get("event_type") == "calling.call.collect" and e["params"]["call_id"] == call_id]
        if evs:
            return evs
        time.sleep(0.05)
    return []


def test_collect_digits_until_the_terminator(start_dialtone, sipp, hooks):
    far = sipp("uas_dtmf.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "pin", "digits": {"max": 6, "terminators": "#", "digit_timeout": 3},
                           "initial_timeout": 5, "start_input_timers": True, "status_url": hooks.url("/collect")}})
    assert r.status_code == 200, r.text
    evs = collect_events(hooks, call_id, timeout=10)
    assert len(evs) == 1, evs
    p = evs[0]["params"]
    assert p["control_id"] == "pin" and p["node_id"], p
    assert p["result"] == {"type": "digit", "params": {"digits": "123", "terminator": "#"}}, p
    assert all(hooks.signature_ok(e) for e in hooks.events)
    # A second collect with the same control_id is fine once the first has ended; stop answers it.
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "pin", "digits": {"max": 1}}})
    assert r.status_code == 200, r.text
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "pin"}})
    assert r.status_code == 200, r.text
    r = d.post({"command": "calling.collect.stop", "id": call_id, "params": {"control_id": "pin"}})
    assert r.status_code == 422 and r.json()["errors"][0]["code"] == "does_not_exist", r.text
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_collect_no_input(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    t0 = time.time()
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "c1", "digits": {"max": 4}, "initial_timeout": 1,
                           "start_input_timers": True, "status_url": hooks.url("/collect")}})
    assert r.status_code == 200, r.text
    evs = collect_events(hooks, call_id, timeout=5)
    assert [e["params"]["result"] for e in evs] == [{"type": "no_input"}], evs
    assert 0.8 <= time.time() - t0 <= 3
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


DTMF = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "#": (941, 1477)}


def ulaw(sample):
    bias, clip = 0x84, 32635
    sign = 0x80 if sample < 0 else 0
    sample = min(abs(sample), clip) + bias
    exponent, mask = 7, 0x4000
    while exponent > 0 and not sample & mask:
        exponent -= 1
        mask >>= 1
    return ~(sign | (exponent << 4) | ((sample >> (exponent + 3)) & 0x0F)) & 0xFF


def write_ulaw_dtmf_wav(path, keys, tone_ms=120, gap_ms=200):
    """8 kHz mono µ-law WAV (format tag 7) of the keys as dual tones, for sipp's rtp_stream."""
    import math
    import struct
    samples = [0] * 1600
    for k in keys:
        lo, hi = DTMF[k]
        samples += [int(6000 * (math.sin(2 * math.pi * lo * i / 8000) + math.sin(2 * math.pi * hi * i / 8000)))
                    for i in range(8 * tone_ms)]
        samples += [0] * (8 * gap_ms)
    samples += [0] * 1600
    data = bytes(ulaw(s) for s in samples)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def test_collect_in_band_dtmf_from_the_audio(start_dialtone, sipp, hooks, tmp_path):
    write_ulaw_dtmf_wav(tmp_path / "inband_dtmf.wav", "123#")
    far = sipp("uas_dtmf_inband.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.collect", "id": call_id,
                "params": {"control_id": "inband", "digits": {"max": 6, "terminators": "#", "digit_timeout": 3},
                           "initial_timeout": 5, "start_input_timers": True, "status_url": hooks.url("/collect")}})
    assert r.status_code == 200, r.text
    evs = collect_events(hooks, call_id, timeout=10)
    assert [e["params"]["result"] for e in evs] == [
        {"type": "digit", "params": {"digits": "123", "terminator": "#"}}], evs
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)
