"""Conferences with real softphones (swml.md §6.13): four baresips, each sending its own tone, dial in
and `join_conference` the same room; each records what it heard. Every participant must hear the
others' tones and never its own; a participant that joined `muted` is heard by nobody but hears
everyone. The chair (`end_on_exit`) hangs up: the conference ends for everyone and their scripts go on
with `join_conference_result = completed`. The mixer runs on one media shard: every participant's media
moves there."""
import math
import statistics
import time
import uuid

import requests

from audio_check import goertzel_db
from test_record import fetch_mp3
from test_interop import baresip, start_node  # noqa: F401

CHAIR, MEMBER, MUTED = "+15551230010", "+15551230011", "+15551230012"


def start(start_dialtone, tmp_path, routes):
    return start_node(start_dialtone, tmp_path, routes=routes)


def doc(*steps):
    return {"version": "1.0.0", "sections": {"main": list(steps)}}


def report(hooks, path):
    return {"request": {"url": hooks.url(path), "method": "POST",
                        "body": {"result": "${join_conference_result}"}}}


def levels(peer, freqs, start_s=1.0, win_s=0.1):
    """For each tone, its median share (dB of the window's power) over the voiced windows heard."""
    rate, _, samples = peer.heard()
    n = int(rate * win_s)
    out = {f: [] for f in freqs}
    for i in range(int(start_s * rate), len(samples) - n + 1, n):
        w = samples[i:i + n]
        if math.sqrt(sum(x * x for x in w) / n) < 300:
            continue
        for f in freqs:
            out[f].append(goertzel_db(w, f, rate))
    return {f: (statistics.median(v) if v else -200.0, len(v)) for f, v in out.items()}



def test_four_participants_hear_each_other_not_themselves_and_the_chair_ends_it(start_dialtone, tmp_path,
                                                                                 baresip, hooks):
    routes = {
        CHAIR: doc({"join_conference": {"name": "room", "end_on_exit": True,
                                        "status_callback": hooks.url("/conf")}}),
        MEMBER: doc({"join_conference": {"name": "room"}}, report(hooks, "/member"), {"hangup": {}}),
        MUTED: doc({"join_conference": {"name": "room", "muted": True}}, report(hooks, "/muted"), {"hangup": {}}),
    }
    d = start(start_dialtone, tmp_path, routes)
    tones = {"b": 1000, "c": 1500, "m": 2000, "a": 500}
    b = baresip(codecs=["PCMU"], tone=tones["b"], seconds=30, user="b")
    c = baresip(codecs=["PCMU"], tone=tones["c"], seconds=30, user="c")
    m = baresip(codecs=["PCMU"], tone=tones["m"], seconds=30, user="m")
    for peer, number in ((b, MEMBER), (c, MEMBER), (m, MUTED)):
        peer.ctrl.cmd(f"dial sip:{number}@127.0.0.1:{d.sip_port}")
        peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    a = baresip(codecs=["PCMU"], tone=tones["a"], seconds=7, user="a")
    a.ctrl.cmd(f"dial sip:{CHAIR}@127.0.0.1:{d.sip_port}")
    a.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    # a's WAV ends after 7 s: it hangs up with end_on_exit; the others' scripts go on and hang up.
    members = hooks.wait_on("/member", 2)
    muted = hooks.wait_on("/muted", 1)
    assert [g["result"] for g in members + muted] == ["completed"] * 3, (members, muted)
    for peer in (a, b, c, m):
        peer.ctrl.wait_event("CALL_CLOSED", timeout=10)
    freqs = list(tones.values())
    # Present: the tone holds a good share of what was heard; absent: far below it.
    for name, peer in (("a", a), ("b", b), ("c", c), ("m", m)):
        got = levels(peer, freqs)
        for other, f in tones.items():
            level, windows = got[f]
            should_hear = other != name and other != "m"
            if should_hear:
                assert level > -12, f"{name} should hear {other} ({f} Hz): {got}"
            else:
                assert level < -25, f"{name} should not hear {other} ({f} Hz): {got}"
        assert got[freqs[0]][1] >= 20, f"{name} heard too little: {got}"
    statuses = [e["params"]["status"] for e in hooks.on("/conf")]
    assert statuses[:2] == ["participant-join", "conference-start"] or "participant-join" in statuses, statuses
    assert statuses[-2:] == ["participant-leave", "conference-end"], statuses


