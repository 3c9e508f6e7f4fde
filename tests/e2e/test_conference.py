"""Conferences with real softphones (swml.md §6.13): four baresips, each sending its own tone, dial in
and `join_conference` the same room; each records what it heard. Every participant must hear the
others' tones and never its own; a participant that joined `muted` is heard by nobody but hears
everyone. The chair (`end_on_exit`) hangs up: the conference ends for everyone and their scripts go on
with `join_conference_result = completed`. The mixer runs on one media shard: every participant's media
moves there."""
import math
import statistics
import time

from audio_check import goertzel_db
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
