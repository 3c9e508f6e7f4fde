"""calling.record on a real call: the far end (sipp) streams a tone the test wrote; the recording's
finished webhook carries its URL, duration and size; the file served at that URL holds the tone in the
far end's channel (checked by content). MP3 files are decoded with mpg123, an independent decoder."""
import io
import math
import os
import stat
import subprocess
import sys
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


def fetch_mp3(d, url, tmp_path, name="rec"):
    """GETs an MP3 recording and decodes it with mpg123 (not our code): (wave reader, samples)."""
    r = requests.get(url, auth=(d.project, d.token), timeout=5)
    assert r.status_code == 200, (r.status_code, r.text[:200])
    assert r.headers["Content-Type"] == "audio/mpeg"
    return decode_mp3(r.content, tmp_path, name)


def decode_mp3(data, tmp_path, name="rec"):
    mp3, out = tmp_path / f"{name}.mp3", tmp_path / f"{name}.wav"
    mp3.write_bytes(data)
    subprocess.run(["mpg123", "-q", "-w", str(out), str(mp3)], check=True, timeout=30)
    w = wave.open(str(out))
    frames = w.readframes(w.getnframes())
    import struct
    return w, struct.unpack("<%dh" % (len(frames) // 2), frames)


def tone_seconds(samples, rate=8000, freq=1000):
    """Seconds of 20 ms windows that hold the tone (loud, and mostly at `freq`)."""
    n = rate // 50
    hits = 0
    for i in range(0, len(samples) - n + 1, n):
        win = list(samples[i:i + n])
        rms = math.sqrt(sum(x * x for x in win) / n)
        if rms > 1500 and goertzel_db(win, freq, rate) > -6:
            hits += 1
    return hits * 0.02


def record_and_wait(d, hooks, call_id, control_id, audio, state="finished", timeout=12):
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": control_id, "status_url": hooks.url("/rec"), "record": {"audio": audio}}})
    assert r.status_code == 200, r.text
    evs = [e for e in record_events(hooks, call_id, state, timeout) if e["params"]["control_id"] == control_id]
    return evs


def test_record_mp3_stereo_holds_the_far_ends_tone_in_its_channel_for_its_duration(start_dialtone, sipp, hooks,
                                                                                  tmp_path):
    write_ulaw_wav(tmp_path / "stream.wav", tone(1000, 2.0) + [0] * 16000)
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    evs = record_and_wait(d, hooks, call_id, "mp3", {"format": "mp3", "stereo": True, "direction": "both",
                                                      "initial_timeout": 5, "end_silence_timeout": 1})
    states = [e["params"]["state"] for e in evs]
    assert states == ["recording", "finished"], states
    fin = evs[-1]["params"]
    assert fin["url"].endswith(".mp3") and fin["record"]["url"] == fin["url"], fin
    assert fin["record"]["format"] == "mp3" and fin["record"]["audio"] == {"format": "mp3", "direction": "both",
                                                                           "stereo": True}, fin
    assert 2.3 <= fin["duration"] <= 5.0, fin["duration"]
    w, samples = fetch_mp3(d, fin["url"], tmp_path)
    assert len(requests.get(fin["url"], auth=(d.project, d.token), timeout=5).content) == fin["size"]
    assert w.getnchannels() == 2 and w.getframerate() == 8000
    left, right = samples[0::2], samples[1::2]
    # lame adds its delay and pads the last frame: a little more than the recorded duration.
    assert fin["duration"] - 0.05 <= len(left) / 8000 <= fin["duration"] + 0.4, (len(left) / 8000, fin["duration"])
    assert abs(tone_seconds(left) - 2.0) <= 0.3, tone_seconds(left)
    assert tone_seconds(right) == 0 and max(abs(s) for s in right) < 300, "we sent silence: the right channel is quiet"
    # The same recording is not served under the other extension, nor to another project.
    assert requests.get(fin["url"][:-4] + ".wav", auth=(d.project, d.token), timeout=5).status_code == 404
    assert requests.get(fin["url"], auth=("00000000-0000-4000-8000-000000000000", "x"), timeout=5).status_code == 401
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_record_default_format_is_mp3_and_mp4_is_refused_with_422(start_dialtone, sipp, hooks, tmp_path):
    far = sipp("uas.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": "mp4", "status_url": hooks.url("/rec"), "record": {"audio": {"format": "mp4"}}}})
    assert r.status_code == 422, r.text
    err = r.json()["errors"][0]
    assert err["attribute"] == "record.audio.format" and "mp4" in err["message"], err
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": "dflt", "status_url": hooks.url("/rec"), "record": {"audio": {}}}})
    assert r.status_code == 200, r.text
    time.sleep(1.5)
    assert d.post({"command": "calling.record.stop", "id": call_id, "params": {"control_id": "dflt"}}).status_code == 200
    evs = record_events(hooks, call_id, "finished", 5)
    assert all(e["params"]["control_id"] != "mp4" for e in evs), "the refused recording sent no event"
    fin = evs[-1]["params"]
    assert fin["state"] == "finished" and fin["url"].endswith(".mp3"), fin
    assert fin["record"]["audio"]["format"] == "mp3" and fin["record"]["format"] == "mp3", fin
    assert 1.2 <= fin["duration"] <= 2.2, fin
    w, samples = fetch_mp3(d, fin["url"], tmp_path)
    assert w.getnchannels() == 1 and abs(len(samples) / 8000 - fin["duration"]) < 0.4
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    sipp_done(far)