def test_waiting_participants_hear_the_wait_audio_until_someone_starts_it(start_dialtone, tmp_path, baresip,
                                                                          hooks):
    routes = {
        MEMBER: doc({"join_conference": {"name": "later", "start_on_enter": False}},
                    report(hooks, "/member"), {"hangup": {}}),
        CHAIR: doc({"join_conference": {"name": "later", "end_on_exit": True}}),
    }
    d = start(start_dialtone, tmp_path, routes)
    b = baresip(codecs=["PCMU"], tone=1000, seconds=30, user="b")
    b.ctrl.cmd(f"dial sip:{MEMBER}@127.0.0.1:{d.sip_port}")
    b.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(3)
    a = baresip(codecs=["PCMU"], tone=500, seconds=5, user="a")
    a.ctrl.cmd(f"dial sip:{CHAIR}@127.0.0.1:{d.sip_port}")
    got = hooks.wait_on("/member", 1)
    assert got[0]["result"] == "completed", got
    b.ctrl.wait_event("CALL_CLOSED", timeout=10)
    rate, _, samples = b.heard()
    # The first seconds: the wait audio (a US ring, 440 + 480 Hz), not a's tone yet.
    first = samples[int(0.5 * rate):int(2.5 * rate)]
    assert goertzel_db(first, 440, rate) > -10 and goertzel_db(first, 500, rate) < -25
    assert levels(b, [500], start_s=4.5)[500][0] > -12, "then the chair's tone"


def test_join_room_is_an_audio_room_and_a_bad_name_fails(start_dialtone, tmp_path, baresip, hooks):
    """SignalWire rooms are video; here `join_room` joins an audio room (a conference of its own
    namespace): two participants hear each other. A name outside `[A-Za-z0-9_-]` fails the step
    (`join_room_result = failed`) and the script goes on."""
    routes = {
        MEMBER: doc({"join_room": {"name": "stand-up_1"}}),
        MUTED: doc({"join_room": {"name": "not a room"}},
                   {"request": {"url": hooks.url("/room"), "method": "POST", "body": {"r": "${join_room_result}"}}},
                   {"hangup": {}}),
    }
    d = start(start_dialtone, tmp_path, routes)
    a = baresip(codecs=["PCMU"], tone=500, seconds=6, user="a")
    b = baresip(codecs=["PCMU"], tone=1000, seconds=6, user="b")
    for peer in (a, b):
        peer.ctrl.cmd(f"dial sip:{MEMBER}@127.0.0.1:{d.sip_port}")
        peer.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    bad = baresip(codecs=["PCMU"], tone=1500, seconds=20, user="x")
    bad.ctrl.cmd(f"dial sip:{MUTED}@127.0.0.1:{d.sip_port}")
    got = hooks.wait_on("/room", 1)
    assert got[0]["r"] == "failed", got
    for peer in (a, b):
        peer.ctrl.wait_event("CALL_CLOSED", timeout=15)
    assert levels(a, [1000])[1000][0] > -12 and levels(b, [500])[500][0] > -12
    assert levels(a, [500])[500][0] < -25, "not its own voice"


BEEP_HZ = 1250
QUIET, RECORDED, OPS = "+15551230013", "+15551230014", "+15551230015"


def beep_bursts(peer, win_s=0.1):
    """Where (s) the peer heard the conference beep: starts of runs of windows where it holds a good
    share of what was heard."""
    rate, _, samples = peer.heard()
    n = int(rate * win_s)
    hits = []
    for i in range(0, len(samples) - n + 1, n):
        w = samples[i:i + n]
        if math.sqrt(sum(x * x for x in w) / n) >= 300 and goertzel_db(w, BEEP_HZ, rate) > -12:
            hits.append(i / rate)
    bursts = []
    for t in hits:
        if not bursts or t - bursts[-1][1] > 0.35:
            bursts.append([t, t])
        else:
            bursts[-1][1] = t
    return bursts


