"""SWML and REST playback on real calls, asserted by the CONTENT of the audio the far end receives.

The far end is sipp (tests/e2e/sipp/uas_rtp_sink.xml) answering with an SDP that points dialtone's RTP at a
UDP socket of the test (media_sink.RtpSink); the API client is the official SignalWire SDK; WAV files and SWML
documents come from a real HTTP server of the test (media_sink.HttpPeer); webhooks go to the `hooks` receiver.
The contract is docs/swml-runtime.md, calling-events.md §4 and calling-api.md §6.6-6.8. Every wait polls with a
deadline. Audio is generated in memory.
"""
import json
import time

import pytest
import requests

from media_sink import (HttpPeer, RtpSink, describe, free_rtp_range, labels, major_runs, max_tone_share_db, rms_db, runs,
                        signature_ok, tone_wav, windows)
from audio_check import goertzel_db
from test_calls import get_call, wait_status

FROM = "+15105550100"
KEY = "test-signing-key"
HOLD = {"sleep": 20000}


def doc(*steps):
    return {"version": "1.0.0", "sections": {"main": list(steps)}}


def play(url, **kw):
    return {"play": dict(url=url, **kw)}


@pytest.fixture
def media():
    p = HttpPeer()
    p.route("/tone1k.wav", tone_wav(1000, 1.0, 16000), "audio/wav")  # 16 kHz source: resampled to 8 kHz
    p.route("/tone440-long.wav", tone_wav(440, 12.0, 8000), "audio/wav")
    p.route("/tone440.wav", tone_wav(440, 1.0, 8000), "audio/wav")
    p.route("/tone600-long.wav", tone_wav(600, 12.0, 8000, amp=0.5), "audio/wav")
    p.route("/page.html", "<!doctype html><html><body><h1>Not audio</h1></body></html>" * 20, "text/html")
    yield p
    p.stop()


@pytest.fixture
def sink():
    s = RtpSink()
    yield s
    s.close()


@pytest.fixture
def node(start_dialtone):
    lo, hi = free_rtp_range(20)
    d = start_dialtone({"DIALTONE_RTP_PORTS": f"{lo}-{hi}"})
    d.rtp_range = (lo, hi)
    return d


@pytest.fixture
def far(sipp, sink):
    return sipp("uas_rtp_sink.xml", keys={"rtp_sink": sink.port, "pt": 0, "codec": "PCMU"})


def dial(d, far, swml=None, url=None, status_url=None, events=None, extras=None):
    leg = d.sdk().calling.dial(from_=FROM, to=far.uri("svc"), swml=swml, url=url, status_url=status_url,
                               status_events=events, extras=extras)
    assert leg["id"], leg
    return leg


def wait_until(pred, timeout, what, step=0.1):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what() if callable(what) else what}")


def heard(sink, lab, n, after=None, timeout=8):
    """Poll until the sink has heard a run of at least n 100 ms windows labelled `lab`, starting at or after
    wall time `after`. Returns the wall time the run started."""
    last = {}

    def check():
        samples, t0 = sink.timeline()
        if t0 is None:
            return None
        labs = labels(samples)
        last["d"] = describe(labs)
        for l, i, k in runs(labs):
            start = t0 + i * 0.1
            if l == lab and k >= n and (after is None or start >= after - 0.05):
                return start
        return None

    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.15)
    raise AssertionError(f"never heard {n} windows of {lab!r} after {after}: heard {last.get('d')}")


def webhook_events(hooks, path, event_type=None, call_id=None):
    out = []
    for e in hooks.events:
        if e["path"] != path:
            continue
        j = hooks.parse(e)
        if event_type and j.get("event_type") != event_type:
            continue
        if call_id and j.get("params", {}).get("call_id") != call_id:
            continue
        out.append((e, j))
    return out


def play_states(hooks, control_id, path="/play"):
    return [j["params"]["state"] for _, j in webhook_events(hooks, path, "calling.call.play")
            if j["params"].get("control_id") == control_id]


def wait_play_states(hooks, control_id, n, timeout=8, path="/play"):
    wait_until(lambda: len(play_states(hooks, control_id, path)) >= n, timeout,
               f"{n} calling.call.play events for {control_id}: have {play_states(hooks, control_id, path)}")
    return play_states(hooks, control_id, path)


