"""calling.record on a real call: the far end (sipp) streams a tone the test wrote; the recording's
finished webhook carries its URL, duration and size; the file served at that URL holds the tone in the
far end's channel (checked by content)."""
import io
import math
import time
import wave

import requests

from audio_check import goertzel_db
from test_calls import dial, get_call, sipp_done, wait_hook
from test_collect import ulaw


def write_ulaw_wav(path, samples):
    import struct
    data = bytes(ulaw(s) for s in samples)
    fmt = struct.pack("<HHIIHH", 7, 1, 8000, 8000, 1, 8)
    riff = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(riff)) + riff)


def tone(freq, seconds, amp=8000):
    return [int(amp * math.sin(2 * math.pi * freq * i / 8000)) for i in range(int(8000 * seconds))]


def record_events(hooks, call_id, state, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        evs = [hooks.parse(e) for e in hooks.events]
        evs = [e for e in evs if e.get("event_type") == "calling.call.record" and e["params"]["call_id"] == call_id]
        if any(e["params"]["state"] == state for e in evs):
            return evs
        time.sleep(0.05)
    return [hooks.parse(e) for e in hooks.events]


def fetch_wav(d, url):
    r = requests.get(url, auth=(d.project, d.token), timeout=5)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.headers["Content-Type"] == "audio/wav"
    w = wave.open(io.BytesIO(r.content))
    frames = w.readframes(w.getnframes())
    import struct
    samples = struct.unpack("<%dh" % (len(frames) // 2), frames)
    return w, samples


def test_record_stereo_keeps_the_far_ends_tone_in_its_channel(start_dialtone, sipp, hooks, tmp_path):
    write_ulaw_wav(tmp_path / "stream.wav", tone(1000, 2.0) + [0] * 16000)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": "rec1", "status_url": hooks.url("/rec"),
                           "record": {"audio": {"format": "wav", "stereo": True, "direction": "both",
                                                "initial_timeout": 5, "end_silence_timeout": 1}}}})
    assert r.status_code == 200, r.text
    evs = record_events(hooks, call_id, "finished", timeout=12)
    states = [e["params"]["state"] for e in evs]
    assert states == ["recording", "finished"], states
    fin = evs[-1]["params"]
    assert fin["control_id"] == "rec1" and fin["url"].endswith(".wav") and fin["size"] > 44, fin
    assert fin["record"]["url"] == fin["url"] and fin["record"]["audio"] == {"format": "wav", "direction": "both", "stereo": True}
    assert 2.3 <= fin["duration"] <= 5.0, fin["duration"]  # ~1.5 s before the tone + 2 s tone + 1 s end silence
    assert all(hooks.signature_ok(e) for e in hooks.events)
    w, samples = fetch_wav(d, fin["url"])
    assert w.getnchannels() == 2 and w.getframerate() == 8000
    left, right = samples[0::2], samples[1::2]
    assert abs(len(left) / 8000 - fin["duration"]) < 0.1
    assert goertzel_db(list(left), 1000, 8000) > -20, "the far end's tone is in the left channel"
    assert max(abs(s) for s in right) < 50, "we sent silence: the right channel is silent"
    # Another project's credentials cannot read it.
    assert requests.get(fin["url"], auth=("00000000-0000-4000-8000-000000000000", "x"), timeout=5).status_code == 401
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_record_pause_skip_and_silence_change_the_duration(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    durations = {}
    for behavior in ("skip", "silence"):
        cid = f"rec-{behavior}"
        r = d.post({"command": "calling.record", "id": call_id,
                    "params": {"control_id": cid, "status_url": hooks.url("/rec"),
                               "record": {"audio": {"format": "wav", "initial_timeout": 0, "end_silence_timeout": 0}}}})
        assert r.status_code == 200, r.text
        time.sleep(1.0)
        assert d.post({"command": "calling.record.pause", "id": call_id,
                       "params": {"control_id": cid, "behavior": behavior}}).status_code == 200
        time.sleep(1.0)
        assert d.post({"command": "calling.record.resume", "id": call_id, "params": {"control_id": cid}}).status_code == 200
        time.sleep(1.0)
        assert d.post({"command": "calling.record.stop", "id": call_id, "params": {"control_id": cid}}).status_code == 200
        deadline = time.time() + 5
        fin = None
        while time.time() < deadline and fin is None:
            for e in hooks.events:
                p = hooks.parse(e)["params"]
                if p.get("control_id") == cid and p.get("state") == "finished":
                    fin = p
            time.sleep(0.05)
        assert fin, [hooks.parse(e)["params"] for e in hooks.events]
        durations[behavior] = fin["duration"]
        states = [hooks.parse(e)["params"]["state"] for e in hooks.events
                  if hooks.parse(e)["params"].get("control_id") == cid]
        assert states == ["recording", "paused", "recording", "finished"], states
    assert 1.7 <= durations["skip"] <= 2.5, durations
    assert 2.7 <= durations["silence"] <= 3.5, durations
    # mp3 is not built: a clear 501, not a fake recording.
    r = d.post({"command": "calling.record", "id": call_id, "params": {"control_id": "mp3", "record": {"audio": {}}}})
    assert r.status_code == 501 and "mp3" in r.json()["errors"][0]["message"], r.text
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_recording_survives_a_kill(start_dialtone, sipp, hooks, tmp_path):
    far = sipp("uas.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": "crash", "status_url": hooks.url("/rec"),
                           "record": {"audio": {"format": "wav", "initial_timeout": 0, "end_silence_timeout": 0}}}})
    assert r.status_code == 200, r.text
    time.sleep(2.6)
    d.proc.kill()
    d.proc.wait(5)
    far.kill()
    files = list((d.data_dir / "recordings").rglob("*.wav"))
    assert len(files) == 1, files
    d.start()  # same data dir: the recording is repaired on start
    url = f"{d.base}/api/calling/recordings/{files[0].name}"
    w, samples = fetch_wav(d, url)
    assert w.getnchannels() == 1
    assert 1.9 <= w.getnframes() / 8000 <= 2.7, w.getnframes() / 8000