def test_beep_when_someone_enters_and_leaves_heard_by_the_others(start_dialtone, tmp_path, baresip, hooks):
    """`beep` (default "true"): the participants already in hear a short beep when one with beep
    enters, and when it leaves; the one entering does not hear its own; `beep: false` enters quietly."""
    routes = {
        MEMBER: doc({"join_conference": {"name": "beeps"}}),
        QUIET: doc({"join_conference": {"name": "beeps", "beep": False}}),
        CHAIR: doc({"join_conference": {"name": "beeps", "beep": "true"}}),
    }
    d = start(start_dialtone, tmp_path, routes)
    b = baresip(codecs=["PCMU"], tone=1000, seconds=14, user="b")
    c = baresip(codecs=["PCMU"], tone=1500, seconds=14, user="c")
    b.ctrl.cmd(f"dial sip:{MEMBER}@127.0.0.1:{d.sip_port}")
    b.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(2)
    c.ctrl.cmd(f"dial sip:{QUIET}@127.0.0.1:{d.sip_port}")
    c.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(2)
    a = baresip(codecs=["PCMU"], tone=500, seconds=4, user="a")
    a.ctrl.cmd(f"dial sip:{CHAIR}@127.0.0.1:{d.sip_port}")
    a.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    a.ctrl.wait_event("CALL_CLOSED", timeout=10)
    for peer in (b, c):
        peer.ctrl.wait_event("CALL_CLOSED", timeout=20)
    # b: no beep for the quiet c (about 2 s in), one when a came in (about 4 s in) and one when a
    # left (about 4 s later).
    got_b, got_c, got_a = beep_bursts(b), beep_bursts(c), beep_bursts(a)
    assert len(got_b) == 2 and got_b[0][0] > 3.0, got_b
    assert 2.5 < got_b[1][0] - got_b[0][0] < 5.5, got_b
    assert all(end - start < 0.45 for start, end in got_b), f"a short beep: {got_b}"
    # c: a's entry and exit, then b's exit (b has beep "true" and hangs up first).
    assert len(got_c) == 3, got_c
    assert 2.5 < got_c[1][0] - got_c[0][0] < 5.5, got_c
    assert got_a == [], f"a hears no beep of its own entry: {got_a}"
    # The conference went on under the beep: b heard c and then a.
    assert levels(b, [1500, 500])[1500][0] > -12


def test_record_from_start_records_the_mix_of_all_three(start_dialtone, tmp_path, baresip, hooks):
    """`record: record-from-start`: one recording of the mix (everyone), an MP3 served like call
    recordings (authenticated URL); `calling.conference` `record-start` then `record-stop` (with `url`,
    `duration`, `size`) to the status_callback of the participant who asked."""
    join = {"name": "taped", "record": "record-from-start", "beep": False,
            "status_callback": hooks.url("/conf")}
    routes = {RECORDED: doc({"join_conference": join})}
    d = start(start_dialtone, tmp_path, routes)
    tones = [600, 1100, 1700]
    peers = [baresip(codecs=["PCMU"], tone=f, seconds=9, user=f"p{f}") for f in tones]
    for p in peers:
        p.ctrl.cmd(f"dial sip:{RECORDED}@127.0.0.1:{d.sip_port}")
        p.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    for p in peers:
        p.ctrl.wait_event("CALL_CLOSED", timeout=20)
    deadline = time.time() + 15
    while time.time() < deadline and not any(e["params"]["status"] == "record-stop" for e in hooks.on("/conf")):
        time.sleep(0.1)
    events = [e["params"] for e in hooks.on("/conf")]
    statuses = [e["status"] for e in events]
    assert statuses.count("record-start") == 1 and statuses.count("record-stop") == 1, statuses
    assert statuses.index("record-start") < statuses.index("record-stop"), statuses
    start_ev = next(e for e in events if e["status"] == "record-start")
    stop_ev = next(e for e in events if e["status"] == "record-stop")
    assert all(e["event_type"] == "calling.conference" for e in hooks.on("/conf"))
    assert stop_ev["url"] == start_ev["url"] and stop_ev["url"].endswith(".mp3"), (start_ev, stop_ev)
    assert stop_ev["state"] == "finished" and stop_ev["size"] > 0 and stop_ev["duration"] > 5, stop_ev
    assert stop_ev["name"] == "taped" and stop_ev["recording_id"] == start_ev["recording_id"], stop_ev
    assert stop_ev["conference_id"] == start_ev["conference_id"]
    assert requests.get(stop_ev["url"], timeout=5).status_code == 401, "authenticated like call recordings"
    w, samples = fetch_mp3(d, stop_ev["url"], tmp_path, "conference")
    rate = w.getframerate()
    assert rate == 16000 and w.getnchannels() == 1, (rate, w.getnchannels())
    # A stretch where all three are in it: each tone holds a good share of the same windows.
    n = int(rate * 0.1)
    together = 0
    for i in range(0, len(samples) - n + 1, n):
        win = samples[i:i + n]
        if all(goertzel_db(win, f, rate) > -12 for f in tones):
            together += 1
    assert together >= 10, f"{together} windows hold all three tones"