def hang_up(d, far, call_id):
    """End the call through the SDK; sipp must see the BYE and its scenario pass."""
    d.sdk().calling.end(call_id, reason="hangup")
    assert far.wait(10) == 0, far.describe()


def rest(d, command, call_id, params):
    """A raw Calling API command (for the checks the SDK would paper over)."""
    return d.post({"command": command, "id": call_id, "params": params})


# ---------------------------------------------------------------- 1. the four playable kinds, in order

def test_swml_play_wav_silence_say_ring_in_order_and_wav_fetched_once(node, far, sink, media):
    wav = media.url("/tone1k.wav")
    leg = dial(node, far, swml=doc(play(wav), play("silence:1"), play("say:hello world"), play("ring:2:us"),
                                   play(wav), HOLD))
    # the whole sequence: 1k, silence, speech, ring, 1k again, then the sleep's silence
    heard(sink, "1k", 8, timeout=10)
    wait_until(lambda: _seq_done(sink), 15,
               lambda: f"the second 1 kHz play followed by silence: {describe(labels(sink.timeline()[0]))}")
    samples, _ = sink.timeline()
    labs = labels(samples)
    seq = major_runs(labs)
    d = describe(labs)

    first_1k = next(i for i, r in enumerate(seq) if r[0] == "1k" and r[2] >= 8)
    _, a, n1k = seq[first_1k]
    assert 8 <= n1k <= 12, f"1 kHz for {n1k / 10}s, expected ~1 s: {d}"
    win = samples[a * 800:(a + n1k) * 800]
    for w in windows(win[800:-800], 1600):  # 200 ms windows inside the tone
        assert goertzel_db(w, 1000) > -3 and goertzel_db(w, 440) < -30 and goertzel_db(w, 480) < -30, d

    sil_label, s, nsil = seq[first_1k + 1]
    assert sil_label == "silence" and 8 <= nsil <= 12, f"expected ~1 s of silence after the tone: {d}"
    assert max(rms_db(w) for w in windows(samples[s * 800:(s + nsil) * 800])) < -50, d

    ring_i = next(i for i in range(first_1k + 2, len(seq)) if seq[i][0] == "ring" and seq[i][2] >= 5)
    speech_start, speech_end = s + nsil, seq[ring_i][1]
    speech = samples[speech_start * 800:speech_end * 800]
    dur = len(speech) / 8000
    assert 0.5 <= dur <= 3.0, f"speech for {dur:.1f}s between the silence and the ring: {d}"
    speech_labs = labs[speech_start:speech_end]
    assert not {"1k", "ring", "440"} & set(speech_labs), f"tone inside the speech: {d}"
    loud = [l for l in speech_labs if l != "silence"]
    assert len(loud) >= 0.5 * len(speech_labs), f"the TTS region is mostly silent: {d}"
    loud_200 = [w for w in windows(speech, 1600) if rms_db(w) > -35]
    assert len(loud_200) >= 2, f"speech too quiet: {[round(rms_db(w)) for w in windows(speech, 1600)]}"
    # not a tone: no single frequency carries the region, and the 200 ms windows are not tone-like either
    # (a steady vowel can reach ~-2 dB in one window; a tone is ~0 dB in all of them)
    whole = round(max_tone_share_db(speech, step=25), 1)
    shares = sorted(round(max_tone_share_db(w), 1) for w in loud_200)
    assert whole < -6 and shares[len(shares) // 2] < -3, \
        f"the TTS sounds like a tone (region share {whole} dB, 200 ms window shares {shares})"

    _, r, nring = seq[ring_i]
    assert 18 <= nring <= 22, f"ring for {nring / 10}s, expected 2 s: {d}"
    for w in windows(samples[(r + 1) * 800:(r + nring - 1) * 800], 1600):
        assert goertzel_db(w, 440) > -4.5 and goertzel_db(w, 480) > -4.5 and goertzel_db(w, 1000) < -30, d

    again = seq[ring_i + 1]
    assert again[0] == "1k" and 8 <= again[2] <= 12, f"the second play of the WAV: {d}"
    after = seq[ring_i + 2]
    assert after[0] == "silence", f"after the last play the sleep should be silent: {d}"

    gets = media.hits("/tone1k.wav", "GET")
    assert len(gets) == 1, f"the WAV was fetched {len(gets)} times for two plays (cache): {gets}"
    assert get_call(node, leg["id"])["status"] == "answered"
    hang_up(node, far, leg["id"])


def _seq_done(sink):
    samples, _ = sink.timeline()
    seq = major_runs(labels(samples))
    # 1k ... ring ... 1k followed by >= 0.5 s of silence
    try:
        i = next(k for k, r in enumerate(seq) if r[0] == "ring" and r[2] >= 5)
    except StopIteration:
        return False
    rest_ = seq[i + 1:]
    return len(rest_) >= 2 and rest_[0][0] == "1k" and rest_[1][0] == "silence" and rest_[1][2] >= 5


# ---------------------------------------------------------------- 2. url: the signed fetch on answer

def test_dial_url_fetch_body_and_signature(node, far, sink, media):
    swml_url = media.route("/call-doc", json.dumps(doc(play(media.url("/tone1k.wav")), HOLD)), "application/json")
    leg = dial(node, far, url=swml_url, extras={"custom_variables": {"team": "blue", "attempt": "7"}})
    req = media.wait_hit("/call-doc", timeout=10)
    assert req, "dialtone never fetched the SWML url"
    assert req["method"] == "POST", req["method"]
    ctype = {k.lower(): v for k, v in req["headers"].items()}.get("content-type", "")
    assert ctype.startswith("application/json"), ctype
    body = json.loads(req["body"])
    assert set(body) >= {"call", "vars", "envs", "params"}, body
    call = body["call"]
    assert call["call_id"] == leg["id"], (call, leg["id"])
    assert call["direction"] == "outbound", call
    assert body["envs"].get("team") == "blue" and body["envs"].get("attempt") == "7", body["envs"]
    assert body["vars"] == {} and body["params"] == {}, body  # the initial fetch (call-lifecycle.md)
    assert signature_ok(req, KEY), ("bad signature", req["headers"], req["body"][:300])
    assert len(media.hits("/call-doc")) == 1
    # and the fetched document is what runs on the call
    heard(sink, "1k", 8, timeout=8)
    hang_up(node, far, leg["id"])


# ---------------------------------------------------------------- 3. REST calling.play and its controls

def test_rest_play_pause_resume_volume_stop(node, far, sink, media, hooks):
    leg = dial(node, far, swml=doc(HOLD))
    cid = leg["id"]
    wait_status(node, cid, "answered")
    client = node.sdk()
    t_play = time.time()
    client.calling.play(cid, control_id="tone-1", play=[{"type": "audio", "params": {"url": media.url("/tone600-long.wav")}}],
                        status_url=hooks.url("/play"))
    assert wait_play_states(hooks, "tone-1", 1) == ["playing"]
    start = heard(sink, "tone", 5, after=t_play, timeout=5)
    dup = rest(node, "calling.play", cid, {"control_id": "tone-1",
                                            "play": [{"type": "silence", "params": {"duration": 1}}]})
    assert dup.status_code == 422 and "value_not_unique" in dup.text, (dup.status_code, dup.text)
    time.sleep(0.5)
    t_pause = time.time()
    before = sink.between(start + 0.2, t_pause)
    assert goertzel_db(before, 600) > -3, "the tone is not playing before the pause"
    level0 = rms_db(before)

    client.calling.play_pause(cid, control_id="tone-1")
    assert wait_play_states(hooks, "tone-1", 2) == ["playing", "paused"]
    time.sleep(1.2)
    t_resume = time.time()
    paused = sink.between(t_pause + 0.3, t_resume)
    assert sink.count_between(t_pause + 0.3, t_resume) >= 35, "RTP stopped during the pause"
    assert rms_db(paused) < -50, f"paused but the sink hears {rms_db(paused):.1f} dBFS"
    assert goertzel_db(paused, 440) < -10 or rms_db(paused) < -50

    client.calling.play_resume(cid, control_id="tone-1")
    assert wait_play_states(hooks, "tone-1", 3) == ["playing", "paused", "playing"]
    time.sleep(1.0)
    t_vol = time.time()
    resumed = sink.between(t_resume + 0.3, t_vol)
    assert goertzel_db(resumed, 600) > -3 and abs(rms_db(resumed) - level0) < 1.5, \
        (goertzel_db(resumed, 600), rms_db(resumed), level0)

    client.calling.play_volume(cid, control_id="tone-1", volume=-20)
    time.sleep(1.0)
    t_stop = time.time()
    quiet = sink.between(t_vol + 0.3, t_stop)
    drop = rms_db(quiet) - level0
    assert goertzel_db(quiet, 600) > -3, "after volume -20 the tone is gone"
    assert -24 <= drop <= -16, f"volume -20 dropped the level by {drop:.1f} dB"

    client.calling.play_stop(cid, control_id="tone-1")
    assert wait_play_states(hooks, "tone-1", 4) == ["playing", "paused", "playing", "finished"]
    time.sleep(1.0)
    after = sink.between(t_stop + 0.3, time.time())
    assert len(after) >= 35 * 160, "RTP stopped after the playback stopped"
    assert rms_db(after) < -50, f"stopped but the sink hears {rms_db(after):.1f} dBFS"

    for e, j in webhook_events(hooks, "/play", "calling.call.play"):
        assert hooks.signature_ok(e), e["headers"]
        assert j["params"]["call_id"] == cid and j["params"].get("node_id"), j
    # no active playback any more: the controls answer control_id_not_found
    r = rest(node, "calling.play.pause", cid, {"control_id": "tone-1"})
    assert r.status_code == 422 and "does_not_exist" in r.text, (r.status_code, r.text)
    assert get_call(node, cid)["status"] == "answered"
    hang_up(node, far, cid)


def test_rest_play_direction_speak_or_both_is_refused_not_ignored(node, far, sink, media):
    leg = dial(node, far, swml=doc(HOLD))
    cid = leg["id"]
    wait_status(node, cid, "answered")
    item = [{"type": "silence", "params": {"duration": 1}}]
    for direction in ("speak", "both"):
        r = rest(node, "calling.play", cid, {"play": item, "direction": direction})
        assert r.status_code == 501, (direction, r.status_code, r.text)
        assert f"direction {direction}" in r.json()["errors"][0]["message"], r.text
    ok = rest(node, "calling.play", cid, {"play": item, "direction": "listen"})
    assert ok.status_code == 200, ok.text
    hang_up(node, far, leg["id"])


def test_rest_ringtone_with_duration_plays_then_finishes(node, far, sink, hooks):
    leg = dial(node, far, swml=doc(HOLD))
    cid = leg["id"]
    wait_status(node, cid, "answered")
    t = time.time()
    node.sdk().calling.play(cid, control_id="ring-1", play=[{"type": "ringtone", "params": {"name": "us", "duration": 2}}],
                            status_url=hooks.url("/play"))
    start = heard(sink, "ring", 15, after=t, timeout=6)
    states = wait_play_states(hooks, "ring-1", 2, timeout=6)
    assert states == ["playing", "finished"], states
    fin = [e for e, j in webhook_events(hooks, "/play", "calling.call.play") if j["params"]["state"] == "finished"][0]
    assert 1.6 <= fin["t"] - start <= 3.0, f"finished {fin['t'] - start:.2f}s after the ring started"
    samples, t0 = sink.timeline()
    seq = runs(labels(samples))
    rings = [r for r in seq if r[0] == "ring" and r[2] >= 5]
    assert len(rings) == 1 and 18 <= rings[0][2] <= 22, describe(labels(samples))
    hang_up(node, far, cid)


def test_swml_play_status_url_gets_play_events_with_a_generated_control_id(node, far, sink, media, hooks):
    leg = dial(node, far, swml=doc(play(media.url("/tone1k.wav"), status_url=hooks.url("/splay")), HOLD))
    cid = leg["id"]
    start = heard(sink, "1k", 8, timeout=8)
    wait_until(lambda: len(webhook_events(hooks, "/splay", "calling.call.play")) >= 2, 5,
               lambda: f"playing + finished at the play's status_url: {[j for _, j in webhook_events(hooks, '/splay')]}")
    evs = webhook_events(hooks, "/splay", "calling.call.play")
    assert [j["params"]["state"] for _, j in evs] == ["playing", "finished"], [j for _, j in evs]
    ids = {j["params"]["control_id"] for _, j in evs}
    assert len(ids) == 1 and all(ids), ids
    for e, j in evs:
        assert hooks.signature_ok(e)
        assert j["params"]["call_id"] == cid and j["params"].get("node_id"), j
    assert 0.7 <= evs[1][0]["t"] - start <= 1.6, f"finished {evs[1][0]['t'] - start:.2f}s after the tone started"
    hang_up(node, far, cid)


# ---------------------------------------------------------------- 4. unfetchable audio

def test_rest_play_404_reports_error(node, far, sink, media, hooks):
    leg = dial(node, far, swml=doc(HOLD))
    cid = leg["id"]
    wait_status(node, cid, "answered")
    node.sdk().calling.play(cid, control_id="bad-1", play=[{"type": "audio", "params": {"url": media.url("/missing.wav")}}],
                            status_url=hooks.url("/play"))
    wait_until(lambda: "error" in play_states(hooks, "bad-1"), 8, f"an error event: {play_states(hooks, 'bad-1')}")
    time.sleep(0.5)
    states = play_states(hooks, "bad-1")
    assert states[-1] == "error" and "finished" not in states and states.count("error") == 1, states
    assert media.hits("/missing.wav", "GET"), "dialtone never asked for the audio"
    for e, j in webhook_events(hooks, "/play", "calling.call.play"):
        assert hooks.signature_ok(e)
        assert j["params"]["call_id"] == cid and j["params"]["control_id"] == "bad-1", j
    assert get_call(node, cid)["status"] == "answered", "a failed playback should not end the call"
    hang_up(node, far, cid)


# ---------------------------------------------------------------- 5. replacing the running document

@pytest.mark.parametrize("how", ["update_swml", "update_url", "transfer_swml", "transfer_url"])
def test_running_document_is_replaced(node, far, sink, media, how):
    leg = dial(node, far, swml=doc(play(media.url("/tone440-long.wav")), HOLD))
    cid = leg["id"]
    heard(sink, "440", 5, timeout=10)
    new_doc = doc(play(media.url("/tone1k.wav")), HOLD)
    doc_url = media.route("/next-doc", json.dumps(new_doc), "application/json")
    client = node.sdk()
    t = time.time()
    if how == "update_swml":
        client.calling.update(id=cid, swml=new_doc)
    elif how == "update_url":
        client.calling.update(id=cid, url=doc_url)
    elif how == "transfer_swml":
        client.calling.transfer(cid, dest=new_doc)
    else:
        client.calling.transfer(cid, dest=doc_url)
    start = heard(sink, "1k", 8, after=t, timeout=6)
    assert start - t < 1.5, f"the new document's tone started {start - t:.2f}s after the command"
    time.sleep(1.5)
    samples, t0 = sink.timeline()
    labs = labels(samples)
    k = int(round((start - t0) * 10))
    assert "440" in labs[:k], describe(labs)
    later = labs[k:]
    assert "440" not in later, f"the old document's tone came back: {describe(labs)}"
    assert later[:8] == ["1k"] * 8 and "silence" in later[9:12], describe(labs)
    if how.endswith("url"):
        reqs = media.hits("/next-doc")
        assert len(reqs) == 1 and reqs[0]["method"] == "POST", reqs
        body = json.loads(reqs[0]["body"])
        assert body["call"]["call_id"] == cid, body
        assert signature_ok(reqs[0], KEY)
    assert get_call(node, cid)["status"] == "answered"
    hang_up(node, far, cid)


# ---------------------------------------------------------------- 6. unimplemented method

def test_unimplemented_method_warns_and_ends_with_error(node, far, sink, hooks):
    sms = {"send_sms": {"to_number": "+15551230000", "from_number": "+15551110000", "body": "hi"}}
    leg = dial(node, far, swml=doc(sms, HOLD), status_url=hooks.url("/status"),
               events=["answered", "ended"])
    cid = leg["id"]
    assert hooks.wait_state(cid, "ended", 10), [hooks.parse(e) for e in hooks.events]
    warnings = webhook_events(hooks, "/status", "calling.script.warning", cid)
    assert len(warnings) == 1, [j for _, j in webhook_events(hooks, "/status")]
    e, j = warnings[0]
    p = j["params"]
    assert p["method"] == "send_sms", p
    assert p["code"] == "relay_script_method_execute_failed", p
    assert "send_sms" in p.get("message", ""), p
    assert p.get("node_id") and p.get("section") == "main" and p.get("step_index") == 0, p
    ended = hooks.wait_state(cid, "ended", 1)
    assert ended["params"]["end_reason"] == "error", ended
    order = [j.get("event_type") + ":" + str(j["params"].get("call_state", "")) for _, j in webhook_events(hooks, "/status", call_id=cid)]
    assert order.index("calling.script.warning:") < order.index("calling.call.state:ended"), order
    for e, _ in webhook_events(hooks, "/status", call_id=cid):
        assert hooks.signature_ok(e), e["headers"]
    assert far.wait(10) == 0, "sipp did not see the call end with a BYE"
    assert get_call(node, cid)["status"] == "ended"


# ---------------------------------------------------------------- 7. not audio: the document goes on

def test_play_of_html_fails_and_the_document_continues(node, far, sink, media, hooks):
    leg = dial(node, far, swml=doc(play(media.url("/page.html")), play(media.url("/tone1k.wav")), HOLD),
               status_url=hooks.url("/status"), events=["answered", "ended"])
    cid = leg["id"]
    start = heard(sink, "1k", 8, timeout=10)
    assert media.hits("/page.html", "GET"), "the HTML was never fetched"
    samples, t0 = sink.timeline()
    labs = labels(samples)
    k = int(round((start - t0) * 10))
    # The 100 ms window the tone starts in is part silence, part tone ("sound"); every one before it is silence.
    assert set(labs[:max(k - 1, 0)]) <= {"silence"}, \
        f"something other than silence before the 1 kHz play: {describe(labs)}"
    assert get_call(node, cid)["status"] == "answered"
    warn = webhook_events(hooks, "/status", "calling.script.warning", cid)
    assert warn and warn[0][1]["params"]["method"] == "play", [j for _, j in webhook_events(hooks, "/status")]
    hang_up(node, far, cid)


# ---------------------------------------------------------------- 8. request + switch / cond

@pytest.mark.parametrize("x,lab", [("1000", "1k"), ("440", "440")])
def test_request_response_drives_switch_and_cond(node, far, sink, media, x, lab):
    api = media.route("/api/choice", json.dumps({"x": x}), "application/json")
    one_k, four40 = play(media.url("/tone1k.wav")), play(media.url("/tone440.wav"))
    leg = dial(node, far, swml=doc(
        {"request": {"url": api, "method": "GET", "save_variables": True, "timeout": 5}},
        {"switch": {"variable": "request_response.x", "case": {"1000": [one_k], "440": [four40]},
                    "default": [play("silence:3")]}},
        play("silence:0.5"),
        {"cond": [{"when": "request_response.x == '1000'", "then": [one_k]}, {"else": [four40]}]},
        HOLD))
    heard(sink, lab, 8, timeout=10)
    wait_until(lambda: sum(1 for r in runs(labels(sink.timeline()[0])) if r[0] == lab and r[2] >= 8) >= 2, 8,
               f"the second {lab} tone")
    time.sleep(0.3)
    samples, _ = sink.timeline()
    labs = labels(samples)
    tones = [r for r in runs(labs) if r[0] in ("1k", "440")]
    assert [r[0] for r in tones] == [lab, lab], describe(labs)
    assert all(8 <= r[2] <= 12 for r in tones), describe(labs)
    gap = tones[1][1] - (tones[0][1] + tones[0][2])
    assert 3 <= gap <= 7, f"expected the 0.5 s silence between the two plays: {describe(labs)}"
    reqs = media.hits("/api/choice")
    assert len(reqs) == 1 and reqs[0]["method"] == "GET", reqs
    assert get_call(node, leg["id"])["status"] == "answered"
    hang_up(node, far, leg["id"])