def test_mp3_recording_survives_a_kill(start_dialtone, sipp, hooks, tmp_path):
    write_ulaw_wav(tmp_path / "stream.wav", tone(1000, 6.0))
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": "crash", "status_url": hooks.url("/rec"),
                           "record": {"audio": {"format": "mp3", "initial_timeout": 0, "end_silence_timeout": 0}}}})
    assert r.status_code == 200, r.text
    time.sleep(3.0)
    d.proc.kill()  # SIGKILL: no chance to finish the file
    d.proc.wait(5)
    far.kill()
    files = list((d.data_dir / "recordings").rglob("*.mp3"))
    assert len(files) == 1, files
    d.start()  # same data dir: the recording is repaired on start
    url = f"{d.base}/api/calling/recordings/{files[0].name}"
    w, samples = fetch_mp3(d, url, tmp_path)
    assert w.getnchannels() == 1
    # ~3 s were recorded; synced once a second, so at least the audio up to the last second is there.
    assert 1.9 <= len(samples) / 8000 <= 3.4, len(samples) / 8000
    # And it is the far end's tone (it starts 1.5 s after the answer).
    assert tone_seconds(samples) >= 0.5, tone_seconds(samples)


def test_record_on_storage_that_cannot_hold_files_fails_clearly_and_the_call_goes_on(start_dialtone, sipp, hooks):
    far = sipp("uas.xml")
    d = start_dialtone()
    # A regular file where the recordings folder should be: no directory can be made there, even by root.
    (d.data_dir / "recordings").write_text("not a folder")
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    for fmt in ("mp3", "wav"):
        r = d.post({"command": "calling.record", "id": call_id,
                    "params": {"control_id": f"nope-{fmt}", "status_url": hooks.url("/rec"),
                               "record": {"audio": {"format": fmt}}}})
        assert r.status_code == 422, r.text
        err = r.json()["errors"][0]
        assert err["code"] == "recording_storage_unavailable" and "stored" in err["message"], err
    time.sleep(0.5)
    assert not [e for e in hooks.events if hooks.parse(e).get("event_type") == "calling.call.record"]
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    wait_hook(hooks, call_id, "ended")
    sipp_done(far)