def test_operator_mutes_then_kicks_a_participant_over_the_api(start_dialtone, tmp_path, baresip, hooks):
    """Operator extensions: the listing shows the conference and its participants; muting one over
    the API takes its tone out of what the other hears (and says so to its status_callback); a kick
    takes it out, its call stays up and its SWML goes on with `join_conference_result = completed`."""
    routes = {
        MEMBER: doc({"join_conference": {"name": "ops", "beep": False}}),
        OPS: doc({"join_conference": {"name": "ops", "beep": False, "status_callback": hooks.url("/conf")}},
                 report(hooks, "/kicked"), {"play": {"url": "silence:1"}}, {"hangup": {}}),
    }
    d = start(start_dialtone, tmp_path, routes)
    auth = (d.project, d.token)
    base = d.base
    b = baresip(codecs=["PCMU"], tone=1000, seconds=12, user="b")
    c = baresip(codecs=["PCMU"], tone=1500, seconds=30, user="c")
    b.ctrl.cmd(f"dial sip:{MEMBER}@127.0.0.1:{d.sip_port}")
    b.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    t0 = time.time()
    c.ctrl.cmd(f"dial sip:{OPS}@127.0.0.1:{d.sip_port}")
    c.ctrl.wait_event("CALL_ESTABLISHED", timeout=10)
    time.sleep(3)
    assert requests.get(f"{base}/api/calling/conferences", timeout=5).status_code == 401
    listing = requests.get(f"{base}/api/calling/conferences", auth=auth, timeout=5).json()["data"]
    assert [c_["name"] for c_ in listing] == ["ops"], listing
    conf = listing[0]
    assert conf["started"] and conf["recording_id"] is None, conf
    assert [p["muted"] for p in conf["participants"]] == [False, False], conf
    c_id = conf["participants"][1]["call_id"]
    url = f"{base}/api/calling/conferences/{conf['id']}/participants/{c_id}"
    r = requests.post(url, json={"muted": "yes"}, auth=auth, timeout=5)
    assert r.status_code == 422 and r.json()["errors"][0]["attribute"] == "muted", r.text
    r = requests.post(f"{base}/api/calling/conferences/{uuid.uuid4()}/participants/{c_id}",
                      json={"muted": True}, auth=auth, timeout=5)
    assert r.status_code == 404, r.text
    t_mute = time.time() - t0
    r = requests.post(url, json={"muted": True}, auth=auth, timeout=5)
    assert r.status_code == 200 and r.json() == {"call_id": c_id, "muted": True, "coach": None}, r.text
    listing = requests.get(f"{base}/api/calling/conferences", auth=auth, timeout=5).json()["data"]
    assert [p["muted"] for p in listing[0]["participants"]] == [False, True], listing
    time.sleep(3)
    t_kick = time.time() - t0
    r = requests.delete(url, auth=auth, timeout=5)
    assert r.status_code == 204, r.text
    kicked = hooks.wait_on("/kicked", 1)
    assert kicked[0]["result"] == "completed", kicked
    c.ctrl.wait_event("CALL_CLOSED", timeout=10)
    deadline = time.time() + 5
    while time.time() < deadline:
        listing = requests.get(f"{base}/api/calling/conferences", auth=auth, timeout=5).json()["data"]
        if [len(x["participants"]) for x in listing] == [1]:
            break
        time.sleep(0.1)
    assert [len(x["participants"]) for x in listing] == [1], listing
    assert requests.delete(url, auth=auth, timeout=5).status_code == 404, "no longer in it"
    statuses = [e["params"]["status"] for e in hooks.on("/conf")]
    assert "participant-mute" in statuses and statuses[-1] == "participant-leave", statuses
    b.ctrl.wait_event("CALL_CLOSED", timeout=15)
    # What b heard: c's tone until the mute, nothing of it after.
    rate, _, samples = b.heard()
    before = samples[int(1.0 * rate):int((t_mute - 0.3) * rate)]
    after = samples[int((t_mute + 0.5) * rate):int((t_kick - 0.2) * rate)]
    assert goertzel_db(before, 1500, rate) > -10, "b heard c before the mute"
    rms_after = math.sqrt(sum(x * x for x in after) / max(len(after), 1))
    assert rms_after < 100, f"b hears nothing of the muted c: rms {rms_after}"