def can_mount_tmpfs():
    try:
        return subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                              capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def test_record_writes_failing_mid_recording_end_it_in_error_keeping_the_audio(start_dialtone, sipp, hooks, tmp_path,
                                                                              monkeypatch):
    """The node runs in its own mount namespace with a 96 KiB tmpfs as its recordings folder (the store stays on
    the real disk): a WAV recording fills it, ends in `error` with the audio written so far served, and the
    call goes on."""
    if not can_mount_tmpfs():
        import pytest
        pytest.skip("needs unshare -m and mount (root)")
    write_ulaw_wav(tmp_path / "stream.wav", tone(1000, 8.0))
    far = sipp("uas_stream_wav.xml")
    d = start_dialtone()
    d.stop()
    conftest = sys.modules[type(d).__module__]
    limit_kib = 96
    recs = d.data_dir / "recordings"
    recs.mkdir(parents=True, exist_ok=True)
    wrapper = tmp_path / "small_disk.sh"
    wrapper.write_text("#!/bin/sh\n"
                       f"exec unshare -m sh -c 'mount -t tmpfs -o size={limit_kib}k tmpfs {recs} && "
                       f"exec {conftest.BINARY} \"$@\"' sh \"$@\"\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(conftest, "BINARY", str(wrapper))
    d.start()
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    # Stereo WAV at 8 kHz is 32 000 bytes a second: the limit is hit after ~3 s.
    evs = record_and_wait(d, hooks, call_id, "full", {"format": "wav", "stereo": True, "initial_timeout": 0,
                                                       "end_silence_timeout": 0}, state="error", timeout=10)
    states = [e["params"]["state"] for e in evs]
    assert states == ["recording", "error"], states
    err = evs[-1]["params"]
    assert err["url"].endswith(".wav") and 2.0 <= err["duration"] <= 3.2, err
    assert err["size"] <= limit_kib * 1024, err
    w, samples = fetch_wav(d, err["url"])
    assert abs(w.getnframes() / 8000 - err["duration"]) < 0.05
    assert tone_seconds(samples[0::2]) >= 1.0, "the far end's tone that was written plays"
    assert get_call(d, call_id)["status"] == "answered"
    d.sdk().calling.end(call_id, reason="hangup")
    wait_hook(hooks, call_id, "ended")
    sipp_done(far)


def start_moto(port):
    """moto's S3 server on 127.0.0.1:port with an empty bucket `recs`: (process, boto3 client)."""
    import boto3
    moto_bin = os.path.join(os.path.dirname(sys.executable), "moto_server")
    server = subprocess.Popen([moto_bin, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                      aws_access_key_id="testkey", aws_secret_access_key="testsecret")
    deadline = time.time() + 20
    while True:
        try:
            s3.create_bucket(Bucket="recs")
            return server, s3
        except Exception:
            if time.time() > deadline:
                server.kill()
                raise
            time.sleep(0.2)


def s3_env(port):
    return {"DIALTONE_STORAGE": "s3", "DIALTONE_S3_ENDPOINT": f"http://127.0.0.1:{port}", "DIALTONE_S3_BUCKET": "recs",
            "DIALTONE_S3_REGION": "us-east-1", "DIALTONE_S3_ACCESS_KEY": "testkey",
            "DIALTONE_S3_SECRET_KEY": "testsecret", "DIALTONE_S3_PREFIX": "calls/"}


def test_recordings_go_to_an_s3_bucket_and_are_served_from_it(start_dialtone, sipp, hooks, tmp_path):
    """moto's S3 server (not ours) as the bucket: the finished recording is uploaded, removed from the data dir,
    and its URL serves the object."""
    from conftest import free_port
    port = free_port()
    server, s3 = start_moto(port)
    try:
        far = sipp("uas.xml")
        d = start_dialtone(s3_env(port))
        call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
        wait_hook(hooks, call_id, "answered")
        r = d.post({"command": "calling.record", "id": call_id,
                    "params": {"control_id": "s3", "status_url": hooks.url("/rec"), "record": {"audio": {}}}})
        assert r.status_code == 200, r.text
        time.sleep(1.5)
        assert d.post({"command": "calling.record.stop", "id": call_id, "params": {"control_id": "s3"}}).status_code == 200
        fin = record_events(hooks, call_id, "finished", 5)[-1]["params"]
        assert fin["state"] == "finished" and fin["url"].endswith(".mp3"), fin
        rec_id = fin["recording_id"]
        key = f"calls/{d.project}/{rec_id}.mp3"
        deadline = time.time() + 15
        keys = []
        while time.time() < deadline:
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket="recs").get("Contents", [])]
            local = list((d.data_dir / "recordings").rglob("*.mp3"))
            if key in keys and not local:
                break
            time.sleep(0.2)
        assert key in keys, keys
        assert not list((d.data_dir / "recordings").rglob("*.mp3")), "the local copy is removed once uploaded"
        obj = s3.get_object(Bucket="recs", Key=key)
        body = obj["Body"].read()
        assert obj["ContentType"] == "audio/mpeg" and len(body) == fin["size"], (obj["ContentType"], len(body))
        r = requests.get(fin["url"], auth=(d.project, d.token), timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"] == "audio/mpeg" and r.content == body
        w, samples = decode_mp3(r.content, tmp_path)
        assert abs(len(samples) / 8000 - fin["duration"]) < 0.4
        # Still one project's: another's credentials get nothing.
        assert requests.get(fin["url"], auth=("00000000-0000-4000-8000-000000000000", "x"), timeout=5).status_code == 401
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        server.terminate()
        server.wait(10)


def test_an_upload_that_fails_keeps_the_recording_local_until_the_bucket_answers(start_dialtone, sipp, hooks,
                                                                                tmp_path):
    from conftest import free_port
    port = free_port()
    far = sipp("uas.xml")
    d = start_dialtone(s3_env(port))  # nothing listens on the bucket's port yet
    call_id = dial(d, far.uri("service"), hooks.url(), timeout=5)["id"]
    wait_hook(hooks, call_id, "answered")
    r = d.post({"command": "calling.record", "id": call_id,
                "params": {"control_id": "later", "status_url": hooks.url("/rec"), "record": {"audio": {"format": "wav"}}}})
    assert r.status_code == 200, r.text
    time.sleep(1.0)
    assert d.post({"command": "calling.record.stop", "id": call_id, "params": {"control_id": "later"}}).status_code == 200
    fin = record_events(hooks, call_id, "finished", 5)[-1]["params"]
    assert fin["state"] == "finished", fin
    time.sleep(1.0)  # a try or two have failed by now
    local = list((d.data_dir / "recordings").rglob("*.wav"))
    assert len(local) == 1, "kept in the data dir while the bucket is down"
    w, samples = fetch_wav(d, fin["url"])  # and served from there
    server, s3 = start_moto(port)
    try:
        key = f"calls/{d.project}/{fin['recording_id']}.wav"
        deadline = time.time() + 20
        while time.time() < deadline and list((d.data_dir / "recordings").rglob("*.wav")):
            time.sleep(0.2)
        assert not list((d.data_dir / "recordings").rglob("*.wav")), "uploaded on a retry, then removed"
        body = s3.get_object(Bucket="recs", Key=key)["Body"].read()
        assert len(body) == fin["size"]
        r = requests.get(fin["url"], auth=(d.project, d.token), timeout=5)
        assert r.status_code == 200 and r.content == body
        d.sdk().calling.end(call_id, reason="hangup")
        sipp_done(far)
    finally:
        server.terminate()
        server.wait(10)
